"""The transactional outbox: every alert reaches every channel once, whatever crashes in between.

The score stage writes an ``outbox`` row per (alert, channel) in the same
transaction as the alert; the weekly digest job writes one ``digest`` row per
channel and week. Delivery then works in three committed steps:

1. claim: due rows of one company and channel (held back until the batch
   window has passed, so a burst becomes one message) are stamped with a
   message key, deterministic from their alert keys, marked ``sending``, and
   leased to this deliverer (``claimed_by``, ``lease_until``);
2. send: the channel gets the message with that key as its idempotency key;
3. settle: the rows become ``sent`` with the provider's answer, or go back to
   wait with a backoff (honouring Retry-After, capped at ``retry_max``), or
   ``dead`` after the last try.

Two deliverers (the daemon and a manual ``monitor deliver``) never send the same
message: a ``sending`` row is another deliverer's until its lease lapses, or
until its owner is known dead (a process of this host that no longer exists),
which is how a kill between 1 and 3 is resumed at once. A kill between 2 and 3
resends the same message with the same key (a receiver that honours the key,
or e-mail's Message-ID, drops the copy); a kill anywhere else loses and
repeats nothing.

Failures are isolated: whatever a channel raises (a DeliveryError or a bug) is
recorded against that message, which backs off and is dead-lettered after
``max_attempts``; the next message and the next channel are still sent.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from monitor import store
from monitor.errors import DeliveryError
from monitor.notify.channel import Channel
from monitor.notify.message import Message, alert_subject, message_key

log = logging.getLogger(__name__)

DIGEST_TICKER = "(digest)"
KINDS = ("alert", "digest")  # what the outbox carries (its ``kind`` column)
# Builds the digest of an ISO week for a channel when its outbox row is sent (files may be rebuilt).
DigestBuilder = Callable[[str, str], Message]


@dataclass(frozen=True)
class DeliverySettings:
    batch_window: timedelta = timedelta(minutes=10)
    max_attempts: int = 8
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=6)  # also the cap on a provider's Retry-After
    # How long a claim holds a message against other deliverers: longer than any one send
    # (Slack gives up after 15 s, e-mail after notify.email.timeout_seconds, at most 300 s).
    lease: timedelta = timedelta(minutes=10)


@dataclass
class DeliveryResult:
    sent: int = 0  # messages
    alerts_sent: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)
    aborted: bool = False  # the stage itself failed (see pipeline._stage), not one message


def enqueue(db: sqlite_utils.Database, alert_id: int, ticker: str, channels: list[str], now: str) -> None:
    """Queue an alert for each channel; call inside the transaction that stored the alert."""
    for channel in channels:
        db["outbox"].insert(
            {"alert_id": alert_id, "channel": channel, "ticker": ticker, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "message_key": "", "receipt": "", "last_error": "", "created_at": now,
             "sent_at": "", "kind": "alert"},
            ignore=True,
        )


def queue_for(channels: list[str]) -> Callable[[sqlite_utils.Database, int, Any, str], None]:
    """The score stage's alert sink: queue each alert it pushes for ``channels``, in its transaction."""
    def queue(db: sqlite_utils.Database, alert_id: int, alert: Any, now: str) -> None:
        enqueue(db, alert_id, alert.ticker, channels, now)

    return queue


def enqueue_digest(db: sqlite_utils.Database, week: str, channels: list[str], now: str, *, again: bool = False) -> bool:
    """Queue the digest of ``week`` once per channel, in one transaction; False when it was queued before.

    ``again`` (``monitor digest --send``) queues a week already queued once more: a sent or dead copy
    goes back to pending with its attempts reset, a waiting one is due now, and one being sent by
    another deliverer is left to it. The message key stays ``digest-WEEK``, so a resend keeps its
    Message-ID and idempotency key.
    """
    with store.transaction(db, "outbox digest"):
        queued = {row[0]: (row[1], row[2]) for row in db.execute(
            "select channel, status, claimed_by from outbox where kind = 'digest' and week = ?", [week])}
        if queued and not again:
            return False
        for channel in channels:
            status, holder = queued.get(channel, (None, ""))
            if status is None:
                db["outbox"].insert(
                    {"alert_id": None, "channel": channel, "ticker": DIGEST_TICKER, "status": "pending", "attempts": 0,
                     "next_attempt_at": now, "message_key": f"digest-{week}", "receipt": "", "last_error": "",
                     "created_at": now, "sent_at": "", "kind": "digest", "week": week})
            elif status in ("sent", "dead"):
                db.execute("update outbox set status = 'pending', next_attempt_at = ?, attempts = 0, last_error = '', "
                           "receipt = '', sent_at = '' where kind = 'digest' and week = ? and channel = ?",
                           [now, week, channel])
            elif not holder:  # queued, or waiting out a retry's backoff: due now, with its attempts afresh
                db.execute("update outbox set next_attempt_at = ?, attempts = 0 where kind = 'digest' and week = ? "
                           "and channel = ?", [now, week, channel])
    return True


def digest_weeks(db: sqlite_utils.Database) -> set[str]:
    """The weeks whose digest is in the outbox, whatever its state (sent, waiting or dead)."""
    return {row[0] for row in db.execute("select distinct week from outbox where kind = 'digest'")}


_PROCESS: tuple[int, str] | None = None


def deliverer_id() -> str:
    """This process as a claim owner: host, pid and a nonce (a pid may be reused after a restart)."""
    global _PROCESS
    if _PROCESS is None or _PROCESS[0] != os.getpid():  # a forked child is another deliverer
        _PROCESS = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}")
    return _PROCESS[1]


def _owner_gone(owner: str) -> bool:
    """True when ``owner`` is certainly dead: a process of this host that no longer exists.

    Another host's owner, or a live pid (perhaps reused), is waited for until its lease lapses.
    """
    host, _, rest = owner.partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return owner != deliverer_id()  # an earlier process with our pid: it is gone, we are here
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


class _Clock:
    """The pass's ``now`` moved on by the real time elapsed, so leases renewed mid-pass move too."""

    def __init__(self, now: datetime) -> None:
        self.start, self.started = now, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)

    def stamp(self, delta: timedelta = timedelta()) -> str:
        return (self.now() + delta).isoformat(timespec="seconds")


def deliver_pending(db: sqlite_utils.Database, channels: dict[str, Channel], settings: DeliverySettings,
                    now: datetime | None = None, digests: DigestBuilder | None = None,
                    kinds: tuple[str, ...] = KINDS) -> DeliveryResult:
    """Send every due message of ``kinds`` of every channel; a failure is recorded per message and never raised.

    ``digests`` builds a digest message for its outbox row; without it a digest row waits (retried).
    ``kinds=("digest",)`` is ``monitor digest --send``: the digest now, the alerts at their own pace.
    """
    clock = _Clock(now or datetime.now(UTC))
    owner = deliverer_id()
    result = DeliveryResult()
    for name, channel in channels.items():
        try:
            keys = _claim(db, name, settings, clock.now(), owner, kinds)
        except Exception as exc:  # the store refused: this channel waits, the others go on
            log.error("%s: could not claim messages: %s", name, exc)
            result.errors.append(f"{name}: {exc}")
            continue
        for key in keys:
            try:
                _send(db, channel, key, settings, clock, owner, result, digests)
            except Exception as exc:  # settling failed (the store): the lease hands the message on later
                log.error("%s: message %s could not be settled: %s", name, key, exc)
                result.errors.append(f"{name}: {exc}")
    return result


@dataclass(frozen=True)
class HeldBack:
    """A message the outbox did not send on this pass, and why (what `monitor deliver` tells the user)."""

    channel: str
    ticker: str
    alerts: int
    why: str


def held_back(db: sqlite_utils.Database, settings: DeliverySettings, now: datetime) -> list[HeldBack]:
    """What waits in the outbox and why: a company's batch window still open, a retry backing off; and the
    alerts never queued (history of a first run or backfill, or raised before channels were set)."""
    stamp = now.isoformat(timespec="seconds")
    found = []
    for channel, ticker, count, first, attempts, due in db.execute(
            "select channel, ticker, count(*), min(created_at), max(attempts), min(next_attempt_at) from outbox "
            "where status in ('pending', 'sending') group by channel, ticker, attempts > 0 order by channel, ticker"):
        goes = (datetime.fromisoformat(first) + settings.batch_window).isoformat(timespec="seconds")
        if attempts:
            found.append(HeldBack(channel, ticker, count, f"retrying: attempt {attempts + 1} due {due}"))
        elif goes > stamp:
            found.append(HeldBack(channel, ticker, count, f"batch window ({settings.batch_window}) open until {goes}; "
                                                         "`monitor deliver --now` sends it now"))
    never = db.execute("select count(*) from alerts a where not exists "
                       "(select 1 from outbox o where o.alert_id = a.id)").fetchone()[0]
    if never:
        found.append(HeldBack("-", "-", never, "never queued: history (a first run or backfill) or raised before "
                                               "channels were set; `monitor alerts` shows them"))
    return found


def _claim(db: sqlite_utils.Database, channel: str, settings: DeliverySettings, now: datetime,
           owner: str | None = None, kinds: tuple[str, ...] = KINDS) -> list[str]:
    """Message keys of ``kinds`` this deliverer may send now: resumable claims first, then new batches per
    company, then digests."""
    owner = owner or deliverer_id()
    stamp = now.isoformat(timespec="seconds")
    lease = (now + settings.lease).isoformat(timespec="seconds")
    held_until = (now - settings.batch_window).isoformat(timespec="seconds")
    with store.transaction(db, "outbox"):
        ready = [key for key, holder, until in db.execute(
            "select message_key, max(claimed_by), max(lease_until) from outbox where channel = ? "
            f"and status = 'sending' and next_attempt_at <= ? and kind in ({','.join('?' * len(kinds))}) "
            "group by message_key order by message_key",
            [channel, stamp, *kinds]) if not holder or holder == owner or until <= stamp or _owner_gone(holder)]
        tickers = [] if "alert" not in kinds else [row[0] for row in db.execute(
            "select ticker from outbox where channel = ? and kind = 'alert' and status = 'pending' "
            "and next_attempt_at <= ? group by ticker having min(created_at) <= ? order by min(created_at)",
            [channel, stamp, held_until])]
        for ticker in tickers:
            rows = db.execute(
                "select o.id, a.key from outbox o join alerts a on a.id = o.alert_id where o.channel = ? "
                "and o.ticker = ? and o.kind = 'alert' and o.status = 'pending' and o.next_attempt_at <= ? "
                "order by a.id", [channel, ticker, stamp]).fetchall()
            key = message_key([alert_key for _, alert_key in rows], channel)
            db.execute(f"update outbox set status = 'sending', message_key = ? where id in "
                       f"({','.join('?' * len(rows))})", [key, *[row_id for row_id, _ in rows]])
            ready.append(key)
        if "digest" in kinds:
            ready += [row[0] for row in db.execute(
                "select distinct message_key from outbox where channel = ? and kind = 'digest' and status = 'pending' "
                "and next_attempt_at <= ?", [channel, stamp])]
            db.execute("update outbox set status = 'sending' where channel = ? and kind = 'digest' "
                       "and status = 'pending' and next_attempt_at <= ?", [channel, stamp])
        for key in ready:
            db.execute("update outbox set claimed_by = ?, lease_until = ? where channel = ? and message_key = ? "
                       "and status = 'sending'", [owner, lease, channel, key])
    return ready


def _renew(db: sqlite_utils.Database, channel: str, key: str, owner: str, lease_until: str) -> bool:
    """Extend our claim just before sending; False when another deliverer took the message over."""
    with store.transaction(db, "outbox"):
        return db.execute("update outbox set lease_until = ? where channel = ? and message_key = ? "
                          "and status = 'sending' and claimed_by = ?",
                          [lease_until, channel, key, owner]).rowcount > 0


def _send(db: sqlite_utils.Database, channel: Channel, key: str, settings: DeliverySettings, clock: _Clock,
          owner: str, result: DeliveryResult, digests: DigestBuilder | None) -> None:
    if not _renew(db, channel.name, key, owner, clock.stamp(settings.lease)):
        return
    try:
        message = _message(db, channel.name, key, digests)
        receipt = channel.send(message)
    except DeliveryError as exc:
        _settle_failure(db, channel.name, key, exc, settings, clock.now(), owner, result)
        return
    except Exception as exc:  # a bug in a channel or a renderer: recorded against this message only
        error = DeliveryError(channel.name, f"unexpected {type(exc).__name__}: {_redact(str(exc))}")
        _settle_failure(db, channel.name, key, error, settings, clock.now(), owner, result)
        return
    with store.transaction(db, "outbox"):
        db.execute("update outbox set status = 'sent', receipt = ?, sent_at = ?, attempts = attempts + 1, "
                   "last_error = '', claimed_by = '', lease_until = '' where channel = ? and message_key = ? "
                   "and status = 'sending' and claimed_by = ?",
                   [receipt.status, clock.stamp(), channel.name, key, owner])
    result.sent += 1
    result.alerts_sent += len(message.alerts)


def _redact(text: str) -> str:
    """Error text of an unexpected exception may carry a webhook URL: it is scrubbed before it is kept."""
    from monitor.notify.slack import redact_secrets

    return redact_secrets(text)[:500]


def _message(db: sqlite_utils.Database, channel: str, key: str, digests: DigestBuilder | None) -> Message:
    """The message of a claimed key: the digest of its week, or its alerts."""
    digest = db.execute("select week from outbox where channel = ? and message_key = ? and kind = 'digest' "
                        "and status = 'sending' limit 1", [channel, key]).fetchone()
    if digest is not None:
        if digests is None:
            raise DeliveryError(channel, f"digest {digest[0]}: this deliverer cannot build digests")
        return digests(digest[0], channel)
    alerts = _alerts_of(db, channel, key)
    if not alerts:
        raise DeliveryError(channel, f"message {key} has no alerts left to send", permanent=True)
    return Message(key=key, kind="alert", subject=alert_subject(alerts), alerts=tuple(alerts))


def retry_delay(exc: DeliveryError, attempts: int, settings: DeliverySettings) -> timedelta:
    """The provider's Retry-After, else exponential backoff; either capped at ``retry_max``.

    A Retry-After of 10^14 seconds (or inf) must not overflow a timedelta and jam the outbox.
    """
    cap = settings.retry_max.total_seconds()
    wait = exc.retry_after
    if wait is None or math.isnan(wait):
        wait = settings.retry_base.total_seconds() * 2.0 ** min(attempts - 1, 64)
    return timedelta(seconds=min(max(wait, 0.0), cap))


def _settle_failure(db: sqlite_utils.Database, channel: str, key: str, exc: DeliveryError,
                    settings: DeliverySettings, now: datetime, owner: str, result: DeliveryResult) -> None:
    attempts = (db.execute("select max(attempts) from outbox where channel = ? and message_key = ?",
                           [channel, key]).fetchone()[0] or 0) + 1
    dead = exc.permanent or attempts >= settings.max_attempts
    delay = retry_delay(exc, attempts, settings)
    with store.transaction(db, "outbox"):
        db.execute("update outbox set status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, "
                   "claimed_by = '', lease_until = '' where channel = ? and message_key = ? "
                   "and status = 'sending' and claimed_by = ?",
                   ["dead" if dead else "sending", attempts, str(exc),
                    (now + delay).isoformat(timespec="seconds"), channel, key, owner])
    if dead:
        result.dead += 1
        log.error("%s: message %s is dead after %d attempts: %s", channel, key, attempts, exc)
    else:
        result.retrying += 1
        log.warning("%s: message %s failed (attempt %d), retrying in %s: %s", channel, key, attempts, delay, exc)
    result.errors.append(str(exc))


def _alerts_of(db: sqlite_utils.Database, channel: str, key: str) -> list[dict[str, Any]]:
    rows = [dict(r) for r in db.query(
        "select a.* from alerts a join outbox o on o.alert_id = a.id where o.channel = ? and o.message_key = ? "
        "and o.status = 'sending' order by a.id", [channel, key])]
    for row in rows:
        for column in ("reasons", "changes", "evidence"):
            row[column] = json.loads(row[column] or "[]")
    return rows


def outbox_summary(db: sqlite_utils.Database) -> dict[str, Any]:
    """Queue depths and dead letters per channel, for `monitor status` and `monitor alerts`."""
    counts: dict[str, dict[str, int]] = {}
    for channel, status, count in db.execute("select channel, status, count(*) from outbox group by 1, 2"):
        counts.setdefault(channel, {})[status] = count
    dead = [dict(r) for r in db.query(
        "select o.channel, o.alert_id, o.attempts, o.last_error, coalesce(a.title, 'weekly digest ' || o.week) "
        "as title from outbox o left join alerts a on a.id = o.alert_id where o.status = 'dead' "
        "order by o.id desc limit 20")]
    return {"channels": counts, "dead_letters": dead}


def digest_delivery(db: sqlite_utils.Database, week: str) -> dict[str, str]:
    """Where the digest of ``week`` stands per channel, in words (what ``monitor digest --send`` prints)."""
    states: dict[str, str] = {}
    for channel, status, receipt, error, next_at, holder in db.execute(
            "select channel, status, receipt, last_error, next_attempt_at, claimed_by from outbox "
            "where kind = 'digest' and week = ? order by channel", [week]):
        if status == "sent":
            states[channel] = f"sent ({receipt})"
        elif status == "dead":
            states[channel] = f"dead letter after the last attempt: {error}"
        elif holder:
            states[channel] = "being sent by another deliverer"
        elif error:  # a failed message keeps its key ('sending') and waits out its backoff
            states[channel] = f"not sent, retried from {next_at} by the delivery job: {error}"
        else:
            states[channel] = f"queued for {next_at}"
    return states


def delivery_status(db: sqlite_utils.Database) -> dict[int, dict[str, str]]:
    """alert id → {channel: status (+ receipt or last error)}."""
    found: dict[int, dict[str, str]] = {}
    for alert_id, channel, status, receipt, error in db.execute(
            "select alert_id, channel, status, receipt, last_error from outbox where kind = 'alert'"):
        detail = receipt if status == "sent" else error
        found.setdefault(alert_id, {})[channel] = f"{status}" + (f" ({detail})" if detail else "")
    return found


def stuck_messages(db: sqlite_utils.Database, before: datetime) -> dict[str, int]:
    """Rows per channel still queued though due (and any claim's lease over) before ``before``.

    A working deliverer sends a due row or moves its next attempt on, so a row left behind like
    this means delivery is jammed (or not running): ``monitor status`` reports it as unhealthy.
    """
    stamp = before.isoformat(timespec="seconds")
    return {channel: count for channel, count in db.execute(
        "select channel, count(*) from outbox where status in ('pending', 'sending') "
        "and max(next_attempt_at, lease_until) < ? group by channel order by channel", [stamp])}
