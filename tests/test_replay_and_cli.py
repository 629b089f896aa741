"""The ``monitor`` command line over the offline replay of data/samples/, and strip_provenance.

Every command runs in-process through typer's CliRunner with the repository's
config.toml and a database in tmp_path; nothing touches the network.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from monitor import store
from monitor.cli import app
from monitor.documents import strip_provenance
from tests.conftest import ROOT, SAMPLES

REPO_CONFIG = ROOT / "config.toml"
RELEASES = SAMPLES / "wire" / "releases"
NOTES_950M = RELEASES / "MARA_2025-07-23_950m-zero-coupon-convertible-notes-pricing.txt"
WIND_FARM = RELEASES / "MARA_2024-12-03_acquires-wind-farm-hansford-county.txt"




def monitor(db_path: Path, *args: str, config: Path = REPO_CONFIG) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), "--db", str(db_path), *args])


def documents_json(db_path: Path) -> list[dict[str, Any]]:
    result = monitor(db_path, "documents", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["documents"]


# --- run --once --offline --------------------------------------------------------------


def test_offline_run_once_exits_0_and_says_it_replayed(db_path: Path) -> None:
    result = monitor(db_path, "run", "--once", "--offline")

    assert result.exit_code == 0, result.output
    assert "offline replay" in result.stdout


def test_offline_run_once_stores_documents_for_the_sampled_companies(replayed_db: Path) -> None:
    tickers = {row["ticker"] for row in documents_json(replayed_db)}

    assert {"MARA", "CORZ", "WULF", "APLD", "HUT"} <= tickers


def test_offline_run_stores_the_mara_8k_with_its_items(replayed_db: Path) -> None:
    [row] = [r for r in documents_json(replayed_db) if r["doc_key"] == "edgar:0001493152-24-047078:form8-k.htm"]

    assert (row["ticker"], row["form"], row["items"]) == ("MARA", "8-K", "1.01,2.03,3.02,8.01,9.01")
    assert row["via"] == "replay"


def test_second_offline_run_adds_nothing(db_path: Path) -> None:
    monitor(db_path, "run", "--once", "--offline")
    before = monitor(db_path, "documents", "--json").stdout

    again = monitor(db_path, "run", "--once", "--offline")

    assert again.exit_code == 0, again.output
    assert "0 documents added" in again.stdout
    assert monitor(db_path, "documents", "--json").stdout == before


def test_status_json_reports_a_healthy_replay_source(replayed_db: Path) -> None:
    result = monitor(replayed_db, "status", "--json")

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    [replay] = [source for source in status["sources"] if source["name"] == "replay"]
    assert replay["consecutive_failures"] == 0
    assert replay["last_success_at"]
    assert replay["documents_added"] == status["documents"] > 0


def test_documents_json_on_an_empty_store_is_an_empty_list(db_path: Path) -> None:
    assert documents_json(db_path) == []


# --- ingest --------------------------------------------------------------------------


def test_ingest_stores_a_release_file(db_path: Path) -> None:
    result = monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "mara")

    assert result.exit_code == 0, result.output
    assert "stored as document" in result.stdout
    [row] = documents_json(db_path)
    assert (row["ticker"], row["source"], row["via"]) == ("MARA", "manual", "ingest")


def test_ingesting_the_same_file_twice_says_already_stored(db_path: Path) -> None:
    monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MARA")

    again = monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MARA")

    assert again.exit_code == 0, again.output
    assert "already stored" in again.stdout
    assert len(documents_json(db_path)) == 1


def test_ingesting_a_release_the_replay_already_stored_says_already_stored(replayed_db: Path) -> None:
    result = monitor(replayed_db, "ingest", str(WIND_FARM), "--ticker", "MARA")

    assert "already stored" in result.stdout


def test_ingest_extracts_and_scores_what_it_stored_and_prints_it(db_path: Path) -> None:
    result = monitor(db_path, "ingest", str(WIND_FARM), "--ticker", "MARA", "--published", "2024-12-03")

    assert result.exit_code == 0, result.output
    assert "disclosures in document" in result.stdout and "240" in result.stdout  # the wind farm's MW
    assert "alert [" in result.stdout and "power_acquisition with" in result.stdout
    [row] = documents_json(db_path)
    assert row["published_at"] == "2024-12-03" and row["published_guessed"] == 0


def test_ingest_refuses_a_date_it_cannot_read_and_names_the_format(db_path: Path) -> None:
    result = monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MARA", "--published", "03/11/2025")

    assert result.exit_code == 2
    assert "--published: '03/11/2025' is not a date: give it as YYYY-MM-DD" in result.output
    assert documents_json(db_path) == []


def test_ingest_without_a_date_flags_the_one_it_gives(db_path: Path) -> None:
    monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MARA")

    [row] = documents_json(db_path)
    assert row["published_guessed"] == 1


def test_ingest_for_an_unwatched_ticker_lists_the_watched_ones_unless_told_to_watch(db_path: Path) -> None:
    refused = monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MRA")
    accepted = monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MRA", "--watch")

    assert refused.exit_code == 2 and "MRA: not a watched company (watched: MARA, CORZ" in refused.output
    assert accepted.exit_code == 0 and [r["ticker"] for r in documents_json(db_path)] == ["MRA"]


def test_the_same_file_under_another_company_is_stored_for_it_too(db_path: Path) -> None:
    monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "MARA")

    other = monitor(db_path, "ingest", str(NOTES_950M), "--ticker", "CORZ")

    assert "stored as document" in other.stdout
    assert sorted(r["ticker"] for r in documents_json(db_path)) == ["CORZ", "MARA"]


def test_ingest_of_a_missing_file_is_a_usage_error(db_path: Path, tmp_path: Path) -> None:
    result = monitor(db_path, "ingest", str(tmp_path / "absent.txt"), "--ticker", "MARA")

    assert result.exit_code == 2
    assert "does not exist" in result.output


# --- help and configuration errors ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["documents"], ["status"], ["ingest"]],
    ids=["app", "run", "documents", "status", "ingest"],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout


def test_run_with_an_unknown_config_key_exits_2_naming_the_key(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[sec]\nbogus = 1\n\n[[companies]]\nticker = "MARA"\n', encoding="utf-8")

    result = monitor(db_path, "run", "--once", config=bad)

    assert result.exit_code == 2
    assert "sec.bogus" in result.stderr
    assert result.stdout == ""


def test_run_with_an_unknown_ticker_exits_2_naming_the_company_entry(db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    tickers = ROOT / "data" / "company_tickers.json"
    bad.write_text(f"[sec]\ntickers_file = '{tickers}'\n\n[[companies]]\nticker = 'ZZZZQX'\n")

    result = monitor(db_path, "run", "--once", "--offline", config=bad)

    assert result.exit_code == 2
    assert "companies.0.ticker" in result.stderr


def test_run_with_a_missing_config_file_exits_2(db_path: Path, tmp_path: Path) -> None:
    result = monitor(db_path, "run", "--once", "--offline", config=tmp_path / "absent.toml")

    assert result.exit_code == 2
    assert "config file not found" in result.stderr


# --- strip_provenance ------------------------------------------------------------------


def test_strip_provenance_removes_the_url_header_of_a_release_file() -> None:
    raw = WIND_FARM.read_bytes()
    assert raw.startswith(b"URL: https://www.globenewswire.com/")

    stripped = strip_provenance(raw)

    assert stripped.startswith(b"Site features 240 MW of interconnection capacity")
    assert b"Retrieved-from:" not in stripped and b"Corpus-date:" not in stripped


def test_strip_provenance_keeps_the_whole_body() -> None:
    raw = WIND_FARM.read_bytes()

    assert raw.endswith(strip_provenance(raw))


def test_strip_provenance_leaves_a_file_without_header_unchanged() -> None:
    filing = (SAMPLES / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm").read_bytes()

    assert strip_provenance(filing) == filing


# --- issue 14.11: a broken store, a failed stage ------------------------------------------------------


def test_run_on_a_broken_store_is_one_line_and_a_failed_stage_exits_non_zero(tmp_path: Path) -> None:
    """Issue 14.11: `run` on a garbage or truncated store printed a 100-line traceback, and `run --once`
    exited 0 after a stage failed."""
    good = tmp_path / "good.db"
    assert monitor(good, "run", "--once", "--offline").exit_code == 0
    truncated, garbage = tmp_path / "truncated.db", tmp_path / "garbage.db"
    truncated.write_bytes(good.read_bytes()[:len(good.read_bytes()) // 3])
    garbage.write_bytes(bytes(range(256)) * 64)
    for broken in (truncated, garbage):
        done = subprocess.run([sys.executable, "-m", "monitor.cli", "--config", str(REPO_CONFIG), "--db", str(broken),
                               "run", "--once", "--offline"], capture_output=True, timeout=120, check=False)
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines[-5:]
    config = tmp_path / "config.toml"  # the theses cannot be read: the score stage fails as a whole
    (tmp_path / "theses").mkdir()
    (tmp_path / "theses" / "broken.toml").write_text("id = [unclosed\n")
    config.write_text(f'[monitor]\nsamples_dir = "{SAMPLES}"\nrules_dir = "{ROOT / "rules"}"\n'
                      f'model_path = "{ROOT / "models" / "reader.joblib"}"\ntheses_dir = "{tmp_path / "theses"}"\n'
                      f'[sec]\ntickers_file = "{ROOT / "data" / "company_tickers.json"}"\n'
                      '[[companies]]\nticker = "MARA"\n')
    failed = monitor(tmp_path / "stage.db", "run", "--once", "--offline", config=config)
    assert failed.exit_code == 1 and "score stage failed" in failed.output, failed.output


def test_ingest_refuses_a_device_an_oversized_file_and_binary_content(tmp_path: Path) -> None:
    """Issue 14.13: `ingest` read /dev/zero forever, a 200 MB file whole, and stored random bytes as text."""
    config = tmp_path / "config.toml"
    config.write_text("[http]\nmax_body_bytes = 50000\n")
    (tmp_path / "big.txt").write_text("The company signed a lease. " * 2000)
    (tmp_path / "random.bin").write_bytes(random.Random(14).randbytes(20000))
    store.open_db(tmp_path / "m.db").close()
    expected = {"/dev/zero": "not a regular file", str(tmp_path / "big.txt"): "50,000-byte limit",
                str(tmp_path / "random.bin"): "binary data"}
    for path, cause in expected.items():
        done = subprocess.run([sys.executable, "-m", "monitor.cli", "--config", str(config), "--db",
                               str(tmp_path / "m.db"), "ingest", path, "--ticker", "MARA", "--watch"],
                              capture_output=True, timeout=60, check=False)
        assert done.returncode == 2 and cause in done.stderr.decode(), done.stderr.decode()[-1000:]
    assert documents_json(tmp_path / "m.db") == []


def test_a_command_on_a_missing_store_is_an_error_not_a_new_empty_store(tmp_path: Path) -> None:
    """Issue 15.5: `monitor --db /path/typo.db documents` made a folder and an empty store."""
    typo = tmp_path / "typo" / "monitor.db"

    result = monitor(typo, "documents")

    assert result.exit_code == 2 and "no store here (no such file)" in result.output
    assert not typo.parent.exists()


def test_an_unknown_ticker_is_an_error_listing_the_watched_ones(db_path: Path) -> None:
    """Issue 15.5: `disclosures --ticker MRA` returned an empty table with exit 0."""
    result = monitor(db_path, "disclosures", "--ticker", "MRA")

    assert result.exit_code == 2 and "MRA: not a watched company (watched: MARA, CORZ" in result.output


def test_alerts_filter_by_day_severity_and_ticker(replayed_db: Path) -> None:
    high = json.loads(monitor(replayed_db, "alerts", "--severity", "high", "--since", "2025-01-01", "--json").stdout)

    assert high["alerts"] and all(a["severity"] == "high" and a["as_of"] >= "2025-01-01" for a in high["alerts"])
    corz = json.loads(monitor(replayed_db, "alerts", "--ticker", "corz", "--json").stdout)["alerts"]
    assert corz and {a["ticker"] for a in corz} == {"CORZ"}


@pytest.mark.parametrize("command, records", [
    (["documents"], "documents"), (["disclosures"], "disclosures"), (["alerts"], "alerts"),
    (["scorecard", "MARA"], "scorecards"), (["ledger", "CORZ"], "deals"), (["ledger", "CORZ", "--unlinked"], "unlinked"),
    (["backtest", "CORZ"], "timelines"), (["market-data"], "series"), (["status"], "sources"),
])
def test_every_json_output_is_one_object_with_its_records_under_a_plural_noun(
        replayed_db: Path, command: list[str], records: str) -> None:
    """The README's JSON convention: an object (never a bare list), so a field can be added without
    breaking a script, with the records named for what they are."""
    result = monitor(replayed_db, *command, "--json")

    payload = json.loads(result.stdout)
    assert isinstance(payload, dict) and isinstance(payload[records], list | dict) and payload[records], result.stdout[:300]


def test_a_filtered_json_listing_echoes_the_scope_it_was_asked_for(replayed_db: Path) -> None:
    documents = json.loads(monitor(replayed_db, "documents", "--ticker", "corz", "--json").stdout)
    alerts = json.loads(monitor(replayed_db, "alerts", "--ticker", "corz", "--severity", "high", "--json").stdout)

    assert documents["ticker"] == "CORZ" and {d["ticker"] for d in documents["documents"]} == {"CORZ"}
    assert (alerts["ticker"], alerts["severity"], alerts["since"]) == ("CORZ", "high", None)
