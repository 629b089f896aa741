"""SIGKILL the daemon at random points in fetch, store, extract, score and deliver; restart; compare.

The world (tests/crash_world.py) publishes the bundled real documents and market data step by step
on local servers. For every step the harness starts the real daemon (``monitor run``, online
against those servers), waits until a randomly chosen job (the step's fetch job, extract, score or
deliver) has started, lets it run a random moment longer, and SIGKILLs the process; then a restart
(the same library calls ``monitor run --once`` and ``monitor deliver`` make) finishes the step.
A reference store goes through the same steps with no kill. At the end the two stores must hold the
same documents, aliases, extractions, disclosures, market data, score events, scorecards, alert
levels and thesis alerts, and each channel's receiver must have got every queued alert, once per
message key (a kill between a send and its "sent" mark resends the same key, which the receiver
drops). Source-failure alerts are delivered and checked like the others but not compared: the
BTC file has no rows before 2024, and the daemon polls it more often than the reference does, so
its failure streak reaches the threshold at a different step.

Beside every daemon a second deliverer (``monitor deliver`` in a loop) runs and is killed with it,
and both send through a Slack channel that raises an unexpected error (a RuntimeError, not a
DeliveryError) on its first try of a third of the messages (tests/flaky_cli.py, once per message
whatever process tries it): the outbox's leases must keep the two from sending a message twice, and
the errors must be settled per message (retried), so copies at the receivers come only from kills
(at most one per killed deliverer: two per kill).

The default suite kills ``MONITOR_CRASH_KILLS`` times (8) over the first steps; the long run is
``MONITOR_CRASH_KILLS=50 pytest tests/test_pipeline_crash.py -s`` (every step, at least 50 kills).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.config import load_config
from monitor.notify.email import message_id
from monitor.pipeline import Runtime, build_runtime, job_deliver, run_once
from tests.crash_world import World
from tests.flaky_cli import BUG_DIR_ENV
from tests.receivers import Answer, WebhookReceiver
from tests.servers import FixtureServer
from tests.smtp_server import SMTPServer

KILLS = int(os.environ.get("MONITOR_CRASH_KILLS", "8"))
SECRET_PATH = "/services/T000/B000/SECRETpipeline"
VOLATILE = {"fetched_at", "extracted_at", "created_at", "processed_at", "seen_at", "updated_at"}
COMPARED = ["companies", "documents", "document_aliases", "extractions", "disclosures", "market_observations",
            "score_events", "scorecards", "scorecard_latest", "alert_levels", "alerts", "deals", "deal_events",
            "ledger_unlinked"]
NUMBERED = ("disclosures", "alerts", "deal_events", "ledger_unlinked")  # ids are the order rows were written in


def snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every compared table as sorted rows, without the columns that record when a row was written."""
    db = store.open_db(db_path)
    try:
        tables = {}
        for name in COMPARED:
            columns = [c.name for c in db[name].columns if c.name not in VOLATILE and not
                       (name in NUMBERED and c.name == "id")]
            where = " where thesis != 'system'" if name == "alerts" else ""
            rows = db.execute(f"select {', '.join(columns)} from [{name}]{where}").fetchall()
            tables[name] = sorted(rows, key=repr)
        tables["outbox"] = sorted(db.execute(
            "select a.key, o.channel, o.status from outbox o join alerts a on a.id = o.alert_id "
            "where a.thesis != 'system'").fetchall())
        return tables
    finally:
        db.close()


def undelivered(db_path: Path) -> int:
    db = store.open_db(db_path)
    try:
        return db.execute("select count(*) from outbox where status in ('pending', 'sending')").fetchone()[0]
    finally:
        db.close()


def catch_up(config_path: Path, deliver: Callable[[Runtime], object] = job_deliver) -> None:
    """What a restart does: every job once, then deliver until the outbox is empty."""
    rt = build_runtime(load_config(config_path))
    try:
        run_once(rt)
        for _ in range(100):
            deliver(rt)
            if undelivered(rt.db_path) == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"outbox not empty: {undelivered(rt.db_path)} alerts left")
    finally:
        rt.close()


def flaky_deliver(rt: Runtime) -> None:
    """``monitor deliver`` in a process of its own, with the harness's channel bug (tests/flaky_cli.py).

    It exits 1 when a message failed (the bug did its work) and 0 when all went; nothing else.
    """
    done = subprocess.run([sys.executable, "-m", "tests.flaky_cli", "--config", str(rt.config.base_dir / "config.toml"),
                           "deliver"], env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          timeout=120, check=False)
    assert done.returncode in (0, 1), done.stderr.decode()[-2000:]


def start(config_path: Path, log_path: Path, *command: str) -> subprocess.Popen:
    """``monitor`` with a Slack channel that raises unexpected errors (tests/flaky_cli.py)."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.flaky_cli", "--config", str(config_path), *command],
                                env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=log)


def start_rival(config_path: Path, log_path: Path) -> subprocess.Popen:
    """A second deliverer beside the daemon: ``monitor deliver`` again and again, in its own process group."""
    command = f"{sys.executable} -m tests.flaky_cli --config {config_path} deliver"
    with open(log_path, "ab") as log:
        return subprocess.Popen(["sh", "-c", f"while :; do {command}; done"], env=os.environ.copy(),
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


def kill_during(process: subprocess.Popen, log_path: Path, offset: int, job: str, turn: int,
                delay: float) -> list[str]:
    """Wait for ``job``'s ``turn``-th start (at most 20 s), ``delay`` more, SIGKILL; return the jobs in flight.

    All jobs start together when the daemon starts, so later turns are where an extract, score or
    deliver job finds the work an earlier job of the same run left for it.
    """
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        if _job_names(log_path.read_text(errors="replace")[offset:], "started").count(job) >= turn:
            break
        time.sleep(0.02)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    lines = log_path.read_text(errors="replace")[offset:]
    started = Counter(name for name in _job_names(lines, "started"))
    finished = Counter(name for name in _job_names(lines, "finished"))
    return sorted(name for name in started if started[name] > finished[name])


def _job_names(log_text: str, what: str) -> list[str]:
    return [line.split(" job ", 1)[1].split(" ")[0] for line in log_text.splitlines() if line.endswith(f" {what}")
            and " job " in line]


FETCH_JOB = {"edgar": "edgar-latest", "market": "market", "release": "feeds"}


@pytest.fixture
def world():
    with FixtureServer() as sec, FixtureServer() as wire:
        yield World(sec, wire)


def test_killed_daemon_ends_with_the_store_of_a_run_never_killed(tmp_path, world, monkeypatch):
    long_run = KILLS >= len(world.plan)
    step_count = len(world.plan) if long_run else KILLS
    kills_per_step = [1] * step_count
    rng = random.Random(20261124)
    for extra in range(KILLS - step_count):
        kills_per_step[rng.randrange(step_count)] += 1

    (tmp_path / "reference").mkdir()
    (tmp_path / "crashed").mkdir()
    with WebhookReceiver() as slack, SMTPServer() as smtp:
        reference = tmp_path / "reference" / "config.toml"
        reference.write_text(world.config_toml(tmp_path / "reference" / "monitor.db", smtp.host, smtp.port))
        monkeypatch.setenv("MONITOR_SLACK_WEBHOOK", slack.url + SECRET_PATH)
        for step in range(1, step_count + 1):
            world.advance(step)
            catch_up(reference)

    world.reset()
    (tmp_path / "bugs").mkdir()
    monkeypatch.setenv(BUG_DIR_ENV, str(tmp_path / "bugs"))
    in_flight: Counter[str] = Counter()
    killed = 0
    log_path = tmp_path / "crashed" / "daemon.log"
    with WebhookReceiver() as slack, SMTPServer() as smtp:
        slack.script(*[Answer(200, delay=0.3) for _ in range(5000)])  # slow enough to be killed mid-send
        crashed = tmp_path / "crashed" / "config.toml"
        crashed.write_text(world.config_toml(tmp_path / "crashed" / "monitor.db", smtp.host, smtp.port))
        monkeypatch.setenv("MONITOR_SLACK_WEBHOOK", slack.url + SECRET_PATH)
        for step in range(1, step_count + 1):
            (revealed,) = world.advance(step)
            for _ in range(kills_per_step[step - 1]):
                job = rng.choice([FETCH_JOB[revealed.kind], "extract", "score", "deliver"])
                offset = log_path.stat().st_size if log_path.exists() else 0
                daemon = start(crashed, log_path, "-v", "run")
                rival = start_rival(crashed, tmp_path / "crashed" / "deliverer.log")
                running = kill_during(daemon, log_path, offset, job, rng.randint(1, 3), rng.uniform(0, 0.4))
                in_flight.update(running or ["(idle)"])
                os.killpg(rival.pid, signal.SIGKILL)
                rival.wait()
                killed += 1
            catch_up(crashed, flaky_deliver)
        db = store.open_db(tmp_path / "crashed" / "monitor.db")
        sent = db.execute("select channel, message_key, count(*) from outbox group by 1, 2").fetchall()
        db.close()
        slack_keys = {key for channel, key, _ in sent if channel == "slack"}
        email_keys = {key for channel, key, _ in sent if channel == "email"}
        received_mail = [r.message["Message-ID"] for r in smtp.messages]
        slack_unique, slack_raw = set(slack.unique_keys()), len(slack.requests)

    expected, got = snapshot(tmp_path / "reference" / "monitor.db"), snapshot(tmp_path / "crashed" / "monitor.db")
    for table in expected:
        assert got[table] == expected[table], f"{table} differs from the run never killed"
    assert slack_unique == slack_keys
    assert set(received_mail) == {message_id(key) for key in email_keys}
    # Copies come only from kills between a send and its "sent" mark (one in flight per killed
    # deliverer), never from the two deliverers sending one message side by side.
    assert slack_raw - len(slack_keys) <= 2 * killed
    assert len(received_mail) - len(email_keys) <= 2 * killed
    bugs = len(list((tmp_path / "bugs").iterdir()))
    print(f"\n{killed} kills of the daemon and of `monitor deliver` run in a loop beside it (both with a Slack "
          f"channel raising unexpected errors) over {step_count} steps; jobs running at the kill: "
          + ", ".join(f"{name} {n}" for name, n in in_flight.most_common())
          + f"\nstores equal: {len(got['documents'])} documents, {len(got['disclosures'])} disclosures, "
          f"{len(got['market_observations'])} market observations, {len(got['scorecards'])} scorecards, "
          f"{len(got['alerts'])} alerts; delivered once per key: {len(slack_keys)} Slack messages "
          f"({slack_raw} POSTs, {bugs} failed first with a channel bug), {len(email_keys)} e-mails "
          f"({len(received_mail)} received)")
