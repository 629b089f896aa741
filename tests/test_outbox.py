"""The outbox: every alert to every channel, batched per company, retried, never doubled."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from monitor import store
from monitor.errors import DeliveryError
from monitor.extract.extractor import Extractor
from monitor.ledger.stage import LedgerReader
from monitor.extract.stage import extract_pending
from monitor.fetch.replay import ReplayPlan, replay_samples
from monitor.health import check_health
from monitor.notify.email import EmailChannel, EmailSettings
from monitor.notify.message import Message, Receipt
from monitor.notify.outbox import DeliverySettings, _claim, deliver_pending, outbox_summary, queue_for
from monitor.notify.slack import SlackChannel
from monitor.runs import record_start
from monitor.score.stage import list_alerts, score_pending
from monitor.score.thesis import load_theses
from tests.conftest import MODEL, ROOT, RULES, SAMPLES, make_config
from tests.receivers import Answer, WebhookReceiver
from tests.smtp_server import SMTPServer

LATER = datetime.now(UTC) + timedelta(hours=1)
SETTINGS = DeliverySettings(batch_window=timedelta(minutes=10), max_attempts=3, retry_base=timedelta(seconds=30))


class Recorder:
    """A channel that records what it is given and fails as scripted."""

    def __init__(self, name: str, *failures: DeliveryError) -> None:
        self.name = name
        self.failures = list(failures)
        self.messages: list[Message] = []

    def send(self, message: Message) -> Receipt:
        if self.failures:
            raise self.failures.pop(0)
        self.messages.append(message)
        return Receipt(self.name, "200 ok")


@pytest.fixture
def db(tmp_path):
    database = store.open_db(tmp_path / "monitor.db")
    replay_samples(database, ReplayPlan(SAMPLES, {"APLD", "CIFR"}))
    extract_pending(database, Extractor.from_paths(RULES, MODEL))
    score_pending(database, load_theses(ROOT / "rules" / "theses"), on_alert=queue_for(["slack", "email"]),
                  reader=LedgerReader.from_dir(RULES), notify_history=True)
    yield database
    database.close()


def test_every_alert_is_queued_for_every_channel_with_the_alert(db):
    alerts = list_alerts(db)
    assert alerts
    assert db.execute("select count(*) from outbox").fetchone()[0] == 2 * len(alerts)


def test_nothing_is_sent_before_the_batch_window_has_passed(db):
    slack = Recorder("slack")
    deliver_pending(db, {"slack": slack}, SETTINGS, now=datetime.now(UTC))
    assert slack.messages == []


def test_a_companys_alerts_within_the_window_go_out_as_one_message(db):
    slack = Recorder("slack")
    result = deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER)
    per_ticker = {m.alerts[0]["ticker"]: m for m in slack.messages}
    assert set(per_ticker) == {"APLD", "CIFR"} and result.sent == 2
    assert len(per_ticker["APLD"].alerts) == len(list_alerts(db, "APLD"))
    assert result.alerts_sent == len(list_alerts(db))


def test_delivering_again_sends_nothing_twice(db):
    slack = Recorder("slack")
    deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER)
    again = deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER + timedelta(hours=1))
    assert again.sent == 0 and len(slack.messages) == 2


def test_a_rate_limited_message_waits_for_retry_after_then_goes_with_the_same_key(db):
    slack = Recorder("slack", DeliveryError("slack", "HTTP 429", retry_after=120))
    first = deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER)
    too_soon = deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER + timedelta(seconds=60))
    later = deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER + timedelta(seconds=121))
    assert first.retrying == 1 and too_soon.sent == 0 and later.sent == 1
    keys = [row[0] for row in db.execute("select distinct message_key from outbox where channel = 'slack'")]
    assert {m.key for m in slack.messages} == set(keys)


def test_a_permanent_failure_becomes_a_dead_letter(db):
    slack = Recorder("slack", DeliveryError("slack", "HTTP 404", permanent=True))
    result = deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER)
    summary = outbox_summary(db)
    assert result.dead == 1 and summary["channels"]["slack"]["dead"] >= 1
    assert summary["dead_letters"][0]["last_error"] == "slack: HTTP 404"


def test_retries_end_in_a_dead_letter_after_max_attempts(db):
    failures = [DeliveryError("email", "connection refused") for _ in range(10)]
    email = Recorder("email", *failures)
    moment = LATER
    for _ in range(6):
        deliver_pending(db, {"email": email}, SETTINGS, now=moment)
        moment += timedelta(hours=7)
    statuses = {row[0] for row in db.execute("select status from outbox where channel = 'email'")}
    assert statuses == {"dead"}


def test_one_failing_channel_does_not_hold_back_another(db):
    slack = Recorder("slack", *[DeliveryError("slack", "HTTP 500") for _ in range(5)])
    email = Recorder("email")
    deliver_pending(db, {"slack": slack, "email": email}, SETTINGS, now=LATER)
    assert len(email.messages) == 2 and slack.messages == []


def test_a_claimed_message_interrupted_before_sending_is_resent_with_its_key(db):
    [claimed, *_] = _claim(db, "slack", SETTINGS, LATER)  # then the process dies before sending
    slack = Recorder("slack")
    deliver_pending(db, {"slack": slack}, SETTINGS, now=LATER)
    assert claimed in {m.key for m in slack.messages} and len(slack.messages) == 2


# --- issue 14: odd failures are isolated per message and channel; two deliverers never duplicate ---------


class Broken:
    """A channel with a bug: it raises what no channel should (not a DeliveryError)."""

    name = "slack"

    def send(self, message: Message) -> Receipt:
        raise RuntimeError(f"renderer bug at {message.key}")


def email_channel(smtp: SMTPServer) -> EmailChannel:
    return EmailChannel(EmailSettings(host=smtp.host, port=smtp.port, security="none", sender="m@example.com",
                                      recipients=["desk@example.com"], timeout=5))


def test_an_odd_error_of_one_channel_is_recorded_and_jams_nothing(db, tmp_path):
    """Issue 14.7: Retry-After 99999999999999 (OverflowError) and a channel's bug jammed every channel."""
    messages = len({(r[0]) for r in db.execute("select ticker from outbox where channel = 'email'")})
    with WebhookReceiver() as hook, SMTPServer() as smtp, SlackChannel(hook.url + "/services/T1/B1/SECRETodd") as slack:
        hook.script(*[Answer(429, retry_after="99999999999999") for _ in range(10)])
        started = time.monotonic()
        result = deliver_pending(db, {"slack": slack, "email": email_channel(smtp)}, SETTINGS, now=LATER)
        elapsed = timedelta(seconds=math.ceil(time.monotonic() - started))  # the pass's clock moves with real time
        assert (result.retrying, result.sent, len(smtp.messages)) == (messages, messages, messages)
        waits = {datetime.fromisoformat(row[0]) for row in
                 db.execute("select next_attempt_at from outbox where channel = 'slack'")}
        # capped, not overflowed: retry_max after the failure, which came at most `elapsed` after LATER
        capped = (LATER + SETTINGS.retry_max).replace(microsecond=0)  # stored to the second
        assert waits and all(capped <= w <= capped + elapsed for w in waits)
    broken = deliver_pending(db, {"slack": Broken()}, SETTINGS, now=LATER + timedelta(days=1))
    rows = db.execute("select status, attempts, last_error from outbox where channel = 'slack'").fetchall()
    assert broken.retrying == messages and {(s, n) for s, n, _ in rows} == {("sending", 2)}
    assert all(error.startswith("slack: unexpected RuntimeError: renderer bug") for _, _, error in rows)
    for day in range(2, 9):  # it keeps failing: it backs off, then becomes a dead letter
        deliver_pending(db, {"slack": Broken()}, SETTINGS, now=LATER + timedelta(days=day))
    assert {row[0] for row in db.execute("select status from outbox where channel = 'slack'")} == {"dead"}


def test_health_reports_messages_stuck_in_sending(db, tmp_path):
    """Issue 14.7: rows left `sending` by a jammed deliverer must not leave `monitor status` healthy."""
    record_start(tmp_path / "monitor.db", "once", offline=True)
    for source in ("replay", "market-replay"):
        store.record_poll(db, source, ok=True)
    config = make_config(tmp_path, notify={"channels": ["slack", "email"]})
    assert check_health(db, config).healthy
    now = datetime.now(UTC)
    _claim(db, "slack", DeliverySettings(batch_window=timedelta(0)), now, owner="elsewhere:1:gone")  # never settled
    later = now + SETTINGS.lease + timedelta(minutes=26)  # lease over, then the batch window and 15 min
    health = check_health(db, config, now=later)
    rows = db.execute("select count(*) from outbox where channel = 'slack'").fetchone()[0]
    assert not health.healthy and health.stuck == {"email": rows, "slack": rows}
    assert f"outbox slack: {rows} message rows stuck past their due time" in health.reasons


def _deliver(config_path, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monitor.cli", "--config", str(config_path), "deliver"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_two_deliverers_at_once_send_each_message_once(db, tmp_path):
    """Issue 14.8: two `monitor deliver` with Slack answering in 2 s posted 5 times for 3 message keys."""
    db.execute("update outbox set created_at = '2000-01-01T00:00:00+00:00', next_attempt_at = created_at")
    db.conn.commit()
    keys = {row[0] for row in db.execute("select distinct ticker from outbox where channel = 'slack'")}
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[monitor]\ndb = "{tmp_path / "monitor.db"}"\ntheses_dir = "{ROOT / "rules" / "theses"}"\n'
                           '[notify]\nchannels = ["slack"]\nbatch_window_minutes = 0\n')
    with WebhookReceiver() as hook:
        hook.script(*[Answer(200, delay=2.0) for _ in range(20)])
        env = {**os.environ, "MONITOR_SLACK_WEBHOOK": hook.url + "/services/T2/B2/SECRETtwo"}
        first, second = _deliver(config_path, env), _deliver(config_path, env)
        for process in (first, second):
            _, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors.decode()[-2000:]
        posted = [request.key for request in hook.requests]
    assert sorted(posted) == sorted(set(posted)) and len(posted) == len(keys)


def test_held_back_messages_say_why_batch_window_backoff_or_never_queued(db):
    """Issue 15.5: `deliver` printed "0 messages sent" with one pending and never said why."""
    from monitor.notify.outbox import held_back

    now = datetime.now(UTC)
    waiting = held_back(db, DeliverySettings(batch_window=timedelta(minutes=10)), now)
    assert waiting and all("batch window" in h.why and "--now" in h.why for h in waiting)
    assert {h.channel for h in waiting} == {"slack", "email"}
    with store.transaction(db, "an alert raised before channels were set"):
        db["alerts"].insert({"key": "k-history", "thesis": "t", "ticker": "APLD", "event": "doc:0",
                             "severity": "info", "title": "history"})
    [never] = [h for h in held_back(db, DeliverySettings(), now) if h.channel == "-"]
    assert never.alerts == 1 and "never queued" in never.why
