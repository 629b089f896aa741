"""The transactional outbox: every alert reaches every channel once, whatever crashes in between.

The score stage writes an ``outbox`` row per (alert, channel) in the same
transaction as the alert. Delivery then works in three committed steps:

1. claim: due rows of one company and channel (held back until the batch
   window has passed, so a burst becomes one message) are stamped with a
   message key, deterministic from their alert keys, and marked ``sending``;
2. send: the channel gets the message with that key as its idempotency key;
3. settle: the rows become ``sent`` with the provider's answer, or go back to
   wait with a backoff (honouring Retry-After), or ``dead`` after the last try.

A kill between 2 and 3 resends the same message with the same key on restart
(a receiver that honours the key, or e-mail's Message-ID, drops the copy); a
kill anywhere else loses and repeats nothing. One failing channel never holds
back another: each group is settled on its own.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from monitor import store
from monitor.errors import DeliveryError
from monitor.notify.channel import Channel
from monitor.notify.message import Message, alert_subject, message_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliverySettings:
    batch_window: timedelta = timedelta(minutes=10)
    max_attempts: int = 8
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=6)


@dataclass
class DeliveryResult:
    sent: int = 0  # messages
    alerts_sent: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def enqueue(db: sqlite_utils.Database, alert_id: int, ticker: str, channels: list[str], now: str) -> None:
    """Queue an alert for each channel; call inside the transaction that stored the alert."""
    for channel in channels:
        db["outbox"].insert(
            {"alert_id": alert_id, "channel": channel, "ticker": ticker, "status": "pending", "attempts": 0,
             "next_attempt_at": now, "message_key": "", "receipt": "", "last_error": "", "created_at": now,
             "sent_at": ""},
            ignore=True,
        )


def deliver_pending(db: sqlite_utils.Database, channels: dict[str, Channel], settings: DeliverySettings,
                    now: datetime | None = None) -> DeliveryResult:
    now = now or datetime.now(UTC)
    result = DeliveryResult()
    for name, channel in channels.items():
        for key in _claim(db, name, settings, now):
            _send(db, channel, key, settings, now, result)
    return result


def _claim(db: sqlite_utils.Database, channel: str, settings: DeliverySettings, now: datetime) -> list[str]:
    """Message keys ready to send now: earlier claims first, then new batches per company."""
    stamp = now.isoformat(timespec="seconds")
    held_until = (now - settings.batch_window).isoformat(timespec="seconds")
    with store.transaction(db, "outbox"):
        ready = [row[0] for row in db.execute(
            "select distinct message_key from outbox where channel = ? and status = 'sending' "
            "and next_attempt_at <= ? order by message_key", [channel, stamp])]
        tickers = [row[0] for row in db.execute(
            "select ticker from outbox where channel = ? and status = 'pending' and next_attempt_at <= ? "
            "group by ticker having min(created_at) <= ? order by min(created_at)", [channel, stamp, held_until])]
        for ticker in tickers:
            rows = db.execute(
                "select o.id, a.key from outbox o join alerts a on a.id = o.alert_id where o.channel = ? "
                "and o.ticker = ? and o.status = 'pending' and o.next_attempt_at <= ? order by a.id",
                [channel, ticker, stamp]).fetchall()
            key = message_key([alert_key for _, alert_key in rows], channel)
            db.execute(f"update outbox set status = 'sending', message_key = ? where id in "
                       f"({','.join('?' * len(rows))})", [key, *[row_id for row_id, _ in rows]])
            ready.append(key)
    return ready


def _send(db: sqlite_utils.Database, channel: Channel, key: str, settings: DeliverySettings, now: datetime,
          result: DeliveryResult) -> None:
    alerts = _alerts_of(db, channel.name, key)
    if not alerts:
        return
    message = Message(key=key, kind="alert", subject=alert_subject(alerts), alerts=tuple(alerts))
    try:
        receipt = channel.send(message)
    except DeliveryError as exc:
        _settle_failure(db, channel.name, key, exc, settings, now, result)
        return
    with store.transaction(db, "outbox"):
        db.execute("update outbox set status = 'sent', receipt = ?, sent_at = ?, attempts = attempts + 1, "
                   "last_error = '' where channel = ? and message_key = ? and status = 'sending'",
                   [receipt.status, now.isoformat(timespec="seconds"), channel.name, key])
    result.sent += 1
    result.alerts_sent += len(alerts)


def _settle_failure(db: sqlite_utils.Database, channel: str, key: str, exc: DeliveryError,
                    settings: DeliverySettings, now: datetime, result: DeliveryResult) -> None:
    attempts = db.execute("select max(attempts) from outbox where channel = ? and message_key = ?",
                          [channel, key]).fetchone()[0] + 1
    dead = exc.permanent or attempts >= settings.max_attempts
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else \
        min(settings.retry_max, settings.retry_base * (2 ** (attempts - 1)))
    with store.transaction(db, "outbox"):
        db.execute("update outbox set status = ?, attempts = ?, last_error = ?, next_attempt_at = ? "
                   "where channel = ? and message_key = ? and status = 'sending'",
                   ["dead" if dead else "sending", attempts, str(exc),
                    (now + delay).isoformat(timespec="seconds"), channel, key])
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
        "select o.channel, o.alert_id, o.attempts, o.last_error, a.title from outbox o join alerts a "
        "on a.id = o.alert_id where o.status = 'dead' order by o.id desc limit 20")]
    return {"channels": counts, "dead_letters": dead}


def delivery_status(db: sqlite_utils.Database) -> dict[int, dict[str, str]]:
    """alert id → {channel: status (+ receipt or last error)}."""
    found: dict[int, dict[str, str]] = {}
    for alert_id, channel, status, receipt, error in db.execute(
            "select alert_id, channel, status, receipt, last_error from outbox"):
        detail = receipt if status == "sent" else error
        found.setdefault(alert_id, {})[channel] = f"{status}" + (f" ({detail})" if detail else "")
    return found
