"""The daemon and the side jobs: clean stop on SIGTERM, ticker map refresh."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from monitor import store
from monitor.pipeline import Runtime, build_client, job_refresh_tickers
from monitor.tickers import cached_tickers_path, load_ticker_map
from tests.conftest import ROOT, USER_AGENT, make_config
from tests.servers import Reply


def test_daemon_replays_offline_and_stops_cleanly_on_sigterm(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        (ROOT / "config.toml").read_text()
        .replace('db = "data/monitor.db"', f'db = "{tmp_path / "monitor.db"}"')
        .replace('samples_dir = "data/samples"', f'samples_dir = "{ROOT / "data" / "samples"}"')
        .replace('tickers_file = "data/company_tickers.json"', f'tickers_file = "{ROOT / "data" / "company_tickers.json"}"')
    )
    daemon = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--config", str(config), "run", "--offline"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (tmp_path / "monitor.db").exists():
                db = store.open_db(tmp_path / "monitor.db")
                replayed = any(s["name"] == "replay" for s in store.status(db)["sources"])
                db.close()
                if replayed:
                    break
            time.sleep(0.2)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, stderr.decode()
    assert b"daemon stopped" in stderr
    db = store.open_db(tmp_path / "monitor.db")
    assert store.status(db)["documents"] >= 30
    db.close()


def test_ticker_map_is_refreshed_from_sec_and_preferred_to_the_bundled_copy(tmp_path, closing, sec_server):
    sec_server.route("/files/company_tickers.json",
                     Reply(200, b'{"0":{"cik_str":1507605,"ticker":"MARA","title":"MARA Holdings, Inc."}}',
                           {"Content-Type": "application/json"}))
    config = make_config(tmp_path, sec_server)
    rt = closing(Runtime(config, config.path(config.monitor.db), [], offline=False,
                         client=build_client(config, USER_AGENT)))
    [result] = job_refresh_tickers(rt)
    assert result.errors == [] and cached_tickers_path(config).exists()
    assert load_ticker_map(config) == {"MARA": (1507605, "MARA Holdings, Inc.")}


def test_a_bad_ticker_map_from_sec_keeps_the_previous_one(tmp_path, closing, sec_server):
    sec_server.route("/files/company_tickers.json", Reply(200, b"<html>maintenance</html>", {"Content-Type": "text/html"}))
    config = make_config(tmp_path, sec_server)
    rt = closing(Runtime(config, config.path(config.monitor.db), [], offline=False,
                         client=build_client(config, USER_AGENT)))
    [result] = job_refresh_tickers(rt)
    assert result.errors and "company_tickers.json" in result.errors[0]
    assert not cached_tickers_path(config).exists()
    assert load_ticker_map(config)["MARA"][0] == 1507605
