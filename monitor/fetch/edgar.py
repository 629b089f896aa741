"""EDGAR source: discover filings with O(1) requests per poll, never miss one.

Discovery reads SEC's latest-filings Atom feed (all filers, 100 a page) and
pages back until it meets the persisted cursor, so the number of requests
depends on how many filings SEC received since the last poll, not on how many
companies are watched. The feed only holds the newest entries, and a stalled
poll may fall off its end, so a slower reconciliation job compares each
company's submissions JSON with the store and fetches what is missing. Both
routes share ``fetch_filing``, and the store's keys make a filing seen twice
count once.
"""

from __future__ import annotations

import fnmatch
import logging
from datetime import date, timedelta
from urllib.parse import urlencode

import sqlite_utils

from monitor import store
from monitor.config import Config
from monitor.documents import Document
from monitor.errors import MonitorError, ParseError
from monitor.fetch.conditional import conditional_get, remember
from monitor.fetch.edgar_parse import FilingRef, parse_filing_index, parse_latest_filings, parse_submissions
from monitor.fetch.html_text import body_to_text
from monitor.fetch.titles import document_title
from monitor.fetch.http import HttpClient
from monitor.fetch.result import PollResult

log = logging.getLogger(__name__)

LATEST_SOURCE = "edgar:latest"


def submissions_source(ticker: str) -> str:
    """The source name of a company's reconciliation, as ``sources`` and health know it."""
    return f"edgar:submissions:{ticker}"


def latest_feed_url(config: Config, start: int) -> str:
    query = urlencode(
        {"action": "getcurrent", "type": "", "company": "", "dateb": "", "owner": "include",
         "start": start, "count": config.sec.latest_feed_page_size, "output": "atom"}
    )
    return f"{config.sec.www_url}/cgi-bin/browse-edgar?{query}"


def submissions_url(config: Config, cik: int) -> str:
    return f"{config.sec.data_url}/submissions/CIK{cik:010d}.json"


def poll_latest(client: HttpClient, db: sqlite_utils.Database, config: Config, watched: dict[int, str]) -> PollResult:
    """Page the latest-filings feed back to the cursor; fetch watched filings.

    The cursor moves only after every matching filing was handled, so a crash
    mid-poll makes the next poll look at the same entries again (and the store
    ignores what it already has).
    """
    result = PollResult(LATEST_SOURCE)
    before = client.requests_sent
    cursor = store.get_cursor(db, LATEST_SOURCE)
    newest = ""
    matches: list[FilingRef] = []
    met_cursor = False
    for page in range(config.sec.latest_feed_max_pages):
        url = latest_feed_url(config, page * config.sec.latest_feed_page_size)
        response = client.get(url, expected=frozenset({503}) if page else frozenset())
        refs = [] if response.status == 503 else parse_latest_filings(response.content, url)
        newest = newest or (refs[0].accession if refs else "")
        for ref in refs:
            if ref.accession == cursor:
                met_cursor = True
                break
            result.filings_seen += 1
            if ref.cik in watched and _watched_form(config, ref.form):
                matches.append(ref)
        if met_cursor or not cursor or len(refs) < config.sec.latest_feed_page_size:
            break
    if cursor and not met_cursor:
        log.warning("latest-filings feed: cursor %s not met (feed end or %d pages); reconciliation fills the gap",
                    cursor, config.sec.latest_feed_max_pages)
    seen: set[str] = set()
    for ref in reversed(matches):  # oldest first, so an amendment finds its original
        if ref.accession in seen:
            continue
        seen.add(ref.accession)
        _fetch_and_store(client, db, config, ref, watched[ref.cik], result)
    result.requests = client.requests_sent - before
    store.record_poll(db, LATEST_SOURCE, ok=True, added=result.documents_added, cursor=newest or cursor)
    return result


def reconcile_company(client: HttpClient, db: sqlite_utils.Database, config: Config, ticker: str, cik: int,
                      today: date | None = None) -> PollResult:
    """Fetch the filings of one company that its submissions JSON lists and the store lacks."""
    source = submissions_source(ticker)
    result = PollResult(source)
    before = client.requests_sent
    url = submissions_url(config, cik)
    response = conditional_get(client, db, url)
    if not response.not_modified:
        _, name, refs = parse_submissions(response.content, url, config.sec.www_url)
        store.upsert_company(db, ticker, cik, name)
        since = ((today or date.today()) - timedelta(days=config.sec.backfill_days)).isoformat()
        have = store.stored_accessions(db, ticker)
        missing = [r for r in refs if _watched_form(config, r.form) and r.filed >= since and r.accession not in have]
        result.filings_seen = len(refs)
        for ref in sorted(missing, key=lambda r: (r.filed, r.accession)):
            _fetch_and_store(client, db, config, ref, ticker, result)
        if not result.errors:
            remember(db, url, response)  # only once everything it listed is stored
    result.requests = client.requests_sent - before
    store.record_poll(db, source, ok=not result.errors, added=result.documents_added,
                      error="; ".join(result.errors[:3]))
    return result


def fetch_filing(client: HttpClient, config: Config, ref: FilingRef, ticker: str) -> list[Document]:
    """The primary document and the configured exhibits of one filing, as Documents."""
    index = parse_filing_index(client.get(ref.index_url).content, ref.index_url)
    wanted = [d for d in index.documents if _is_primary(d.doc_type, ref.form) or _wanted_exhibit(config, d.doc_type)]
    if not wanted:
        raise ParseError(ref.index_url, f"no primary document for form {ref.form} in the filing index")
    documents = []
    for entry in wanted:
        if not entry.filename.lower().endswith((".htm", ".html", ".txt", ".xml")):
            continue
        response = client.get(entry.url)
        body = body_to_text(response.content, response.content_type, entry.url)
        documents.append(
            Document(
                source="edgar",
                ext_id=f"{ref.accession}:{entry.filename}",
                ticker=ticker,
                cik=ref.cik,
                url=entry.url,
                text=body.text,
                title=document_title(body.text, given=body.title or entry.description, url=entry.url,
                                     doc_type=entry.doc_type or ref.form) or f"{ref.form} {ref.company}".strip(),
                form=ref.form,
                doc_type=entry.doc_type or ref.form,
                accession=ref.accession,
                items=tuple(dict.fromkeys(ref.items + index.items + body.items)),
                published_at=ref.filed or index.filed,
                period=ref.period or index.period,
                via=ref.via,
            )
        )
    return documents


def _fetch_and_store(client: HttpClient, db: sqlite_utils.Database, config: Config, ref: FilingRef,
                     ticker: str, result: PollResult) -> None:
    """One filing, all its documents in one transaction; a failure is logged, not fatal."""
    if ref.accession in store.stored_accessions(db, ticker):
        return
    try:
        documents = fetch_filing(client, config, ref, ticker)
    except MonitorError as exc:
        store.record_error(db, result.source, getattr(exc, "url", ref.index_url), type(exc).__name__, str(exc))
        result.errors.append(str(exc))
        log.warning("%s: filing %s: %s", result.source, ref.accession, exc)
        return
    result.documents_added += len(store.save_documents(db, documents))


def _watched_form(config: Config, form: str) -> bool:
    return form in config.sec.forms


def _is_primary(doc_type: str, form: str) -> bool:
    return doc_type == form or doc_type == form.removesuffix("/A")


def _wanted_exhibit(config: Config, doc_type: str) -> bool:
    return any(fnmatch.fnmatchcase(doc_type.upper(), pattern.upper()) for pattern in config.sec.exhibits)
