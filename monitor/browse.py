"""Look at the store in Datasette: metadata, canned queries, and a server that can never write.

The metadata is plain Python data describing the schema made by ``monitor/store.py``,
``monitor/score/stage.py`` and ``monitor/notify/outbox.py``; ``tests/test_browse.py`` checks
every described table and column against a store made by the offline run and runs every
canned query on it, so neither can silently drift from the schema.

Units (MW, US dollars, years, points) are given in column descriptions rather than
Datasette's ``units`` key: that key multiplies each cell by a Pint unit, which fails
on the ``"withheld"`` strings ``disclosures.mw/usd/term_years`` may hold (the table
page would answer 500), and US dollars are not a Pint unit anyway.

Read-only, and why not ``--immutable``: the store runs in WAL mode and the daemon may
be writing while someone browses. ``immutable=1`` tells SQLite the file never changes,
so it skips locking and ignores the ``-wal`` file: commits not yet checkpointed are
invisible (a reader saw 0 of 100 such rows) and a checkpoint during a read can tear it.
Datasette's ordinary ("mutable") mode instead reads through ``?mode=ro`` connections:
SQLite itself refuses any write on them, readers see every commit, and in WAL mode
readers and the daemon's writer never block each other. The one write path Datasette
keeps for such a database, its write connection (used by ``write: true`` canned queries
and plugins), is refused by ``ReadOnlyStore``, and no canned query here writes.
``--nolock`` is not used: without locks a concurrent writer can tear a read. Opening
read-only still lets SQLite create the ``-wal``/``-shm`` side files of a WAL database;
the database file itself is never written.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import uvicorn
from datasette.app import Datasette
from datasette.database import Database

from monitor.errors import StoreError

# Datasette settings of `monitor browse`: documents.text and the alert and scorecard JSON are long.
SETTINGS = {"truncate_cells_html": 300}

# Bookkeeping of the jobs, not data to look at: hidden from the table list (still reachable by URL).
HIDDEN_TABLES = ("document_aliases", "fetch_state", "alert_levels", "score_events")

TABLES: dict[str, dict[str, Any]] = {
    "companies": {
        "description": "Watched companies: ticker, SEC CIK and name (from SEC's company_tickers.json).",
        "sort": "ticker",
        "columns": {"ticker": "Exchange ticker (primary key)", "cik": "SEC Central Index Key",
                    "name": "Company name as SEC lists it", "updated_at": "When the row was last refreshed (UTC)"},
    },
    "documents": {
        "description": "Every stored filing and press release, once each: unique by doc_key and, per company, "
                       "by content hash.",
        "sort_desc": "published_at",
        "facets": ["ticker", "doc_type", "source"],
        "label_column": "title",
        "columns": {
            "doc_key": "Identity: edgar:<accession>:<file> for SEC documents, the feed GUID for releases",
            "source": "edgar (SEC filing or exhibit) or wire (press release)",
            "via": "Route that first stored it: latest feed, reconcile, feed, replay, ingest",
            "accession": "SEC accession number of the filing",
            "form": "Form as filed (8-K, 10-Q, 8-K/A, ...)",
            "doc_type": "Document kind: the form, or the exhibit type (EX-99.1 ...), or PR",
            "items": "8-K items reported, comma separated",
            "url": "Where the document was published",
            "published_at": "Publication (filing) date; the fetch time when the source gave none readable",
            "published_guessed": "1 when published_at is the fetch time because the source gave no readable date",
            "fetched_at": "When it was stored (UTC)",
            "period": "Period of report (SEC filings)",
            "text": "Plain text the extractor reads",
            "content_hash": "SHA-256 of the normalised text (per-company duplicate check)",
            "amends_id": "For an amendment (8-K/A ...): the document it amends",
        },
    },
    "disclosures": {
        "description": "Disclosures the rules extracted, one per sentence and type, with the document's ticker, URL "
                       "and date. mw, usd and term_years hold a number or the string \"withheld\" (redacted as "
                       "[***] in an exhibit).",
        "sort_desc": "published_at",
        "facets": ["ticker", "type", "commitment", "direction"],
        "columns": {
            "document_id": "Document the sentence comes from",
            "type": "contracted_compute, power, partnership, financing, mining, btc_exposure",
            "commitment": "binding (signed, entered into, priced) or soft (MOU, LOI, exploring, expects)",
            "direction": "positive, negative or neutral for the thesis",
            "counterparty": "Tenant, partner or lender named in the sentence",
            "mw": "Megawatts (MW), or \"withheld\"",
            "usd": "US dollars (USD), or \"withheld\"",
            "term_years": "Contract term in years, or \"withheld\"",
            "sentence": "The sentence, as it stands in the document",
            "start": "Character offset of the sentence in documents.text",
            "end": "End offset of the sentence in documents.text",
            "url": "Source URL (the document's)",
            "published_at": "Publication date (the document's)",
            "rules_version": "Hash of rules/ that produced the disclosure",
        },
    },
    "extractions": {
        "description": "One row per extracted document: the rules version, how many disclosures, or the error.",
        "facets": ["rules_version"],
        "columns": {"disclosures": "Number of disclosures found", "error": "Why extraction failed (empty if not)"},
    },
    "scorecards": {
        "description": "Scorecard history per thesis and company, values only: a row whenever an event (a "
                       "document, or market data every few days) moved a pillar materially or raised an alert. "
                       "`monitor scorecard TICKER --as-of DAY` recomputes the explanation of any of them.",
        "sort_desc": "as_of",
        "facets": ["thesis", "ticker"],
        "columns": {
            "thesis": "Thesis id (rules/theses/*.toml)",
            "as_of": "Day of the event the scorecard stands at",
            "event": "doc:<document id> or mkt:<day>",
            "backing": "Cash-flow backing, points 0-100 (backing pillars only; soft news never enters it)",
            "pillars": "Pillar values, points 0-100 each (JSON)",
        },
    },
    "scorecard_latest": {
        "description": "The latest scorecard of each thesis and company, with its explanation.",
        "facets": ["thesis"],
        "columns": {"explanation": "Per pillar: contributions with their sentence, URL, day and points (JSON)"},
    },
    "deals": {
        "description": "The deal ledger today: one row per deal (company, counterparty, site, kind) with its status "
                       "and figures; every figure's sentence and URL in sources. `monitor ledger TICKER --as-of`.",
        "facets": ["ticker", "family", "status", "kind"],
        "columns": {"mw": "Critical IT MW contracted (totals, restatements not added)",
                    "usd": "Total contract value, USD", "annual_usd": "value ÷ term: derived, never disclosed",
                    "option_mw": "Optional MW (options, ROFO, exclusivity): never contracted",
                    "sources": "Per field, the sentence, URL and date it came from (JSON)"},
    },
    "deal_events": {
        "description": "What each document did to each deal (signed, expanded, restated, delayed …), with the deal "
                       "as it stood after it.",
        "sort_desc": "day",
        "facets": ["ticker", "event"],
        "columns": {"deal": "The deal after the event (JSON)", "cites": "Sentences and URLs (JSON)"},
    },
    "ledger_unlinked": {
        "description": "Mentions the ledger rules could not place with confidence: the review list "
                       "(`monitor ledger TICKER --unlinked`).",
        "facets": ["ticker", "family"],
        "columns": {"candidates": "Deals it could continue (JSON)", "cites": "Sentences and URLs (JSON)"},
    },
    "alerts": {
        "description": "Alerts the score stage raised (each once, by key): what changed, why, and the evidence.",
        "sort_desc": "as_of",
        "facets": ["ticker", "severity", "direction", "pillar"],
        "columns": {
            "key": "Stable hash: replaying an event never raises it twice",
            "event": "doc:<document id>, mkt:<day> or lapse:<document id>:<sentence offset>:<type>",
            "before": "Pillar value before the event, points 0-100",
            "after": "Pillar value after the event, points 0-100",
            "reasons": "Why (JSON list)",
            "changes": "Every pillar the event moved (JSON)",
            "evidence": "Cited sentences with URL and date (JSON)",
        },
    },
    "outbox": {
        "description": "Delivery of each alert to each channel (slack, email): pending, sending, sent or dead.",
        "sort_desc": "created_at",
        "facets": ["channel", "status", "ticker"],
        "columns": {
            "alert_id": "The alert delivered",
            "message_key": "Idempotency key of the message (one per batch of a company's alerts)",
            "receipt": "The provider's answer when sent",
            "last_error": "Why the last attempt failed",
            "next_attempt_at": "When it is tried next (UTC)",
        },
    },
    "sources": {
        "description": "Health of each source: last success, consecutive failures, last error, documents added.",
        "sort": "name",
        "columns": {"cursor": "Where the next poll resumes (latest-filings feed)",
                    "consecutive_failures": "Failed polls in a row (0 when healthy)"},
    },
    "fetch_errors": {
        "description": "Every failed fetch or parse: source, URL, error type and cause.",
        "sort_desc": "occurred_at",
        "facets": ["source", "error"],
        "columns": {"error": "Error type", "cause": "What went wrong, in words", "occurred_at": "When (UTC)"},
    },
    "market_observations": {
        "description": "Daily market series, one value per series and day: btc_usd (USD), hy_oas and ust_10y "
                       "(percent), px:TICKER (share close, USD).",
        "sort_desc": "day",
        "facets": ["series"],
        "columns": {"value": "USD for btc_usd and px:*, percent for hy_oas and ust_10y",
                    "source": "URL or sample file it came from"},
    },
}

# The row of the latest scorecard of the outer query's thesis and company.
_LATEST = ("s.id = (select s2.id from scorecards s2 where s2.thesis = s.thesis and s2.ticker = s.ticker "
           "order by s2.as_of desc, s2.id desc limit 1)")
_EVENT_DOCUMENT = "left join documents d on s.event like 'doc:%' and d.id = cast(substr(s.event, 5) as integer)"

QUERIES: dict[str, dict[str, str]] = {
    "current_scorecards": {
        "title": "Current scorecard per company and thesis",
        "description": "The latest stored scorecard of each company under each thesis, highest cash-flow backing "
                       "first (points 0-100). `monitor scorecard TICKER` recomputes it for any date.",
        "sql": f"""
select s.thesis, s.ticker, c.name as company, s.as_of, s.backing, s.pillars, s.event,
       d.title as event_document, d.url as event_url
from scorecards s
left join companies c on c.ticker = s.ticker
{_EVENT_DOCUMENT}
where {_LATEST}
order by s.thesis, s.backing desc, s.ticker""",
    },
    "ledger": {
        "title": "Deal ledger of a company",
        "description": "Each deal with its status, MW, contract value, term, derived annual revenue, backstop and "
                       "optional MW, and the sentence and URL behind its MW and value.",
        "sql": """
select d.family, d.kind, d.counterparty, d.sites, d.status, d.mw, d.usd, d.term_years,
       round(d.annual_usd) as annual_usd_derived, d.guarantor, d.backstop_usd, d.option_mw, d.first_day, d.last_day,
       (select json_extract(s.value, '$[1].sentence') from json_each(d.sources) s
        where json_extract(s.value, '$[0]') = 'mw' order by s.key desc limit 1) as mw_sentence,
       (select json_extract(s.value, '$[1].url') from json_each(d.sources) s
        where json_extract(s.value, '$[0]') in ('mw', 'usd') order by s.key desc limit 1) as source_url
from deals d
where d.ticker = upper(:ticker)
order by d.family, d.first_day""",
    },
    "scorecard_history": {
        "title": "Scorecard history of a company",
        "description": "Every change of the company's scorecard, newest first, with the document that moved it.",
        "sql": f"""
select s.as_of, s.thesis, s.backing,
       round(s.backing - lag(s.backing) over (partition by s.thesis order by s.as_of, s.id), 1) as backing_change,
       s.pillars, s.event, d.title as event_document, d.url as event_url
from scorecards s
{_EVENT_DOCUMENT}
where s.ticker = upper(:ticker)
order by s.thesis, s.as_of desc, s.id desc""",
    },
    "scorecard_evidence": {
        "title": "Evidence behind a company's scorecard",
        "description": "Each contribution to the company's latest scorecard: the disclosure (sentence, type, "
                       "commitment, MW, USD, term in years, source URL, date) or the market series, and its points. "
                       "Type and fields are shown while the cited sentence is still the stored disclosure.",
        "sql": """
with latest as (select s.* from scorecard_latest s where s.ticker = upper(:ticker))
select l.thesis, l.as_of as scorecard_as_of, json_extract(p.value, '$.name') as pillar,
       json_extract(p.value, '$.kind') as kind, round(json_extract(c.value, '$.points'), 2) as points,
       json_extract(c.value, '$.why') as why, json_extract(c.value, '$.sentence') as sentence,
       dis.type, dis.commitment, dis.direction, dis.counterparty, dis.mw, dis.usd, dis.term_years,
       json_extract(c.value, '$.url') as url, json_extract(c.value, '$.day') as day,
       json_extract(c.value, '$.series') as market_series, json_extract(c.value, '$.value') as market_value,
       json_extract(c.value, '$.disclosure_id') as disclosure_id
from latest l, json_each(l.explanation) p, json_each(p.value, '$.contributions') c
left join disclosures dis on dis.id = json_extract(c.value, '$.disclosure_id')
     and dis.sentence = json_extract(c.value, '$.sentence')
order by l.thesis, p.id, abs(json_extract(c.value, '$.points')) desc""",
    },
    "alerts_delivery": {
        "title": "Alerts and their delivery per channel",
        "description": "Alerts newest first, with why, the first cited sentence and, per channel, the delivery "
                       "status, attempts and the provider's answer or last error. Leave ticker empty for all.",
        "sql": """
select a.as_of, a.ticker, a.severity, a.direction, a.title, a.pillar,
       round(a.before, 1) as before, round(a.after, 1) as after,
       (select group_concat(r.value, '; ') from json_each(a.reasons) r) as why,
       json_extract(a.evidence, '$[0].sentence') as first_evidence,
       json_extract(a.evidence, '$[0].url') as first_evidence_url,
       coalesce((select group_concat(o.channel || ': ' || o.status || ', ' || o.attempts || ' attempts'
                                     || case when o.sent_at != '' then ', sent ' || o.sent_at else '' end
                                     || case when o.receipt != '' then ' (' || o.receipt || ')' else '' end
                                     || case when o.last_error != '' then ' (' || o.last_error || ')' else '' end,
                                     '; ')
                 from outbox o where o.alert_id = a.id), 'not queued') as delivery,
       a.thesis, a.event, a.id as alert_id
from alerts a
where :ticker = '' or a.ticker = upper(:ticker)
order by a.as_of desc, a.id desc""",
    },
    "pending_soft_announcements": {
        "title": "Soft announcements pending confirmation",
        "description": "Proposals of the deal ledger (LOI, MOU, term sheet, exclusivity, plans for compute, power or "
                       "a partnership) that no binding disclosure has confirmed nor a binding deal superseded: the "
                       "ledger's `proposed` status, "
                       "the same rule as the scorecard's optionality and the digest's pending list. A proposal "
                       "older than the thesis' lapse_days (rules/theses) has lapsed and raised its alert. Leave "
                       "ticker empty for all.",
        "sql": """
select d.first_day, d.last_day, d.ticker, d.family, d.kind, d.counterparty, d.sites, d.mw, d.usd,
       cast(julianday('now') - julianday(d.last_day) as integer) as days_since_last_mention,
       (select json_extract(s.value, '$[1].sentence') from json_each(d.sources) s
        where json_extract(s.value, '$[0]') = 'proposal' limit 1) as sentence,
       (select json_extract(s.value, '$[1].url') from json_each(d.sources) s
        where json_extract(s.value, '$[0]') = 'proposal' limit 1) as url,
       d.key as deal
from deals d
where d.status = 'proposed' and d.family in ('compute', 'power', 'partnership')
  and (:ticker = '' or d.ticker = upper(:ticker))
  and not exists (select 1 from alerts a where a.ticker = d.ticker and a.event = 'lapse:' || d.key)
order by d.last_day desc, d.key""",
    },
    "source_health": {
        "title": "Source health",
        "description": "Each source: failing or ok, last success and attempt, failures in a row, errors in the "
                       "last 7 days, last error.",
        "sql": """
select s.name as source, case when s.consecutive_failures > 0 then 'failing' else 'ok' end as health,
       s.last_success_at, s.last_attempt_at, s.consecutive_failures, s.documents_added,
       (select count(*) from fetch_errors e
        where e.source = s.name and e.occurred_at >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-7 days')) as errors_7d,
       s.last_error
from sources s
order by s.consecutive_failures desc, s.name""",
    },
    "recent_fetch_errors": {
        "title": "Recent fetch errors",
        "description": "The latest 200 failed fetches and parses, newest first. Leave source empty for all.",
        "sql": """
select e.occurred_at, e.source, e.error, e.cause, e.url
from fetch_errors e
where :source = '' or e.source = :source
order by e.id desc
limit 200""",
    },
}


def database_name(db_path: Path) -> str:
    """The name Datasette gives a database file (its stem), which the metadata must be keyed by."""
    return Path(db_path).stem


def build_metadata(db_name: str) -> dict[str, Any]:
    """Datasette metadata for the store opened under ``db_name``."""
    tables = {name: dict(table) for name, table in TABLES.items()}
    tables.update({name: {"hidden": True} for name in HIDDEN_TABLES})
    return {
        "title": "catalyst-monitor",
        "description": "SEC filings and press releases watched for thesis-moving disclosures: documents, "
                       "extracted disclosures, scorecards, alerts and their delivery, source health. Read-only.",
        "source": "SEC EDGAR filings and company press releases",
        "databases": {
            db_name: {
                "description": "The monitor's SQLite store (read-only view).",
                "tables": tables,
                "queries": {name: {**query, "sql": query["sql"].strip()} for name, query in QUERIES.items()},
            }
        },
    }


def write_metadata(out: Path, db_path: Path) -> None:
    """Write the metadata as JSON for ``datasette DB --metadata FILE``, keyed by DB's Datasette name."""
    try:
        out.write_text(json.dumps(build_metadata(database_name(db_path)), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the metadata: {exc.strerror or exc}") from exc


def missing_tables(db_path: Path) -> list[str]:
    """Tables the metadata describes that the store lacks (a store no run has scored yet), read-only.

    Raises StoreError when the file is absent or not a SQLite database: Datasette would otherwise
    create an empty file, or serve a page of errors.
    """
    if not Path(db_path).is_file():
        raise StoreError(f"{db_path}: no store here; run `monitor run --once` first, or give --db")
    try:
        conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
        try:
            present = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{db_path}: cannot open the store read-only: {exc}") from exc
    return [name for name in (*TABLES, *HIDDEN_TABLES) if name not in present]


class ReadOnlyStore(Database):
    """Datasette's file database with its write connection refused: every connection is ``mode=ro``."""

    def connect(self, write: bool = False) -> sqlite3.Connection:
        if write:
            raise sqlite3.OperationalError(f"{self.path}: monitor browse is read-only")
        return super().connect(write=False)


def build_datasette(db_path: Path) -> Datasette:
    """A Datasette instance over the store, read-only (see the module docstring), with the metadata."""
    path = str(Path(db_path).resolve())
    ds = Datasette(files=[path], metadata=build_metadata(database_name(db_path)), settings=SETTINGS)
    name = next(name for name, db in ds.databases.items() if db.path == path)
    ds.remove_database(name)  # the same file again, as a ReadOnlyStore under the same name
    ds.add_database(ReadOnlyStore(ds, path=path, is_mutable=True), name=name)
    return ds


def serve(db_path: Path, host: str, port: int) -> None:
    """Serve the store until Ctrl-C / SIGTERM (uvicorn stops gracefully on both)."""
    uvicorn.run(build_datasette(db_path).app(), host=host, port=port, log_level="warning", lifespan="on")
