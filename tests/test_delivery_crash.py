"""Kill the delivery process at random moments, restart it, and count what the receivers got.

Transport is at-least-once (a kill between the provider's acceptance and our
"sent" mark resends), so every message carries its stable key: Slack's as
``X-Idempotency-Key``, e-mail's as ``Message-ID``. The receivers here, like a
deduplicating proxy or mail store, keep the first copy of each key; the test
asserts every alert reached each channel, once per key. Each run starts two
deliverers at once, through a Slack channel that raises unexpected errors
(tests/flaky_cli.py), so copies may come from kills only, never from the two
deliverers sending one message side by side.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from monitor import store
from monitor.extract.extractor import Extractor
from monitor.ledger.stage import LedgerReader
from monitor.extract.stage import extract_pending
from monitor.fetch.replay import ReplayPlan, replay_samples
from monitor.notify.email import message_id
from monitor.notify.outbox import enqueue, queue_for
from monitor.score.stage import score_pending
from monitor.score.thesis import load_theses
from tests.conftest import MODEL, ROOT, RULES, SAMPLES
from tests.flaky_cli import BUG_DIR_ENV
from tests.receivers import Answer, WebhookReceiver
from tests.smtp_server import SMTPServer

RUNS = int(os.environ.get("MONITOR_CRASH_RUNS", "10"))
SECRET_PATH = "/services/T000/B000/SECRETcrash"


def prepared_store(tmp_path) -> None:
    db = store.open_db(tmp_path / "monitor.db")
    replay_samples(db, ReplayPlan(SAMPLES, {"APLD", "CIFR", "HUT", "WULF", "CORZ", "RIOT"}))
    extract_pending(db, Extractor.from_paths(RULES, MODEL))
    score_pending(db, load_theses(ROOT / "rules" / "theses"), on_alert=queue_for(["slack", "email"]),
                  reader=LedgerReader.from_dir(RULES), notify_history=True)
    db.close()


def write_config(tmp_path, smtp: SMTPServer) -> None:
    (tmp_path / "config.toml").write_text(f'''
[monitor]
db = "{tmp_path / 'monitor.db'}"
rules_dir = "{ROOT / 'rules'}"
model_path = "{ROOT / 'models' / 'reader.joblib'}"
theses_dir = "{ROOT / 'rules' / 'theses'}"

[sec]
tickers_file = "{ROOT / 'data' / 'company_tickers.json'}"

[notify]
channels = ["slack", "email"]
batch_window_minutes = 0
retry_base_seconds = 0.2

[notify.email]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
sender = "monitor@example.com"
recipients = ["desk@example.com"]
timeout_seconds = 5
''')


def deliver(tmp_path, env) -> subprocess.Popen:
    """``monitor deliver`` through a Slack channel that raises unexpected errors (tests/flaky_cli.py)."""
    with open(tmp_path / "deliver.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.flaky_cli", "--config", str(tmp_path / "config.toml"),
                                 "deliver"], env=env, stdout=subprocess.DEVNULL, stderr=log)


def more_alerts(tmp_path, run: int, count: int = 6) -> None:
    """New alerts keep arriving: copies of real ones under new keys and companies, queued as the stage does."""
    db = store.open_db(tmp_path / "monitor.db")
    originals = [dict(r) for r in db.query("select * from alerts where event like 'doc:%' order by id limit ?", [count])]
    with store.transaction(db, "alerts"):
        for i, row in enumerate(originals):
            row.pop("id")
            row.update(key=f"{row['key'][:20]}-run{run}-{i}", ticker=f"X{run}{i}", created_at=store.utcnow())
            alert_id = db["alerts"].insert(row).last_pk
            enqueue(db, alert_id, row["ticker"], ["slack", "email"], store.utcnow())
    db.close()


def test_killed_delivery_sends_every_alert_exactly_once_per_channel(tmp_path):
    prepared_store(tmp_path)
    rng = random.Random(20261124)
    with WebhookReceiver() as slack, SMTPServer() as smtp:
        slack.script(*[Answer(200, delay=0.3) for _ in range(2000)])  # slow enough to be killed mid-flight
        write_config(tmp_path, smtp)
        env = {**os.environ, "MONITOR_SLACK_WEBHOOK": slack.url + SECRET_PATH, BUG_DIR_ENV: str(tmp_path)}
        killed = 0
        for run in range(RUNS):
            more_alerts(tmp_path, run)
            processes = [deliver(tmp_path, env), deliver(tmp_path, env)]  # two deliverers at once
            time.sleep(rng.uniform(0.5, 3.0))
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    killed += 1
                process.wait()
        for _ in range(20):  # restarts until the outbox is empty (a failed message's backoff must pass)
            deliver(tmp_path, env).wait(timeout=120)
            db = store.open_db(tmp_path / "monitor.db")
            left = db.execute("select count(*) from outbox where status != 'sent'").fetchone()[0]
            if left == 0:
                break
            db.close()
            time.sleep(1)
        rows = db.execute("select channel, message_key, count(*) from outbox group by 1, 2").fetchall()
        alerts = db.execute("select count(*) from alerts").fetchone()[0]
        db.close()
        received_mail = {r.message["Message-ID"] for r in smtp.messages}
        raw_slack = len(slack.requests)
        raw_mail = len(smtp.messages)
    assert left == 0, (tmp_path / "deliver.log").read_text()[-2000:]
    assert killed >= RUNS  # most deliverers were killed mid-way, not after finishing
    slack_keys = {key for channel, key, _ in rows if channel == "slack"}
    email_keys = {key for channel, key, _ in rows if channel == "email"}
    assert sum(n for channel, _, n in rows if channel == "slack") == alerts  # every alert, in some message
    assert sum(n for channel, _, n in rows if channel == "email") == alerts
    assert set(slack.unique_keys()) == slack_keys  # every message arrived, and each key is kept once
    assert received_mail == {message_id(key) for key in email_keys}
    assert raw_slack - len(slack_keys) <= killed and raw_mail - len(email_keys) <= killed  # copies: kills only
    print(f"\n{RUNS} runs of two deliverers at once with a Slack channel raising unexpected errors, {killed} killed; {alerts} alerts in {len(slack_keys)} Slack and {len(email_keys)} e-mail "
          f"messages; raw arrivals {raw_slack} Slack, {raw_mail} e-mail (duplicates dropped by key)")
