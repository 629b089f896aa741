"""The store's one schema: ordered migrations, each run once, recorded in ``schema_migrations``.

Every table is made here (no module creates its own), so a store's shape is readable in one place and
an old store is brought up to date in order. ``migrate`` reads the applied versions without a write
lock and takes one (``BEGIN IMMEDIATE``) only when something is pending, re-checking under the lock, so
two processes opening a new store apply each migration once and ordinary opens never queue for the
writer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from monitor import store

BASELINE = """
CREATE TABLE IF NOT EXISTS "companies" (
   "ticker" TEXT PRIMARY KEY,
   "cik" INTEGER,
   "name" TEXT,
   "updated_at" TEXT
);
CREATE TABLE IF NOT EXISTS "documents" (
   "id" INTEGER PRIMARY KEY,
   "doc_key" TEXT NOT NULL,
   "source" TEXT NOT NULL,
   "via" TEXT,
   "ticker" TEXT NOT NULL,
   "cik" INTEGER,
   "accession" TEXT,
   "form" TEXT,
   "doc_type" TEXT,
   "items" TEXT,
   "url" TEXT NOT NULL,
   "title" TEXT,
   "published_at" TEXT,
   "fetched_at" TEXT,
   "period" TEXT,
   "text" TEXT NOT NULL,
   "content_hash" TEXT NOT NULL,
   "amends_id" INTEGER REFERENCES "documents"("id")
);
CREATE TABLE IF NOT EXISTS "document_aliases" (
   "doc_key" TEXT PRIMARY KEY,
   "document_id" INTEGER REFERENCES "documents"("id"),
   "url" TEXT,
   "via" TEXT,
   "seen_at" TEXT
);
CREATE TABLE IF NOT EXISTS "fetch_state" (
   "url" TEXT PRIMARY KEY,
   "etag" TEXT,
   "last_modified" TEXT,
   "status" INTEGER,
   "fetched_at" TEXT
);
CREATE TABLE IF NOT EXISTS "fetch_errors" (
   "id" INTEGER PRIMARY KEY,
   "source" TEXT,
   "url" TEXT,
   "error" TEXT,
   "cause" TEXT,
   "occurred_at" TEXT
);
CREATE TABLE IF NOT EXISTS "sources" (
   "name" TEXT PRIMARY KEY,
   "cursor" TEXT,
   "last_attempt_at" TEXT,
   "last_success_at" TEXT,
   "consecutive_failures" INTEGER,
   "last_error" TEXT,
   "documents_added" INTEGER
);
CREATE TABLE IF NOT EXISTS disclosures (
   id integer primary key,
   document_id integer not null references documents(id),
   ticker text not null,
   type text not null,
   commitment text,
   direction text,
   counterparty text,
   mw,
   usd,
   term_years,
   sentence text not null,
   "start" integer,
   "end" integer,
   url text,
   published_at text,
   rules_version text not null,
   extracted_at text not null
);
CREATE TABLE IF NOT EXISTS "market_observations" (
   "series" TEXT,
   "day" TEXT,
   "value" REAL NOT NULL,
   "source" TEXT,
   "fetched_at" TEXT,
   PRIMARY KEY ("series", "day")
);
CREATE TABLE IF NOT EXISTS "extractions" (
   "document_id" INTEGER PRIMARY KEY REFERENCES "documents"("id"),
   "rules_version" TEXT NOT NULL,
   "disclosures" INTEGER,
   "extracted_at" TEXT NOT NULL,
   "error" TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS "idx_documents_doc_key"
    ON "documents" ("doc_key");
CREATE INDEX IF NOT EXISTS "idx_documents_ticker_content_hash"
    ON "documents" ("ticker", "content_hash");
CREATE INDEX IF NOT EXISTS "idx_documents_ticker_published_at"
    ON "documents" ("ticker", "published_at");
CREATE INDEX IF NOT EXISTS "idx_documents_accession"
    ON "documents" ("accession");
CREATE INDEX IF NOT EXISTS "idx_fetch_errors_source_occurred_at"
    ON "fetch_errors" ("source", "occurred_at");
CREATE INDEX IF NOT EXISTS "idx_disclosures_document_id"
    ON "disclosures" ("document_id");
CREATE INDEX IF NOT EXISTS "idx_disclosures_ticker_type"
    ON "disclosures" ("ticker", "type");
CREATE TABLE IF NOT EXISTS "runs" (
   "id" INTEGER PRIMARY KEY,
   "kind" TEXT,
   "mode" TEXT,
   "started_at" TEXT,
   "pid" INTEGER
);
CREATE TABLE IF NOT EXISTS "outbox" (
   "id" INTEGER PRIMARY KEY,
   "alert_id" INTEGER,
   "channel" TEXT,
   "ticker" TEXT,
   "status" TEXT,
   "attempts" INTEGER,
   "next_attempt_at" TEXT,
   "message_key" TEXT,
   "receipt" TEXT,
   "last_error" TEXT,
   "created_at" TEXT,
   "sent_at" TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS "idx_outbox_alert_id_channel"
    ON "outbox" ("alert_id", "channel");
CREATE INDEX IF NOT EXISTS "idx_outbox_status_channel_next_attempt_at"
    ON "outbox" ("status", "channel", "next_attempt_at");
CREATE TABLE IF NOT EXISTS "scorecards" (
   "id" INTEGER PRIMARY KEY,
   "thesis" TEXT,
   "ticker" TEXT,
   "as_of" TEXT,
   "event" TEXT,
   "backing" REAL,
   "pillars" TEXT,
   "explanation" TEXT,
   "created_at" TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS "idx_scorecards_thesis_ticker_event"
    ON "scorecards" ("thesis", "ticker", "event");
CREATE INDEX IF NOT EXISTS "idx_scorecards_ticker_as_of"
    ON "scorecards" ("ticker", "as_of");
CREATE TABLE IF NOT EXISTS "alerts" (
   "id" INTEGER PRIMARY KEY,
   "key" TEXT,
   "thesis" TEXT,
   "ticker" TEXT,
   "pillar" TEXT,
   "event" TEXT,
   "as_of" TEXT,
   "severity" TEXT,
   "direction" TEXT,
   "title" TEXT,
   "before" REAL,
   "after" REAL,
   "reasons" TEXT,
   "changes" TEXT,
   "evidence" TEXT,
   "created_at" TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS "idx_alerts_key"
    ON "alerts" ("key");
CREATE INDEX IF NOT EXISTS "idx_alerts_ticker_as_of"
    ON "alerts" ("ticker", "as_of");
CREATE TABLE IF NOT EXISTS "alert_levels" (
   "thesis" TEXT,
   "ticker" TEXT,
   "pillar" TEXT,
   "level" INTEGER,
   PRIMARY KEY ("thesis", "ticker", "pillar")
);
CREATE TABLE IF NOT EXISTS "score_events" (
   "thesis" TEXT,
   "ticker" TEXT,
   "event" TEXT,
   "day" TEXT,
   "processed_at" TEXT,
   PRIMARY KEY ("thesis", "ticker", "event")
);
"""

LEDGER = """
CREATE TABLE IF NOT EXISTS deals (
   key TEXT PRIMARY KEY, ticker TEXT NOT NULL, family TEXT NOT NULL, kind TEXT, counterparty TEXT, sites TEXT,
   status TEXT NOT NULL, mw REAL, usd REAL, term_years REAL, annual_usd REAL, option_mw REAL, guarantor TEXT,
   backstop_usd REAL, power_use TEXT, first_day TEXT, signed_day TEXT, last_day TEXT, sources TEXT
);
CREATE INDEX IF NOT EXISTS idx_deals_ticker ON deals (ticker, family);
CREATE TABLE IF NOT EXISTS deal_events (
   id INTEGER PRIMARY KEY, key TEXT NOT NULL, deal_key TEXT NOT NULL, ticker TEXT NOT NULL, day TEXT NOT NULL,
   document_id INTEGER, event TEXT NOT NULL, mw_delta REAL, usd_delta REAL, deal TEXT NOT NULL, cites TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_deal_events_key ON deal_events (key);
CREATE INDEX IF NOT EXISTS idx_deal_events_ticker ON deal_events (ticker, day);
CREATE INDEX IF NOT EXISTS idx_deal_events_document ON deal_events (document_id);
CREATE TABLE IF NOT EXISTS ledger_unlinked (
   id INTEGER PRIMARY KEY, ticker TEXT NOT NULL, document_id INTEGER, day TEXT, family TEXT, reason TEXT,
   candidates TEXT, cites TEXT
);
CREATE INDEX IF NOT EXISTS idx_ledger_unlinked_ticker ON ledger_unlinked (ticker);
CREATE TABLE IF NOT EXISTS ledger_state (ticker TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, built_at TEXT);
"""

# One row per (thesis, company): the latest scorecard's explanation, for Datasette; the history keeps values.
LATEST_EXPLANATION = """
CREATE TABLE IF NOT EXISTS scorecard_latest (
   thesis TEXT NOT NULL, ticker TEXT NOT NULL, as_of TEXT NOT NULL, event TEXT, backing REAL, pillars TEXT,
   explanation TEXT, PRIMARY KEY (thesis, ticker)
);
"""


WATCH_STARTED = """
CREATE TABLE IF NOT EXISTS watch_started (
   thesis TEXT NOT NULL, ticker TEXT NOT NULL, started_at TEXT NOT NULL, PRIMARY KEY (thesis, ticker)
);
"""


def _published_guessed(db: sqlite_utils.Database) -> None:
    """``documents.published_guessed`` = 1 marks a document whose source gave no readable date: its
    ``published_at`` is the time it was fetched. Undated documents of older stores (``published_at`` "",
    which stopped scoring) get their fetch time, flagged, and their disclosures the same date."""
    db.execute("alter table documents add column published_guessed integer not null default 0")
    db.execute("update documents set published_at = fetched_at, published_guessed = 1 "
               "where coalesce(published_at, '') = ''")
    db.execute("update disclosures set published_at = (select published_at from documents d "
               "where d.id = disclosures.document_id) where coalesce(published_at, '') = ''")


# Who holds a claim on a message and until when (two deliverers never send one message twice), and outbox
# rows that are weekly digests rather than alerts. Defaults read as an unclaimed alert row.
OUTBOX_CLAIMS = """
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN lease_until TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'alert';
ALTER TABLE outbox ADD COLUMN week TEXT NOT NULL DEFAULT '';
"""


# Revenue a company reported in XBRL (SEC company facts), per concept and period: the AI mix's trailing
# mining revenue. Replaced per company when a new payload arrives.
COMPANY_FACTS = """
CREATE TABLE IF NOT EXISTS company_facts (
   ticker TEXT NOT NULL, concept TEXT NOT NULL, start TEXT NOT NULL, "end" TEXT NOT NULL, value REAL NOT NULL,
   form TEXT, filed TEXT, accession TEXT, url TEXT, PRIMARY KEY (ticker, concept, start, "end")
);
"""


def _rekey_lapse_alerts(db: sqlite_utils.Database) -> None:
    """Give lapse alerts of older stores (``lapse:<disclosure id>``) the key they carry now (document,
    sentence offset and type, which survive re-extraction), so none is raised again. An old alert is
    matched to its disclosure by id, or by its cited sentence; one that matches nothing keeps its key."""
    from monitor.score.engine import alert_key

    old = db.execute("select id, thesis, ticker, event, evidence from alerts "
                     "where event glob 'lapse:[0-9]*' and event not like 'lapse:%:%'").fetchall()
    for alert_id, thesis, ticker, event, evidence in old:
        sentence = next(iter(json.loads(evidence or "[]")), {}).get("sentence", "")
        found = db.execute(
            "select document_id, start, type from disclosures where id = ? and ticker = ? "
            "union all select document_id, start, type from disclosures where ticker = ? and sentence = ? "
            "and commitment = 'soft' limit 1", [int(event[6:]), ticker, ticker, sentence]).fetchone()
        if found is None:
            continue
        new_event = f"lapse:{found[0]}:{found[1] or 0}:{found[2]}"
        key = alert_key(thesis, ticker, new_event)
        if db.execute("select 1 from alerts where key = ?", [key]).fetchone() is None:
            db.execute("update alerts set event = ?, key = ? where id = ?", [new_event, key, alert_id])


def _key_disclosures(db: sqlite_utils.Database) -> None:
    """Disclosures are keyed by (document, sentence offset, type), so re-extraction upserts them and
    references to a disclosure survive; older stores may hold duplicates of a key: the first is kept."""
    db.execute("delete from disclosures where id not in "
               "(select min(id) from disclosures group by document_id, \"start\", type)")
    db.execute("create unique index if not exists idx_disclosures_key on disclosures (document_id, \"start\", type)")


def _values_only_history(db: sqlite_utils.Database) -> None:
    """Scorecard history keeps values; the latest explanation moves to ``scorecard_latest`` and the
    engine recomputes any other on demand (the explanations were 12 of 13 GB at 100,000 documents)."""
    _script(db, LATEST_EXPLANATION)
    db.execute(
        "insert or replace into scorecard_latest (thesis, ticker, as_of, event, backing, pillars, explanation) "
        "select thesis, ticker, as_of, event, backing, pillars, explanation from scorecards s where id = "
        "(select id from scorecards t where t.thesis = s.thesis and t.ticker = s.ticker order by as_of desc, id desc "
        "limit 1)")
    db.execute("alter table scorecards drop column explanation")


def _script(db: sqlite_utils.Database, sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[sqlite_utils.Database], None]


# The newest past item a feed or newsroom listed and the median gap between its items, kept from the last
# listing read (a 304 keeps them): a source answering 200 with nothing new for too long is reported.
SOURCE_RHYTHM = """
ALTER TABLE sources ADD COLUMN newest_item_at TEXT;
ALTER TABLE sources ADD COLUMN median_gap_days REAL;
"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline: documents, disclosures, market data, outbox, scorecards, alerts, runs",
              lambda db: _script(db, BASELINE)),
    Migration(2, "lapse alerts keyed by document, offset and type", _rekey_lapse_alerts),
    Migration(3, "disclosures unique by document, offset and type", _key_disclosures),
    Migration(4, "deal ledger: deals, deal events, unlinked mentions", lambda db: _script(db, LEDGER)),
    Migration(5, "scorecard history keeps values only", _values_only_history),
    Migration(6, "when scoring of each company began: what came before is history, not pushed",
              lambda db: _script(db, WATCH_STARTED)),
    Migration(7, "documents.published_guessed: undated documents take their fetch time, flagged",
              _published_guessed),
    Migration(8, "outbox claims with an owner and a lease; digest rows", lambda db: _script(db, OUTBOX_CLAIMS)),
    Migration(9, "company_facts: reported revenue from SEC's XBRL company facts", lambda db: _script(db, COMPANY_FACTS)),
    Migration(10, "sources.newest_item_at, median_gap_days: a listing's rhythm, to tell a feed gone quiet",
              lambda db: _script(db, SOURCE_RHYTHM)),
)


def applied(db: sqlite_utils.Database) -> set[int]:
    try:
        return {row[0] for row in db.execute("select version from schema_migrations")}
    except sqlite3.OperationalError:  # a new store: not even the bookkeeping table yet
        return set()


def migrate(db: sqlite_utils.Database) -> list[int]:
    """Apply pending migrations in order, each in the one transaction that records it; returns them."""
    if {m.version for m in MIGRATIONS} <= applied(db):
        return []
    done = []
    with store.transaction(db, "schema migrations"):
        db.execute("create table if not exists schema_migrations "
                   "(version integer primary key, name text not null, applied_at text not null)")
        pending = [m for m in MIGRATIONS if m.version not in applied(db)]
        for migration in pending:
            migration.apply(db)
            db.execute("insert into schema_migrations (version, name, applied_at) values (?, ?, ?)",
                       [migration.version, migration.name, store.utcnow()])
            done.append(migration.version)
    return done
