"""`monitor browse`: Datasette over the store, with metadata and canned queries, read-only.

One store for the module, made the way a user makes it: `monitor run --once --offline` over a
copy of data/samples/ (plus one manifest entry whose file is missing, so the replay records a
real fetch error), then `monitor deliver` to a webhook receiver on 127.0.0.1, so alerts carry a
delivery status. The thesis copy waits 3650 days before a soft announcement lapses (the seed
waits 180, and every sample is older than that by the last market day), so some stay pending.
One `monitor browse` subprocess serves it on a free 127.0.0.1 port for the HTTP tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from monitor import store
from monitor.browse import HIDDEN_TABLES, QUERIES, TABLES, build_datasette, build_metadata
from monitor.cli import app
from tests.conftest import ROOT, SAMPLES
from tests.receivers import WebhookReceiver

TICKERS = ("MARA", "CORZ", "IREN", "WULF", "CIFR", "HUT", "RIOT", "CLSK", "APLD")
MISSING_SAMPLE = "wire/releases/MARA_2025-01-01_not-bundled.txt"
# Every canned query with a ticker runs for HUT: it has scorecards, alerts, deals and pending announcements
# (CORZ's one proposal, talk of "potential clients", is superseded by its CoreWeave contracts).
PARAMS = {"ticker": "HUT", "source": ""}


@dataclass(frozen=True)
class Store:
    config: Path
    db: Path


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line in a child process (its logging set-up stays out of pytest's)."""
    result = subprocess.run([sys.executable, "-m", "monitor.cli", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def offline_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    base = tmp_path_factory.mktemp("browse")
    samples = shutil.copytree(SAMPLES, base / "samples")
    with (samples / "manifest.toml").open("a", encoding="utf-8") as manifest:
        manifest.write(f'\n[[document]]\nfile = "{MISSING_SAMPLE}"\nticker = "MARA"\nsource = "wire"\nform = "PR"\n'
                       f'doc_type = "PR"\npublished = "2025-01-01"\nurl = "https://www.marathondh.com/news"\n')
    theses = base / "theses"
    theses.mkdir()
    seed = (ROOT / "rules" / "theses" / "mara_ai_pivot.toml").read_text(encoding="utf-8")
    (theses / "mara_ai_pivot.toml").write_text(re.sub(r"(?m)^lapse_days = 180", "lapse_days = 3650", seed),
                                               encoding="utf-8")
    config = base / "config.toml"
    config.write_text(f'''
[monitor]
db = "{base / 'monitor.db'}"
samples_dir = "{samples}"
rules_dir = "{ROOT / 'rules'}"
model_path = "{ROOT / 'models' / 'reader.joblib'}"
theses_dir = "{theses}"

[sec]
tickers_file = "{ROOT / 'data' / 'company_tickers.json'}"

[notify]
channels = ["slack"]
batch_window_minutes = 0
''' + "".join(f'\n[[companies]]\nticker = "{ticker}"\n' for ticker in TICKERS), encoding="utf-8")
    with WebhookReceiver() as slack:
        env = {"MONITOR_SLACK_WEBHOOK": slack.url + "/services/T000/B000/browse"}
        cli("--config", str(config), "run", "--once", "--offline", "--notify-history", env=env)
        cli("--config", str(config), "deliver", env=env)
    return Store(config, base / "monitor.db")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str  # the database's page, e.g. http://127.0.0.1:PORT/monitor
    banner: str  # what `monitor browse` printed when it started
    db: Path


@pytest.fixture(scope="module")
def server(offline_store: Store) -> Iterator[Server]:
    port = free_port()
    log = offline_store.db.parent / "browse.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--config", str(offline_store.config),
                                    "browse", "--port", str(port)], stdout=subprocess.PIPE, stderr=stderr)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/-/versions.json", timeout=2).raise_for_status()
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        assert process.stdout is not None
        banner = process.stdout.readline().decode()
        # Keep reading what the server prints (Datasette prints a rich traceback, locals and all, for a request
        # it fails on): a pipe nobody reads fills, and the server then blocks on its next print.
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield Server(f"{url}/monitor", banner, offline_store.db)
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def query(server: Server, name: str, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{server.url}/{name}.json", params={"_shape": "array", **params}, timeout=30)
    assert response.status_code == 200, response.text[:2000]
    return response.json()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


# --- canned queries ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_canned_query_returns_rows_on_the_offline_store(server: Server, name: str) -> None:
    params = {key: value for key, value in PARAMS.items() if f":{key}" in QUERIES[name]["sql"]}

    rows = query(server, name, **params)

    assert rows


def test_current_scorecards_has_one_row_per_company_and_thesis(server: Server) -> None:
    rows = query(server, "current_scorecards")

    assert sorted((row["thesis"], row["ticker"]) for row in rows) == sorted(("mara-ai-pivot", t) for t in TICKERS)
    assert all(set(json.loads(row["pillars"])) >= {"contracted_compute", "power"} for row in rows)


def test_scorecard_history_lists_only_the_ticker_asked_for_newest_first(server: Server) -> None:
    rows = query(server, "scorecard_history", ticker="corz")

    with read_only(server.db) as conn:
        stored = conn.execute("select count(*) from scorecards where ticker = 'CORZ'").fetchone()[0]
    assert len(rows) == stored
    assert [row["as_of"] for row in rows] == sorted((row["as_of"] for row in rows), reverse=True)


def test_evidence_cites_the_stored_disclosures_with_type_commitment_fields_url_and_date(server: Server) -> None:
    rows = [row for row in query(server, "scorecard_evidence", ticker="CORZ") if row["disclosure_id"]]

    assert rows
    with read_only(server.db) as conn:
        for row in rows:
            stored = conn.execute("select * from disclosures where id = ?", [row["disclosure_id"]]).fetchone()
            assert (row["sentence"], row["type"], row["commitment"], row["url"], row["day"]) == (
                stored["sentence"], stored["type"], stored["commitment"], stored["url"], stored["published_at"][:10])
            assert (row["mw"], row["usd"], row["term_years"]) == (stored["mw"], stored["usd"], stored["term_years"])


def test_alerts_show_their_delivery_status_per_channel(server: Server) -> None:
    rows = query(server, "alerts_delivery", ticker="")

    with read_only(server.db) as conn:
        alerts = conn.execute("select count(*) from alerts").fetchone()[0]
    assert len(rows) == alerts
    assert all(re.fullmatch(r"slack: sent, 1 attempts, sent \S+ \(.+\)", row["delivery"]) for row in rows)


def test_pending_lists_an_unconfirmed_soft_announcement_but_not_a_confirmed_one(server: Server) -> None:
    rows = query(server, "pending_soft_announcements", ticker="")
    pending = {(row["ticker"], row["family"], row["first_day"]) for row in rows}

    # APLD's plan to scale Ellendale "up to 1 gigawatt" has no binding follow-up in the samples; MARA's
    # soft wind-farm power plans of 2024-12-03 are confirmed by the same release's binding purchase.
    assert ("APLD", "power", "2025-06-02") in pending
    assert ("MARA", "power", "2024-12-03") not in pending
    assert all(row["sentence"] and row["url"].startswith("http") for row in rows)


def test_source_health_shows_the_failing_replay_and_the_error_behind_it(server: Server) -> None:
    health = {row["source"]: row for row in query(server, "source_health")}
    errors = query(server, "recent_fetch_errors", source="replay")

    assert health["replay"]["health"] == "failing"
    assert health["replay"]["errors_7d"] >= 1
    assert health["market-replay"]["health"] == "ok"
    assert any(row["url"] == MISSING_SAMPLE and row["error"] == "FileNotFoundError" for row in errors)


def test_the_server_sees_what_the_daemon_commits_while_it_runs(server: Server) -> None:
    db = store.open_db(server.db)
    try:
        store.record_error(db, "edgar-latest", "https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent",
                           "SourceTimeout", "read timeout after 20s (written while browsing)")
    finally:
        db.close()

    rows = query(server, "recent_fetch_errors", source="edgar-latest")

    assert [row["cause"] for row in rows] == ["read timeout after 20s (written while browsing)"]


# --- the server --------------------------------------------------------------------------------


def test_browse_binds_127_0_0_1_by_default_and_says_where(server: Server) -> None:
    assert server.banner.startswith(f"Datasette on {server.url}: read-only view of ")
    assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("table", sorted([*TABLES, *HIDDEN_TABLES]))
def test_every_table_page_renders_with_its_sort_facets_and_descriptions(server: Server, table: str) -> None:
    response = httpx.get(f"{server.url}/{table}", timeout=30)

    assert response.status_code == 200, response.text[:2000]
    if table in TABLES:
        assert " ".join(TABLES[table]["description"].split()[:3]) in response.text


def test_internal_tables_are_hidden_from_the_database_page(server: Server) -> None:
    tables = {t["name"]: t["hidden"] for t in httpx.get(f"{server.url}.json", timeout=30).json()["tables"]}

    assert {name for name, hidden in tables.items() if hidden} == set(HIDDEN_TABLES)


def test_a_write_statement_is_refused_and_the_store_file_is_unchanged(server: Server) -> None:
    before = digest(server.db)
    with read_only(server.db) as conn:
        alerts = conn.execute("select count(*) from alerts").fetchone()[0]

    statement = httpx.get(f"{server.url}.json", params={"sql": "delete from alerts"}, timeout=30)
    posted = httpx.post(f"{server.url}/current_scorecards", data={"ticker": "CORZ"}, timeout=30)

    assert statement.status_code == 400 and "must be a SELECT" in statement.json()["error"]
    assert posted.status_code >= 400
    assert digest(server.db) == before
    with read_only(server.db) as conn:
        assert conn.execute("select count(*) from alerts").fetchone()[0] == alerts


def test_the_store_refuses_datasette_its_write_connection(offline_store: Store) -> None:
    ds = build_datasette(offline_store.db)

    async def write() -> None:
        await ds.get_database("monitor").execute_write("delete from alerts")

    with pytest.raises(sqlite3.OperationalError, match="read-only"):
        asyncio.run(write())
    with read_only(offline_store.db) as conn:
        assert conn.execute("select count(*) from alerts").fetchone()[0] > 0


# --- the metadata ------------------------------------------------------------------------------


def test_metadata_describes_only_tables_and_columns_the_store_has(offline_store: Store) -> None:
    with read_only(offline_store.db) as conn:
        columns = {table: {row["name"] for row in conn.execute(f"pragma table_info('{table}')")}
                   for (table,) in conn.execute("select name from sqlite_master where type = 'table'")}

    for table in HIDDEN_TABLES:
        assert table in columns
    for table, meta in TABLES.items():
        named = {*meta.get("columns", {}), *meta.get("facets", [])}
        named |= {meta[key] for key in ("sort", "sort_desc", "label_column") if key in meta}
        assert named <= columns[table], (table, named - columns[table])


def test_no_canned_query_writes() -> None:
    queries = build_metadata("monitor")["databases"]["monitor"]["queries"]

    assert all("write" not in q and re.match(r"(select|with)\b", q["sql"]) for q in queries.values())


def test_metadata_out_writes_what_datasette_serves_the_documented_route_with(offline_store: Store,
                                                                              tmp_path: Path) -> None:
    out = tmp_path / "metadata.json"
    result = CliRunner().invoke(app, ["--db", str(offline_store.db), "browse", "--metadata-out", str(out)])
    assert result.exit_code == 0, result.output

    served = subprocess.run([str(Path(sys.executable).parent / "datasette"), str(offline_store.db), "--metadata",
                             str(out), "--get", "/monitor/current_scorecards.json?_shape=array"],
                            capture_output=True, text=True, timeout=120)

    assert served.returncode == 0, served.stderr[-2000:]
    assert {row["ticker"] for row in json.loads(served.stdout)} == set(TICKERS)
    assert json.loads(out.read_text())["databases"]["monitor"]["queries"].keys() == QUERIES.keys()


def test_browse_without_a_store_says_so_and_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "none.db"), "browse"])

    assert result.exit_code == 2
    assert "none.db: no store here; run `monitor run --once` first" in result.stderr
    assert not (tmp_path / "none.db").exists()
