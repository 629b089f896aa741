"""The SQLite store: schema and WAL, de-duplication, amendment links, atomic batches, poll health.

Document texts are real: MARA's 8-K and releases from data/samples/ (parsed the
way the replay parses them), so hashes and lengths are those of real documents.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlite_utils

from monitor import store
from monitor.documents import Document, strip_provenance
from monitor.errors import StoreError
from monitor.fetch.html_text import body_to_text
from tests.conftest import SAMPLES

RELEASES = SAMPLES / "wire" / "releases"
MARA_8K = SAMPLES / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm"
MARA_8K_URL = "https://www.sec.gov/Archives/edgar/data/1507605/000149315224047078/form8-k.htm"
WIND_FARM = RELEASES / "MARA_2024-12-03_acquires-wind-farm-hansford-county.txt"
WIND_FARM_URL = (
    "https://www.globenewswire.com/news-release/2024/12/03/2990637/0/en/MARA-Acquires-Wind-Farm.html"
)
NOTES_950M = RELEASES / "MARA_2025-07-23_950m-zero-coupon-convertible-notes-pricing.txt"

TABLES = {"companies", "documents", "document_aliases", "fetch_state", "fetch_errors", "sources"}


def text_of(path: Path) -> str:
    content_type = "text/html" if path.suffix == ".htm" else "text/plain"
    return body_to_text(strip_provenance(path.read_bytes()), content_type, str(path)).text


def mara_8k() -> Document:
    return Document(
        source="edgar", ext_id="0001493152-24-047078:form8-k.htm", ticker="MARA", url=MARA_8K_URL,
        text=text_of(MARA_8K), form="8-K", doc_type="8-K", accession="0001493152-24-047078",
        cik=1507605, items=("1.01", "2.03", "3.02", "8.01", "9.01"), published_at="2024-11-21",
        via="latest-feed", period="2024-11-20",
    )


def wind_farm_release() -> Document:
    return Document(
        source="wire", ext_id=WIND_FARM_URL, ticker="MARA", url=WIND_FARM_URL, text=text_of(WIND_FARM),
        form="PR", doc_type="PR", published_at="2024-12-03", via="rss",
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite_utils.Database]:
    database = store.open_db(tmp_path / "store" / "m.db")
    yield database
    database.close()


def count(db: sqlite_utils.Database, table: str) -> int:
    return db.execute(f"select count(*) from {table}").fetchone()[0]


# --- open_db -------------------------------------------------------------------------


def test_open_db_creates_the_folder_and_every_table(tmp_path: Path) -> None:
    database = store.open_db(tmp_path / "new" / "folder" / "m.db")
    try:
        assert TABLES <= set(database.table_names())
    finally:
        database.close()


def test_open_db_uses_wal_journal_mode(db: sqlite_utils.Database) -> None:
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_many_threads_opening_a_new_store_at_once_all_get_it(tmp_path: Path) -> None:
    """Feeds are polled in parallel threads, each opening the store; the first run finds no file yet."""
    path = tmp_path / "m.db"
    start = threading.Barrier(8)

    def open_when_all_are_ready(_: int) -> str:
        start.wait()
        database = store.open_db(path)
        try:
            return str(database.execute("PRAGMA journal_mode").fetchone()[0])
        finally:
            database.close()

    for _ in range(5):
        path.unlink(missing_ok=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(open_when_all_are_ready, range(8))) == ["wal"] * 8


def test_reopening_the_store_keeps_its_documents(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = store.open_db(path)
    store.save_documents(first, [mara_8k()])
    first.close()

    again = store.open_db(path)
    try:
        [row] = store.list_documents(again)
        assert row["doc_key"] == "edgar:0001493152-24-047078:form8-k.htm"
    finally:
        again.close()


# --- de-duplication -------------------------------------------------------------------


def test_saving_a_new_document_returns_its_id(db: sqlite_utils.Database) -> None:
    [doc_id] = store.save_documents(db, [mara_8k()])

    row = db["documents"].get(doc_id)
    assert row["doc_key"] == "edgar:0001493152-24-047078:form8-k.htm"
    assert row["items"] == "1.01,2.03,3.02,8.01,9.01"
    assert row["text"] == mara_8k().text


def test_same_doc_key_twice_is_stored_once(db: sqlite_utils.Database) -> None:
    store.save_documents(db, [mara_8k()])

    assert store.save_documents(db, [mara_8k()]) == []
    assert count(db, "documents") == 1


def test_same_doc_key_twice_in_one_batch_is_stored_once(db: sqlite_utils.Database) -> None:
    assert len(store.save_documents(db, [mara_8k(), mara_8k()])) == 1
    assert count(db, "documents") == 1


def test_same_text_under_another_key_for_the_same_ticker_becomes_an_alias(db: sqlite_utils.Database) -> None:
    [first_id] = store.save_documents(db, [wind_farm_release()])
    reprint = dataclasses.replace(
        wind_farm_release(), ext_id="https://reprints.example.net/mara-wind-farm",
        url="https://reprints.example.net/mara-wind-farm", via="replay",
    )

    assert store.save_documents(db, [reprint]) == []
    assert count(db, "documents") == 1
    [alias] = db["document_aliases"].rows
    assert (alias["doc_key"], alias["document_id"], alias["via"]) == (
        "wire:https://reprints.example.net/mara-wind-farm", first_id, "replay",
    )


def test_an_aliased_key_counts_as_known(db: sqlite_utils.Database) -> None:
    store.save_documents(db, [wind_farm_release()])
    reprint = dataclasses.replace(wind_farm_release(), ext_id="reprint-guid")
    store.save_documents(db, [reprint])

    assert store.has_document(db, "wire:reprint-guid")


def test_same_text_differing_only_in_case_and_spacing_is_a_duplicate(db: sqlite_utils.Database) -> None:
    store.save_documents(db, [wind_farm_release()])
    release = wind_farm_release()
    shouted = dataclasses.replace(release, ext_id="shouted", text=release.text.upper())

    assert store.save_documents(db, [shouted]) == []


def test_same_text_for_another_ticker_is_stored_again(db: sqlite_utils.Database) -> None:
    store.save_documents(db, [wind_farm_release()])
    other = dataclasses.replace(wind_farm_release(), ext_id="other-company-copy", ticker="RIOT")

    assert len(store.save_documents(db, [other])) == 1
    assert count(db, "documents") == 2
    assert count(db, "document_aliases") == 0


# --- amendments ---------------------------------------------------------------------


def amendment(**changes: object) -> Document:
    fields: dict[str, object] = dict(
        ext_id="0001493152-24-099999:form8-ka.htm", text=text_of(NOTES_950M), form="8-K/A", doc_type="8-K/A",
        accession="0001493152-24-099999", published_at="2024-12-02",
    )
    fields.update(changes)
    return dataclasses.replace(mara_8k(), **fields)  # type: ignore[arg-type]


def test_8k_amendment_is_linked_to_the_earlier_8k_of_the_same_ticker(db: sqlite_utils.Database) -> None:
    [original_id] = store.save_documents(db, [mara_8k()])

    [amendment_id] = store.save_documents(db, [amendment()])

    assert db["documents"].get(amendment_id)["amends_id"] == original_id


def test_8k_amendment_is_not_linked_to_another_tickers_8k(db: sqlite_utils.Database) -> None:
    store.save_documents(db, [dataclasses.replace(mara_8k(), ticker="RIOT")])

    [amendment_id] = store.save_documents(db, [amendment()])

    assert db["documents"].get(amendment_id)["amends_id"] is None


def test_8k_amendment_is_not_linked_to_a_later_8k(db: sqlite_utils.Database) -> None:
    store.save_documents(db, [mara_8k()])  # filed 2024-11-21

    [amendment_id] = store.save_documents(db, [amendment(published_at="2024-11-01")])

    assert db["documents"].get(amendment_id)["amends_id"] is None


def test_an_original_filing_amends_nothing(db: sqlite_utils.Database) -> None:
    [doc_id] = store.save_documents(db, [mara_8k()])

    assert db["documents"].get(doc_id)["amends_id"] is None


# --- atomic batches ------------------------------------------------------------------


def test_batch_whose_second_document_is_refused_stores_nothing(db: sqlite_utils.Database) -> None:
    refused = dataclasses.replace(wind_farm_release(), ticker=None)  # violates documents.ticker NOT NULL

    with pytest.raises((sqlite3.IntegrityError, StoreError)):
        store.save_documents(db, [mara_8k(), refused])

    assert count(db, "documents") == 0
    assert count(db, "document_aliases") == 0


def test_store_is_usable_after_a_refused_batch(db: sqlite_utils.Database) -> None:
    refused = dataclasses.replace(wind_farm_release(), ticker=None)
    with pytest.raises((sqlite3.IntegrityError, StoreError)):
        store.save_documents(db, [mara_8k(), refused])

    assert len(store.save_documents(db, [mara_8k()])) == 1


def test_a_write_the_database_refuses_raises_store_error(db: sqlite_utils.Database) -> None:
    db.execute("PRAGMA query_only = ON")  # every write is now refused by SQLite

    with pytest.raises(StoreError):
        store.save_documents(db, [mara_8k()])


# --- poll health ----------------------------------------------------------------------


def source_row(db: sqlite_utils.Database, name: str) -> dict[str, object]:
    return db["sources"].get(name)


def test_record_poll_counts_consecutive_failures(db: sqlite_utils.Database) -> None:
    store.record_poll(db, "edgar:latest", ok=False, error="timeout")
    store.record_poll(db, "edgar:latest", ok=False, error="HTTP 503")

    row = source_row(db, "edgar:latest")
    assert row["consecutive_failures"] == 2
    assert row["last_error"] == "HTTP 503"
    assert row["last_success_at"] is None


def test_record_poll_success_resets_the_failure_count(db: sqlite_utils.Database) -> None:
    store.record_poll(db, "edgar:latest", ok=False, error="timeout")
    store.record_poll(db, "edgar:latest", ok=False, error="timeout")

    store.record_poll(db, "edgar:latest", ok=True, added=3)

    row = source_row(db, "edgar:latest")
    assert (row["consecutive_failures"], row["last_error"]) == (0, "")
    assert row["last_success_at"] == row["last_attempt_at"]


def test_record_poll_failure_keeps_the_last_success_time(db: sqlite_utils.Database) -> None:
    store.record_poll(db, "edgar:latest", ok=True)
    succeeded_at = source_row(db, "edgar:latest")["last_success_at"]

    store.record_poll(db, "edgar:latest", ok=False, error="timeout")

    assert source_row(db, "edgar:latest")["last_success_at"] == succeeded_at


def test_record_poll_adds_up_documents_added(db: sqlite_utils.Database) -> None:
    store.record_poll(db, "replay", ok=True, added=3)
    store.record_poll(db, "replay", ok=False, error="x")
    store.record_poll(db, "replay", ok=True, added=2)

    assert source_row(db, "replay")["documents_added"] == 5


def test_record_poll_keeps_the_cursor_when_not_given_one(db: sqlite_utils.Database) -> None:
    store.record_poll(db, "edgar:latest", ok=True, cursor="0001193125-25-316845")

    store.record_poll(db, "edgar:latest", ok=False, error="timeout")

    assert store.get_cursor(db, "edgar:latest") == "0001193125-25-316845"


def test_record_poll_moves_the_cursor_when_given_one(db: sqlite_utils.Database) -> None:
    store.record_poll(db, "edgar:latest", ok=True, cursor="0001193125-25-316845")

    store.record_poll(db, "edgar:latest", ok=True, cursor="0001193125-25-316900")

    assert store.get_cursor(db, "edgar:latest") == "0001193125-25-316900"


def test_cursor_of_an_unknown_source_is_empty(db: sqlite_utils.Database) -> None:
    assert store.get_cursor(db, "never-polled") == ""
