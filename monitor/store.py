"""The SQLite store (sqlite-utils, WAL): small functions returning plain data.

Every write that belongs together happens in one ``transaction()`` block, so a
kill at any moment leaves either the whole filing or none of it, and a restart
simply fetches again what is missing. Documents are unique by ``doc_key``
(source + accession/file or feed GUID) and, per company, by content hash, so a
filing seen through the latest-filings feed and again through the submissions
JSON is stored once.

Market data lives in ``market_observations``: one value per (series, ISO day), upserted so that a
revised value replaces the old one and saving the same data twice changes no row.

Extraction results live in ``disclosures`` (one row per disclosure, with the
document's ticker, URL and date copied in for plain queries) and
``extractions`` (one row per extracted document: the rules version that
produced its disclosures, how many, or the error). A document's disclosures
and its ``extractions`` row are replaced together in one transaction, so they
always come from the same rules version. The numeric columns ``mw``, ``usd``
and ``term_years`` are declared without a type, so SQLite keeps each value as
given: a number, or the string ``"withheld"`` for a value redacted as ``[***]``
in an exhibit (never NULL, never a number).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import sqlite_utils

from monitor.documents import Document
from monitor.errors import StoreError

if TYPE_CHECKING:
    from monitor.fetch.rhythm import Rhythm

log = logging.getLogger(__name__)

def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


BUSY_TIMEOUT_MS = 30_000


def _switch_to_wal(db: sqlite_utils.Database) -> None:
    """Put a new store in WAL mode, retrying while another connection is doing the same.

    Two connections opening a fresh store at once (feeds are polled in parallel threads) both read
    the schema, then both ask for the exclusive lock the switch needs; SQLite answers the second
    "database is locked" at once, without its busy handler, to avoid a deadlock. So the busy timeout
    cannot help here and we wait ourselves, for as long as the busy timeout would. WAL mode persists
    in the file, so once one connection has switched, the others find it set and take no lock.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) the store with WAL and the schema in place.

    ``synchronous = NORMAL`` is SQLite's advice for WAL: a commit is in the log before it returns, so a
    killed process loses nothing; only a power cut may roll back the last commits, never corrupt, and
    every write here is idempotent (unique keys, cursors stored with what they cover, alerts resent
    under the same key), so a restart redoes them. It saves an fsync per commit (scoring ~30% faster).
    """
    try:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(path)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(path) != ":memory:":
            _switch_to_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from exc
    from monitor.schema import migrate  # the schema's migrations write through this module's transaction()

    migrate(db)
    return db


@contextmanager
def transaction(db: sqlite_utils.Database, what: str) -> Iterator[None]:
    """A write transaction whose SQLite failures become StoreError naming what was being written.

    The outermost block starts with ``BEGIN IMMEDIATE``: it takes the write lock first (waiting up
    to ``busy_timeout`` for another writer), so a read inside the block is never overtaken by another
    connection's commit. A deferred ``BEGIN`` that reads and then writes fails at once with "database
    is locked" when that happens in WAL mode, whatever the busy timeout, and jobs run in parallel
    threads. A nested block is a savepoint (``db.atomic()``).
    """
    try:
        if db.conn.in_transaction:
            with db.atomic():
                yield
            return
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.rollback()
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"{what}: {exc}") from exc


# --- companies -----------------------------------------------------------


def upsert_company(db: sqlite_utils.Database, ticker: str, cik: int | None, name: str) -> None:
    with transaction(db, "companies"):
        db["companies"].upsert(
            {"ticker": ticker, "cik": cik, "name": name, "updated_at": utcnow()}, pk="ticker"
        )


# --- documents -------------------------------------------------------------


def has_document(db: sqlite_utils.Database, doc_key: str) -> bool:
    return _document_id_for_key(db, doc_key) is not None


def stored_accessions(db: sqlite_utils.Database, ticker: str) -> set[str]:
    rows = db.execute(
        "select distinct accession from documents where ticker = ? and accession != ''", [ticker]
    )
    return {row[0] for row in rows}


def save_documents(db: sqlite_utils.Database, docs: Iterable[Document], fetched_at: str | None = None) -> list[int]:
    """Store documents that belong together in one transaction; return new ids.

    A document whose key is known, or whose text this company already has under
    another key, is not stored again: its key is kept as an alias of the first.
    """
    fetched_at = fetched_at or utcnow()
    new_ids: list[int] = []
    with transaction(db, "documents"):
        for doc in docs:
            if _document_id_for_key(db, doc.doc_key) is not None:
                continue
            twin = _document_id_for_text(db, doc.ticker, doc.content_hash)
            if twin is not None:
                db["document_aliases"].insert(
                    {"doc_key": doc.doc_key, "document_id": twin, "url": doc.url, "via": doc.via, "seen_at": fetched_at},
                    ignore=True,
                )
                continue
            row = {
                "doc_key": doc.doc_key,
                "source": doc.source,
                "via": doc.via,
                "ticker": doc.ticker,
                "cik": doc.cik,
                "accession": doc.accession,
                "form": doc.form,
                "doc_type": doc.doc_type,
                "items": ",".join(doc.items),
                "url": doc.url,
                "title": doc.title,
                **_publication(doc, fetched_at),
                "fetched_at": fetched_at,
                "period": doc.period,
                "text": doc.text,
                "content_hash": doc.content_hash,
                "amends_id": _amended_document_id(db, doc),
            }
            new_ids.append(db["documents"].insert(row).last_pk)
    return new_ids


def _publication(doc: Document, fetched_at: str) -> dict[str, Any]:
    """``published_at`` as the source gave it when it reads as an ISO date; else the fetch time, flagged.

    Scoring dates every disclosure by its document, so a document stored with ``""`` (an undated feed
    item) or "July 2025" (a typed --published) would stop every score pass of its company.
    """
    try:
        date.fromisoformat(doc.published_at[:10])
    except ValueError:
        log.warning("%s: no readable publication date (%r); using the fetch time %s", doc.doc_key,
                    doc.published_at[:40], fetched_at)
        return {"published_at": fetched_at, "published_guessed": 1}
    return {"published_at": doc.published_at, "published_guessed": 0}


def _document_id_for_key(db: sqlite_utils.Database, doc_key: str) -> int | None:
    row = db.execute(
        "select id from documents where doc_key = ? union all "
        "select document_id from document_aliases where doc_key = ? limit 1",
        [doc_key, doc_key],
    ).fetchone()
    return row[0] if row else None


def _document_id_for_text(db: sqlite_utils.Database, ticker: str, digest: str) -> int | None:
    row = db.execute(
        "select id from documents where ticker = ? and content_hash = ? limit 1", [ticker, digest]
    ).fetchone()
    return row[0] if row else None


def _amended_document_id(db: sqlite_utils.Database, doc: Document) -> int | None:
    """Link an amendment (8-K/A, 10-Q/A ...) to the document it amends.

    EDGAR does not name the amended accession in its metadata, so we take the
    company's latest earlier filing of the base form with the same period of
    report, falling back to the latest earlier one of that form.
    """
    if not doc.form.endswith("/A"):
        return None
    base_form = doc.form.removesuffix("/A")
    doc_type = base_form if doc.doc_type == doc.form else doc.doc_type
    row = db.execute(
        "select id from documents where ticker = ? and form = ? and doc_type = ? and published_at <= ? "
        "order by (period = ?) desc, published_at desc, id desc limit 1",
        [doc.ticker, base_form, doc_type, doc.published_at or "9999", doc.period],
    ).fetchone()
    return row[0] if row else None


def list_documents(db: sqlite_utils.Database, ticker: str | None = None, with_text: bool = False) -> list[dict[str, Any]]:
    columns = (
        "id, doc_key, source, via, ticker, cik, accession, form, doc_type, items, url, title, "
        "published_at, published_guessed, period, content_hash, amends_id, length(text) as chars"
    )
    if with_text:
        columns += ", text"
    where, params = ("where ticker = ?", [ticker.upper()]) if ticker else ("", [])
    sql = f"select {columns} from documents {where} order by published_at, id"
    return [dict(row) for row in db.query(sql, params)]


# --- extraction: disclosures and the extractions ledger ----------------------------

DISCLOSURE_FIELDS = (
    "type", "commitment", "direction", "counterparty", "mw", "usd", "term_years", "sentence", "start", "end",
)
DISCLOSURE_COLUMNS = (
    "id", "document_id", "ticker", *DISCLOSURE_FIELDS, "url", "published_at", "rules_version", "extracted_at",
)


def _columns(names: Iterable[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def documents_to_extract(db: sqlite_utils.Database, rules_version: str | None, limit: int | None = None) -> list[int]:
    """Ids of the documents never extracted or extracted with other rules (all of them when version is None)."""
    if rules_version is None:
        sql, params = "select id from documents order by id limit ?", [-1 if limit is None else limit]
    else:
        # "+id" keeps SQLite off the rowid b-tree, which holds every text: it reads the ids from a small
        # covering index instead (4x faster for the extract job's every-minute pass at 100,000 documents).
        sql = (
            "select id from documents where +id not in "
            "(select document_id from extractions where rules_version = ?) order by +id limit ?"
        )
        params = [rules_version, -1 if limit is None else limit]
    return [row[0] for row in db.execute(sql, params)]


def document_text(db: sqlite_utils.Database, document_id: int) -> str | None:
    row = db.execute("select text from documents where id = ?", [document_id]).fetchone()
    return row[0] if row else None


def save_extraction(
    db: sqlite_utils.Database,
    document_id: int,
    rules_version: str,
    disclosures: Iterable[dict[str, Any]],
    error: str = "",
    extracted_at: str | None = None,
) -> int:
    """Upsert a document's disclosures (deleting those no longer read) and its ``extractions`` row in one transaction; return how many.

    ``disclosures`` are plain dicts with the keys of DISCLOSURE_FIELDS (missing ones are NULL).
    Numeric values are stored as given, so ``"withheld"`` stays ``"withheld"``. If any write fails,
    nothing of this call is kept: the document keeps its previous disclosures and ledger row.
    """
    extracted_at = extracted_at or utcnow()
    columns = DISCLOSURE_COLUMNS[1:]
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in ("document_id", "start", "type"))
    upsert = (
        f"insert into disclosures ({_columns(columns)}) values ({', '.join('?' for _ in columns)}) "
        f'on conflict (document_id, "start", type) do update set {updates}'
    )
    count = 0
    kept: list[tuple[int, str]] = []
    with transaction(db, f"disclosures of document {document_id}"):
        document = db.execute(
            "select ticker, url, published_at from documents where id = ?", [document_id]
        ).fetchone()
        if document is None:
            raise StoreError(f"disclosures of document {document_id}: no such document")
        ticker, url, published_at = document
        # Upserted by (document, offset, type): a disclosure read again keeps its id, so alerts and
        # scorecards that cite it still point at it; one no longer read is deleted.
        for disclosure in disclosures:
            values = [disclosure.get(name) for name in DISCLOSURE_FIELDS]
            db.execute(upsert, [document_id, ticker, *values, url, published_at, rules_version, extracted_at])
            kept.append((disclosure.get("start") or 0, disclosure["type"]))
            count += 1
        for row_id, start, type_ in db.execute(
                'select id, "start", type from disclosures where document_id = ?', [document_id]).fetchall():
            if ((start or 0), type_) not in kept:
                db.execute("delete from disclosures where id = ?", [row_id])
        db.execute(
            "insert into extractions (document_id, rules_version, disclosures, extracted_at, error) "
            "values (?, ?, ?, ?, ?) on conflict (document_id) do update set rules_version = excluded.rules_version, "
            "disclosures = excluded.disclosures, extracted_at = excluded.extracted_at, error = excluded.error",
            [document_id, rules_version, count, extracted_at, error],
        )
    return count


def list_disclosures(
    db: sqlite_utils.Database, ticker: str | None = None, document_id: int | None = None
) -> list[dict[str, Any]]:
    """Stored disclosures, oldest document first, in text order within a document."""
    conditions, params = [], []
    if ticker:
        conditions.append("ticker = ?")
        params.append(ticker.upper())
    if document_id is not None:
        conditions.append("document_id = ?")
        params.append(document_id)
    where = f"where {' and '.join(conditions)}" if conditions else ""
    sql = f'select {_columns(DISCLOSURE_COLUMNS)} from disclosures {where} order by published_at, document_id, "start", id'
    return [dict(row) for row in db.query(sql, params)]


def list_extractions(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return [dict(row) for row in db.query("select * from extractions order by document_id")]


# --- reported revenue (SEC XBRL company facts) ------------------------------------------------------


def save_revenue_facts(db: sqlite_utils.Database, ticker: str, url: str, facts: Iterable[Any]) -> None:
    """Replace a company's revenue facts with a new payload's, in one transaction."""
    with transaction(db, f"company facts of {ticker}"):
        db.execute("delete from company_facts where ticker = ?", [ticker])
        db.conn.executemany(
            'insert into company_facts (ticker, concept, start, "end", value, form, filed, accession, url) '
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(ticker, f.concept, f.start.isoformat(), f.end.isoformat(), f.value, f.form, f.filed, f.accession, url)
             for f in facts])


def revenue_facts(db: sqlite_utils.Database, ticker: str) -> list[tuple[Any, ...]]:
    """(concept, start, end, value, filed, url) of a company, oldest period first."""
    return db.execute('select concept, start, "end", value, filed, url from company_facts where ticker = ? '
                      'order by "end", start', [ticker]).fetchall()


# --- market data ----------------------------------------------------------------------


def save_observations(
    db: sqlite_utils.Database, series: str, observations: Iterable[Any], source: str, fetched_at: str | None = None
) -> int:
    """Upsert a series' daily observations in one transaction; return the rows added or changed.

    ``observations`` have ``day`` (a date) and ``value``. A day already stored with the same value is
    left alone (its source and fetch time too), so saving the same data again changes nothing; a
    revised value replaces the old one and takes this call's source.
    """
    fetched_at = fetched_at or utcnow()
    rows = [(series, obs.day.isoformat(), float(obs.value), source, fetched_at) for obs in observations]
    with transaction(db, f"market series {series}"):
        before = db.conn.total_changes
        db.conn.executemany(
            "insert into market_observations (series, day, value, source, fetched_at) values (?, ?, ?, ?, ?) "
            "on conflict (series, day) do update set value = excluded.value, source = excluded.source, "
            "fetched_at = excluded.fetched_at where value is not excluded.value",
            rows,
        )
        return db.conn.total_changes - before


def market_series(
    db: sqlite_utils.Database, series: str, start: Any = None, end: Any = None
) -> list[tuple[str, float]]:
    """(ISO day, value) of a series, oldest first; ``start`` and ``end`` (dates or ISO days) are inclusive."""
    conditions, params = ["series = ?"], [series]
    if start is not None:
        conditions.append("day >= ?")
        params.append(start.isoformat() if hasattr(start, "isoformat") else str(start))
    if end is not None:
        conditions.append("day <= ?")
        params.append(end.isoformat() if hasattr(end, "isoformat") else str(end))
    sql = f"select day, value from market_observations where {' and '.join(conditions)} order by day"
    return [(row[0], row[1]) for row in db.execute(sql, params)]


def list_market_series(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """One row per stored series: its name, first and last day, and how many observations."""
    sql = (
        "select series, min(day) as first, max(day) as last, count(*) as count "
        "from market_observations group by series order by series"
    )
    return [dict(row) for row in db.query(sql)]


# --- fetch state (conditional GET) --------------------------------------------


def get_validators(db: sqlite_utils.Database, url: str) -> tuple[str, str]:
    row = db.execute("select etag, last_modified from fetch_state where url = ?", [url]).fetchone()
    return (row[0] or "", row[1] or "") if row else ("", "")


def set_validators(db: sqlite_utils.Database, url: str, etag: str, last_modified: str, status: int) -> None:
    with transaction(db, "fetch_state"):
        db["fetch_state"].upsert(
            {"url": url, "etag": etag, "last_modified": last_modified, "status": status, "fetched_at": utcnow()},
            pk="url",
        )


# --- sources: cursors, health, error log ----------------------------------------


def record_error(db: sqlite_utils.Database, source: str, url: str, error: str, cause: str) -> None:
    with transaction(db, "fetch_errors"):
        db["fetch_errors"].insert(
            {"source": source, "url": url, "error": error, "cause": cause, "occurred_at": utcnow()}
        )


def get_cursor(db: sqlite_utils.Database, source: str) -> str:
    row = db.execute("select cursor from sources where name = ?", [source]).fetchone()
    return (row[0] or "") if row else ""


def record_poll(
    db: sqlite_utils.Database,
    source: str,
    *,
    ok: bool,
    added: int = 0,
    cursor: str | None = None,
    error: str = "",
    rhythm: Rhythm | None = None,
) -> None:
    """Note one poll of a source: success resets the failure count, a cursor moves on.

    ``error`` is kept as the source's last error even on a success: a feed read whose release
    page failed is a working source with a problem worth showing. ``rhythm`` (a listing's newest
    item and median gap) replaces the stored one when given; a 304 gives none and keeps it.
    """
    now = utcnow()
    with transaction(db, "sources"):
        current = db.execute(
            "select consecutive_failures, documents_added, cursor, last_success_at from sources where name = ?",
            [source],
        ).fetchone()
        failures, total, old_cursor, last_success = current if current else (0, 0, "", None)
        db["sources"].upsert(
            {
                "name": source,
                "cursor": cursor if cursor is not None else old_cursor,
                "last_attempt_at": now,
                "last_success_at": now if ok else last_success,
                "consecutive_failures": 0 if ok else (failures or 0) + 1,
                "last_error": error,  # a successful poll may still carry a note (a feed item that failed)
                "documents_added": (total or 0) + added,
                **({"newest_item_at": rhythm.newest, "median_gap_days": rhythm.median_gap_days} if rhythm else {}),
            },
            pk="name",
        )


def status(db: sqlite_utils.Database) -> dict[str, Any]:
    """Counts, per-source health and the latest errors, as plain data."""
    documents = db.execute("select count(*) from documents").fetchone()[0]
    by_ticker = {
        row[0]: row[1]
        for row in db.execute("select ticker, count(*) from documents group by ticker order by ticker")
    }
    sources = [dict(row) for row in db.query("select * from sources order by name")]
    errors = [
        dict(row)
        for row in db.query("select source, url, error, cause, occurred_at from fetch_errors order by id desc limit 20")
    ]
    error_count = db.execute("select count(*) from fetch_errors").fetchone()[0]
    counts = {table: db.execute(f"select count(*) from {table}").fetchone()[0]
              for table in ("disclosures", "deals", "alerts")}
    return {
        "documents": documents,
        **counts,
        "documents_by_ticker": by_ticker,
        "sources": sources,
        "errors_total": error_count,
        "recent_errors": errors,
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)
