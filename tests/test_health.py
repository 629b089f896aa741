"""Health: per-source staleness against [health] windows, outbox depths, and `monitor status` exit codes."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from click.testing import Result
from typer.testing import CliRunner

from monitor import store
from monitor.cli import app
from monitor.config import FetchJobName, load_config
from monitor.errors import ConfigError, DeliveryError
from monitor.health import check_health, job_windows
from monitor.notify.message import Message, Receipt
from monitor.notify.outbox import DeliverySettings, deliver_pending
from monitor.notify.source_alerts import raise_source_alerts
from monitor.pipeline import Runtime, fetch_jobs
from monitor.runs import record_start
from tests.conftest import ROOT, make_config

REPO_CONFIG = ROOT / "config.toml"
COMPANIES = [{"ticker": "MARA", "feeds": ["https://ir.example.com/rss"]}]


def monitor(db_path: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--config", str(REPO_CONFIG), "--db", str(db_path), *args])


def minutes_later(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


@pytest.fixture
def config(tmp_path):
    return make_config(tmp_path, companies=COMPANIES)


@pytest.fixture
def db(db_path):
    database = store.open_db(db_path)
    yield database
    database.close()


@pytest.fixture
def replayed(replayed_db) -> Path:
    """A replayed store (conftest's copy of the session's one offline run)."""
    return replayed_db


@pytest.fixture
def replayed_copy(replayed, tmp_path) -> Path:
    copy = tmp_path / "monitor.db"
    shutil.copy(replayed, copy)
    return copy


def age_success(db_path: Path, source: str, minutes: float) -> None:
    db = store.open_db(db_path)
    stamp = (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat(timespec="seconds")
    db.execute("update sources set last_success_at = ? where name = ?", [stamp, source])
    db.conn.commit()
    db.close()


# --- monitor status -----------------------------------------------------------------------


def test_a_fresh_store_after_run_once_offline_is_healthy(replayed) -> None:
    result = monitor(replayed, "status", "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert (status["healthy"], status["reasons"]) == (True, [])


def test_status_json_exits_1_and_names_a_source_older_than_its_window(replayed_copy) -> None:
    age_success(replayed_copy, "replay", minutes=50)  # window: 3 x feeds_poll_minutes (15) = 45 min

    result = monitor(replayed_copy, "status", "--json")

    assert result.exit_code == 1
    status = json.loads(result.stdout)
    [reason] = status["reasons"]
    assert reason.startswith("source replay is stale: last success ") and "window 45 min" in reason
    assert {s["name"]: s["stale"] for s in status["sources"]} == {"replay": True, "market-replay": False}


def test_status_json_reports_per_source_polls_windows_queues_and_dead_letters(replayed) -> None:
    status = json.loads(monitor(replayed, "status", "--json").stdout)

    [replay] = [source for source in status["sources"] if source["name"] == "replay"]
    assert {"last_success_at", "last_attempt_at", "consecutive_failures", "last_error", "window_minutes",
            "stale", "job"} <= replay.keys()
    assert replay["window_minutes"] == 45 and replay["job"] == "replay"
    assert {"healthy", "reasons", "run", "queues", "queued", "dead_letters",
            "recent_dead_letters"} <= status.keys()
    assert status["run"]["mode"] == "offline"


def test_the_status_table_marks_a_stale_source_and_exits_1(replayed_copy) -> None:
    age_success(replayed_copy, "market-replay", minutes=19 * 60)  # window: 3 x market_hours (6) = 18 h

    result = monitor(replayed_copy, "status")

    assert result.exit_code == 1
    assert "UNHEALTHY: source market-replay is stale" in result.stdout
    assert "STALE" in result.stdout


def test_status_of_a_store_nothing_ever_ran_in_exits_1(db_path) -> None:
    result = monitor(db_path, "status", "--json")

    assert result.exit_code == 1
    assert "no `monitor run` has been recorded" in json.loads(result.stdout)["reasons"][0]


# --- windows --------------------------------------------------------------------------------


def test_a_window_is_the_stale_factor_times_the_job_interval(tmp_path) -> None:
    config = make_config(tmp_path, health={"stale_factor": 2})

    windows = job_windows(config, offline=False)

    assert windows["edgar-latest"] == timedelta(minutes=20)  # schedule.edgar_poll_minutes = 10
    assert windows["market"] == timedelta(hours=12)


def test_a_window_in_stale_after_minutes_wins_over_the_factor(tmp_path) -> None:
    config = make_config(tmp_path, health={"stale_after_minutes": {"edgar-latest": 90}})

    assert job_windows(config, offline=False)["edgar-latest"] == timedelta(minutes=90)


def test_every_fetch_job_can_be_named_in_stale_after_minutes(config) -> None:
    runtimes = [Runtime(config, Path(), [], offline) for offline in (True, False)]
    names = {job.name for rt in runtimes for job in fetch_jobs(rt)}

    assert names == set(get_args(FetchJobName))


def test_an_unknown_job_in_stale_after_minutes_is_a_config_error_naming_the_key(tmp_path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[health]\nstale_after_minutes = { edgar = 60 }\n")

    with pytest.raises(ConfigError, match=r"health\.stale_after_minutes\.edgar"):
        load_config(path)


# --- staleness --------------------------------------------------------------------------------


def test_a_daemon_just_started_is_healthy_before_its_first_polls(config, db, db_path) -> None:
    record_start(db_path, "daemon", offline=False)

    health = check_health(db, config, now=minutes_later(1))

    assert health.healthy
    assert {s.name for s in health.sources} == {"edgar:latest", "edgar:tickers", "edgar:submissions:MARA",
                                                "edgar:companyfacts:MARA",
                                                "feed:MARA:https://ir.example.com/rss", "market:btc_usd",
                                                "market:hy_oas", "market:ust_10y", "market:px:MARA",
                                                "market:px:IBIT"}


def test_a_source_that_never_succeeded_is_stale_once_the_daemon_ran_longer_than_its_window(config, db,
                                                                                           db_path) -> None:
    record_start(db_path, "daemon", offline=False)
    store.record_poll(db, "edgar:latest", ok=False, error="www.sec.gov: HTTP 503")

    health = check_health(db, config, now=minutes_later(31))  # window 30 min

    assert not health.healthy
    assert "source edgar:latest is stale: never succeeded, window 30 min; last error: www.sec.gov: HTTP 503" \
        in health.reasons


def test_a_restarted_daemon_gives_a_source_one_window_from_its_start(config, db, db_path) -> None:
    store.record_poll(db, "edgar:latest", ok=True)
    record_start(db_path, "daemon", offline=False)
    later = minutes_later(40)

    [edgar] = [s for s in check_health(db, config, now=later).sources if s.name == "edgar:latest"]

    assert edgar.stale  # 40 min since its success and since the start
    record_start(db_path, "daemon", offline=False)
    [edgar] = [s for s in check_health(db, config, now=minutes_later(20)).sources if s.name == "edgar:latest"]
    assert not edgar.stale


def test_a_restart_does_not_hide_a_source_that_keeps_failing(config, db, db_path) -> None:
    db.execute("insert into sources (name, last_success_at) values ('edgar:latest', ?)",
               [(datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="seconds")])
    db.conn.commit()
    record_start(db_path, "daemon", offline=False)  # e.g. Restart=on-failure after a crash
    store.record_poll(db, "edgar:latest", ok=False, error="www.sec.gov: HTTP 503")  # its first poll fails

    [edgar] = [s for s in check_health(db, config, now=minutes_later(1)).sources if s.name == "edgar:latest"]

    assert edgar.stale


def test_a_once_run_beside_the_running_daemon_does_not_change_what_is_judged(config, db, db_path) -> None:
    record_start(db_path, "daemon", offline=False)  # this test's process plays the live daemon
    record_start(db_path, "once", offline=True)  # an operator's manual run without the env file

    health = check_health(db, config, now=minutes_later(1))

    assert (health.run["kind"], health.run["mode"]) == ("daemon", "online")
    assert health.healthy


def test_a_once_run_gets_no_grace_for_a_source_that_failed(config, db, db_path) -> None:
    record_start(db_path, "once", offline=True)
    store.record_poll(db, "replay", ok=False, error="samples missing")
    store.record_poll(db, "market-replay", ok=True)

    health = check_health(db, config)

    assert [s.name for s in health.sources if s.stale] == ["replay"]


def test_a_source_the_current_run_does_not_poll_is_listed_but_not_judged(config, db, db_path) -> None:
    store.record_poll(db, "replay", ok=True)  # from an earlier offline run
    record_start(db_path, "daemon", offline=False)

    health = check_health(db, config, now=minutes_later(24 * 60))

    [replay] = [s for s in health.sources if s.name == "replay"]
    assert (replay.job, replay.window_minutes, replay.stale) == (None, None, False)
    assert not any("replay" in reason for reason in health.reasons)


# --- outbox -----------------------------------------------------------------------------------


class Refusing:
    """A channel that refuses every message for good (a revoked webhook)."""

    name = "slack"

    def send(self, message: Message) -> Receipt:
        raise DeliveryError("slack", "HTTP 404 no_service", permanent=True)


def failing_source_alert(db, db_path) -> None:
    record_start(db_path, "once", offline=True)
    store.record_poll(db, "replay", ok=True)
    store.record_poll(db, "market-replay", ok=True)
    for _ in range(3):
        store.record_poll(db, "edgar:latest", ok=False, error="HTTP 503")  # not polled offline: not judged
    raise_source_alerts(db, threshold=3, channels=["slack"])


def test_queue_depths_count_messages_waiting_per_channel(config, db, db_path) -> None:
    failing_source_alert(db, db_path)

    health = check_health(db, config)

    assert (health.queues, health.queued, health.dead_letters) == ({"slack": {"pending": 1}}, 1, 0)


def test_dead_letters_are_reported_but_fail_health_only_when_asked(config, db, db_path) -> None:
    failing_source_alert(db, db_path)
    settings = DeliverySettings(batch_window=timedelta(0))
    deliver_pending(db, {"slack": Refusing()}, settings, now=minutes_later(1))

    reported = check_health(db, config)
    strict = check_health(db, config, fail_on_dead_letters=True)

    assert (reported.healthy, reported.dead_letters) == (True, 1)
    assert reported.recent_dead_letters[0]["last_error"] == "slack: HTTP 404 no_service"
    assert (strict.healthy, strict.reasons) == (False, ["1 dead letter in the outbox"])
