"""The extraction stage: disclosures stored once per document and rules version, in one transaction each.

Documents are the real bundled samples (parsed as the replay parses them). The
extractor is ``FakeExtractor``, a stand-in with the Extractor's interface whose
findings are fixed by the text (one ``power`` disclosure per line naming a
number of MW), so these tests check the plumbing, not the classifier.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from monitor import store
from monitor.errors import ConfigError, ParseError, StoreError
from monitor.extract.model import WITHHELD, Disclosure
from monitor.extract.stage import (
    ExtractResult,
    extract_pending,
    load_extractor,
    reextract_all,
    reextract_parallel,
)
from monitor.fetch.replay import load_manifest, sample_document
from monitor.pipeline import Runtime, job_extract, scheduled_jobs
from tests.conftest import MODEL, ROOT, SAMPLES, make_config

WIND_FARM = "wire/releases/MARA_2024-12-03_acquires-wind-farm-hansford-county.txt"
COREWEAVE_200MW = "wire/releases/CORZ_2024-06-05_may-2024-production-update-coreweave-200mw.txt"
RIVER_BEND = "wire/releases/HUT_2025-12-17_river-bend-245mw-fluidstack-lease-google-backstop.txt"
NOTES_950M = "wire/releases/MARA_2025-07-23_950m-zero-coupon-convertible-notes-pricing.txt"
SAMPLE_FILES = (WIND_FARM, COREWEAVE_200MW, RIVER_BEND, NOTES_950M)
_MW = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*MW\b")


class FakeExtractor:
    """The Extractor's interface with findings fixed by the text: a ``power`` disclosure per line with MW.

    ``fail_on``: raise ``error`` for a text containing this string. ``withhold``: report usd as withheld.
    ``bad_value``: put a value SQLite cannot store into every disclosure's mw.
    """

    def __init__(self, version: str = "v1", fail_on: str = "", error: type[Exception] = RuntimeError,
                 withhold: bool = False, bad_value: bool = False) -> None:
        self.version = version
        self.fail_on, self.error, self.withhold, self.bad_value = fail_on, error, withhold, bad_value

    def extract(self, text: str) -> list[Disclosure]:
        if self.fail_on and self.fail_on in text:
            raise (ParseError("fake", "cannot read this") if self.error is ParseError else self.error("boom"))
        found = []
        offset = 0
        for line in text.split("\n"):
            match = _MW.search(line)
            if match:
                mw: Any = [1] if self.bad_value else float(match.group(1).replace(",", ""))
                found.append(Disclosure("power", "binding", "positive", line, offset, offset + len(line), mw=mw,
                                        usd=WITHHELD if self.withhold else None))
            offset += len(line) + 1
        return found


def sample_ids(db: sqlite_utils.Database, *files: str) -> list[int]:
    """Store the named bundled samples (all of SAMPLE_FILES by default); return their document ids."""
    by_file = {sample.file: sample for sample in load_manifest(SAMPLES)}
    documents = [sample_document(SAMPLES, by_file[name]) for name in files or SAMPLE_FILES]
    return store.save_documents(db, documents)


def expected_count(db: sqlite_utils.Database, extractor: FakeExtractor) -> int:
    return sum(len(extractor.extract(row["text"])) for row in store.list_documents(db, with_text=True))


def without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != "extracted_at"} for row in rows]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = store.open_db(tmp_path / "m.db")
    yield database
    database.close()


# --- schema ------------------------------------------------------------------------------------


def test_the_store_has_disclosures_and_extractions_tables_with_their_indexes(db: sqlite_utils.Database) -> None:
    assert {"disclosures", "extractions"} <= set(db.table_names())
    indexes = {tuple(index.columns) for index in db["disclosures"].indexes}
    assert {("document_id",), ("ticker", "type")} <= indexes


# --- extract_pending ------------------------------------------------------------------------------


def test_extract_pending_stores_every_documents_disclosures(db: sqlite_utils.Database) -> None:
    ids = sample_ids(db)
    extractor = FakeExtractor()

    result = extract_pending(db, extractor)

    assert (result.documents, result.errors) == (len(ids), [])
    assert result.disclosures == expected_count(db, extractor) > 0
    assert len(store.list_disclosures(db)) == result.disclosures


def test_each_extracted_document_gets_an_extractions_row_with_the_rules_version(db: sqlite_utils.Database) -> None:
    ids = sample_ids(db)

    extract_pending(db, FakeExtractor("v1"))

    rows = store.list_extractions(db)
    assert [row["document_id"] for row in rows] == ids
    assert {(row["rules_version"], row["error"]) for row in rows} == {("v1", "")}
    assert sum(row["disclosures"] for row in rows) == len(store.list_disclosures(db))


def test_a_disclosure_row_carries_its_documents_ticker_url_date_and_sentence(db: sqlite_utils.Database) -> None:
    [document_id] = sample_ids(db, WIND_FARM)
    extract_pending(db, FakeExtractor())
    [document] = store.list_documents(db, with_text=True)

    rows = store.list_disclosures(db, document_id=document_id)

    assert rows, "the wind-farm release names 240 MW"
    for row in rows:
        assert (row["ticker"], row["url"], row["published_at"]) == ("MARA", document["url"], "2024-12-03")
        assert document["text"][row["start"]:row["end"]] == row["sentence"]
        assert "MW" in row["sentence"]


def test_numbers_are_stored_as_numbers_and_withheld_values_as_the_string_withheld(
    db: sqlite_utils.Database,
) -> None:
    sample_ids(db, WIND_FARM)

    extract_pending(db, FakeExtractor(withhold=True))

    row = store.list_disclosures(db)[0]
    assert row["usd"] == "withheld"
    assert isinstance(row["mw"], float)
    assert db.execute("select typeof(usd), typeof(mw) from disclosures limit 1").fetchone() == ("text", "real")


def test_a_second_run_extracts_nothing_and_adds_no_rows(db: sqlite_utils.Database) -> None:
    sample_ids(db)
    extract_pending(db, FakeExtractor())
    before = store.list_disclosures(db)

    again = extract_pending(db, FakeExtractor())

    assert (again.documents, again.disclosures) == (0, 0)
    assert store.list_disclosures(db) == before


def test_a_new_document_is_extracted_alone_on_the_next_run(db: sqlite_utils.Database) -> None:
    sample_ids(db, WIND_FARM, NOTES_950M)
    extract_pending(db, FakeExtractor())
    [new_id] = sample_ids(db, COREWEAVE_200MW)

    result = extract_pending(db, FakeExtractor())

    assert result.documents == 1
    assert store.list_extractions(db)[-1]["document_id"] == new_id


def test_a_changed_rules_version_recomputes_every_document_without_duplicates(db: sqlite_utils.Database) -> None:
    ids = sample_ids(db)
    first = extract_pending(db, FakeExtractor("v1"))

    second = extract_pending(db, FakeExtractor("v2"))

    assert second.documents == len(ids)
    rows = store.list_disclosures(db)
    assert len(rows) == first.disclosures
    assert {row["rules_version"] for row in rows} == {"v2"}
    assert {row["rules_version"] for row in store.list_extractions(db)} == {"v2"}


def test_limit_extracts_at_most_that_many_documents_in_id_order(db: sqlite_utils.Database) -> None:
    ids = sample_ids(db)

    result = extract_pending(db, FakeExtractor(), limit=2)

    assert result.documents == 2
    assert [row["document_id"] for row in store.list_extractions(db)] == ids[:2]


# --- failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "message"),
    [(ParseError, "fake: cannot read this"), (RuntimeError, "RuntimeError: boom")],
    ids=["MonitorError", "any-Exception"],
)
def test_a_failing_document_records_its_error_and_the_others_proceed(
    db: sqlite_utils.Database, error: type[Exception], message: str
) -> None:
    ids = sample_ids(db)
    extractor = FakeExtractor(fail_on="Hansford County", error=error)

    result = extract_pending(db, extractor)

    failed = ids[SAMPLE_FILES.index(WIND_FARM)]
    assert result.documents == len(ids)
    assert len(result.errors) == 1 and f"document {failed}" in result.errors[0]
    ledger = {row["document_id"]: row for row in store.list_extractions(db)}
    assert (ledger[failed]["error"], ledger[failed]["disclosures"]) == (message, 0)
    assert store.list_disclosures(db, document_id=failed) == []
    assert all(ledger[i]["error"] == "" for i in ids if i != failed)
    others = {row["document_id"] for row in store.list_disclosures(db)}
    assert others == {ids[SAMPLE_FILES.index(RIVER_BEND)]}  # the other release that names MW


def test_a_failure_is_logged_naming_the_document(db: sqlite_utils.Database, caplog: pytest.LogCaptureFixture) -> None:
    [document_id] = sample_ids(db, WIND_FARM)

    extract_pending(db, FakeExtractor(fail_on="Hansford"))

    assert f"document {document_id}: extraction failed: RuntimeError: boom" in caplog.text


def test_a_failed_document_is_tried_again_only_when_the_rules_change(db: sqlite_utils.Database) -> None:
    sample_ids(db, WIND_FARM)
    extract_pending(db, FakeExtractor("v1", fail_on="Hansford"))

    same_rules = extract_pending(db, FakeExtractor("v1"))
    new_rules = extract_pending(db, FakeExtractor("v2"))

    assert same_rules.documents == 0
    assert (new_rules.documents, new_rules.errors) == (1, [])
    assert store.list_extractions(db)[0]["error"] == ""


def test_a_failed_write_rolls_back_the_whole_document(db: sqlite_utils.Database) -> None:
    [document_id] = sample_ids(db, WIND_FARM)
    extract_pending(db, FakeExtractor("v1"))
    before = (store.list_disclosures(db), store.list_extractions(db))
    assert before[0], "the wind-farm release names 240 MW"
    good = {"type": "power", "commitment": "binding", "direction": "positive", "sentence": "200 MW", "mw": 200.0}
    unstorable = {**good, "mw": {"not": "a number"}}

    with pytest.raises(StoreError, match=f"disclosures of document {document_id}"):
        store.save_extraction(db, document_id, "v2", [good, unstorable])

    assert (store.list_disclosures(db), store.list_extractions(db)) == before


def test_a_document_whose_disclosures_cannot_be_stored_gets_an_error_row_and_the_others_proceed(
    db: sqlite_utils.Database,
) -> None:
    ids = sample_ids(db, NOTES_950M, WIND_FARM)  # the notes release names no MW: nothing to store, no error

    result = extract_pending(db, FakeExtractor(bad_value=True))

    ledger = {row["document_id"]: row for row in store.list_extractions(db)}
    assert "storing its disclosures failed" in ledger[ids[1]]["error"]
    assert ledger[ids[0]]["error"] == ""
    assert store.list_disclosures(db) == []
    assert len(result.errors) == 1


# --- reextract -----------------------------------------------------------------------------------------


def test_reextract_all_recomputes_documents_already_extracted_with_the_same_rules(
    db: sqlite_utils.Database,
) -> None:
    ids = sample_ids(db)
    extract_pending(db, FakeExtractor())
    before = without_times(store.list_disclosures(db))

    result = reextract_all(db, FakeExtractor())

    assert result.documents == len(ids)
    assert [row["sentence"] for row in store.list_disclosures(db)] == [row["sentence"] for row in before]


def test_reextract_with_two_workers_stores_what_one_worker_stores(tmp_path: Path, closing: Any) -> None:
    one = closing(store.open_db(tmp_path / "one.db"))
    two = closing(store.open_db(tmp_path / "two.db"))
    for database in (one, two):
        sample_ids(database)
        extract_pending(database, FakeExtractor("v0"))  # old rows the re-extraction must replace
    factory = partial(FakeExtractor, "v1", fail_on="Hansford")  # picklable: workers build their own

    serial = reextract_all(one, factory())
    parallel = reextract_parallel(two, factory, workers=2)

    assert (parallel.documents, parallel.disclosures, len(parallel.errors)) == \
        (serial.documents, serial.disclosures, 1)
    assert without_times(store.list_disclosures(two)) == without_times(store.list_disclosures(one))
    assert without_times(store.list_extractions(two)) == without_times(store.list_extractions(one))


def test_reextract_parallel_with_one_worker_runs_in_process(db: sqlite_utils.Database) -> None:
    sample_ids(db)

    result = reextract_parallel(db, FakeExtractor, workers=1)

    assert result.documents == len(SAMPLE_FILES)
    assert result.disclosures == len(store.list_disclosures(db))


# --- queries ---------------------------------------------------------------------------------------------


def test_list_disclosures_filters_by_ticker_whatever_its_case(db: sqlite_utils.Database) -> None:
    sample_ids(db)
    extract_pending(db, FakeExtractor())

    rows = store.list_disclosures(db, ticker="hut")

    assert rows and {row["ticker"] for row in rows} == {"HUT"}


def test_list_disclosures_of_one_document_are_in_text_order(db: sqlite_utils.Database) -> None:
    ids = sample_ids(db)
    extract_pending(db, FakeExtractor())

    rows = store.list_disclosures(db, document_id=ids[2])

    assert {row["document_id"] for row in rows} == {ids[2]}
    assert [row["start"] for row in rows] == sorted(row["start"] for row in rows)


# --- the pipeline's extract job ------------------------------------------------------------------------


def runtime(tmp_path: Path, offline: bool = True, rules_dir: Path = ROOT / "rules") -> Runtime:
    config = make_config(tmp_path, monitor={"rules_dir": str(rules_dir)})
    return Runtime(config, config.path(config.monitor.db), [], offline=offline)


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "online"])
def test_the_daemon_runs_extraction_every_minute_after_the_fetch_jobs(tmp_path: Path, offline: bool) -> None:
    jobs = scheduled_jobs(runtime(tmp_path, offline))
    names = [job.name for job in jobs]

    assert names[-2:] == ["extract", "score"]  # scoring reads what extraction wrote
    assert jobs[-2].every_seconds == 60


def test_the_extract_job_gives_every_stored_document_an_extractions_row(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    database = store.open_db(rt.db_path)
    ids = sample_ids(database)
    database.close()

    result = job_extract(rt)

    database = store.open_db(rt.db_path)
    ledger = store.list_extractions(database)
    database.close()
    assert (result.documents, result.errors) == (len(ids), [])
    assert [row["document_id"] for row in ledger] == ids


def test_the_extract_job_reports_a_missing_rules_folder_instead_of_raising(tmp_path: Path) -> None:
    result = job_extract(runtime(tmp_path, rules_dir=tmp_path / "no-rules"))

    assert result == ExtractResult(errors=[f"monitor.rules_dir: {tmp_path / 'no-rules'} is not a folder of "
                                           "rules (*.toml)"], aborted=True)


def test_loading_the_rules_from_a_missing_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="monitor.rules_dir"):
        load_extractor(tmp_path / "absent", MODEL)


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_workers_of_a_killed_reextract_exit_with_it(tmp_path: Path) -> None:
    """Issue 14.14: workers (and the resource tracker) were alive 45 s after the parent's SIGKILL."""
    import signal
    import subprocess
    import sys
    import time

    from monitor.fetch.replay import ReplayPlan, replay_samples

    db = store.open_db(tmp_path / "m.db")
    replay_samples(db, ReplayPlan(SAMPLES, {"MARA", "CORZ", "HUT", "APLD", "WULF"}))
    db.close()
    parent = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--config", str(ROOT / "config.toml"), "--db",
                               str(tmp_path / "m.db"), "reextract", "--workers", "2"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(_children(parent.pid)) < 3 and time.monotonic() < deadline:  # two workers and the tracker
        time.sleep(0.05)
    workers = _children(parent.pid)
    assert len(workers) >= 2 and parent.poll() is None, "reextract finished before it could be killed"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]
