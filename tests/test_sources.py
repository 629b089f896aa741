"""EDGAR and feed sources end to end against local servers: discover, fetch, store, once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from monitor import store
from monitor.documents import strip_provenance
from monitor.fetch import edgar
from monitor.fetch.edgar_parse import parse_latest_filings, parse_submissions
from monitor.pipeline import Runtime, build_client, job_feeds, job_reconcile
from monitor.tickers import WatchedCompany
from tests.conftest import FIXTURES, ROOT, SAMPLES, USER_AGENT, make_config
from tests.feeds_wrap import Item, wrap_in_rss
from tests.servers import FixtureServer, Reply

EDGAR = FIXTURES / "edgar"
ADOBE = EDGAR / "0000796343-23-000044"
NVIDIA = EDGAR / "0001045810-26-000024"
MERUS_8K = "0001193125-25-316841"
RELEASES = SAMPLES / "wire" / "releases"


def serve_edgar(server: FixtureServer, filing_dir: Path, index_name: str, atom_pages: int = 1) -> None:
    """The real latest-filings page (then SEC's real 503 past the end) and one real filing's index
    and documents answering for every accession, with sec.gov links pointing at the server."""
    atom = (EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml").read_bytes()
    atom = atom.replace(b"https://www.sec.gov", server.url.encode())
    end = (EDGAR / "getcurrent_count100_start5100_503.html").read_bytes()

    def feed_page(match):
        page = int(match.group(1)) // 100
        return Reply(200, atom, {"Content-Type": "application/atom+xml"}) if page < atom_pages \
            else Reply(503, end, {"Content-Type": "text/html"})

    index = (filing_dir / index_name).read_bytes()
    server.route_pattern(r"^/cgi-bin/browse-edgar\?.*start=(\d+)", feed_page)
    server.route_pattern(r"-index\.html?$", lambda m: Reply(200, index, {"Content-Type": "text/html"}))
    server.route_pattern(r"^/Archives/edgar/data/\d+/\d+/([^/]+\.htm)$",
                         lambda m: Reply.file(filing_dir / m.group(1), "text/html"))


def edgar_setup(tmp_path, server, closing, **sec):
    config = make_config(tmp_path, server, sec={"forms": ["8-K", "8-K/A"], **sec})
    return config, closing(store.open_db(config.path(config.monitor.db))), closing(build_client(config, USER_AGENT))


def test_latest_poll_stores_primary_document_and_press_release_exhibit(tmp_path, closing, sec_server):
    serve_edgar(sec_server, ADOBE, "0000796343-23-000044-index.html")
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    result = edgar.poll_latest(client, db, config, {1651311: "MRUS"})
    docs = store.list_documents(db, "MRUS", with_text=True)
    assert result.errors == [] and result.documents_added == 2
    assert [d["doc_type"] for d in docs] == ["8-K", "EX-99.1"]
    assert {d["accession"] for d in docs} == {MERUS_8K}
    assert docs[0]["via"] == "latest-feed" and docs[0]["published_at"] == "2025-12-12"
    assert "2.01" in docs[0]["items"].split(",")
    assert "Adobe" in docs[1]["text"] and "<" not in docs[1]["text"][:200]


def test_poll_requests_do_not_grow_with_watched_companies(tmp_path, closing, sec_server):
    serve_edgar(sec_server, ADOBE, "0000796343-23-000044-index.html")
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    few = edgar.poll_latest(client, db, config, {1: "A"})
    many = edgar.poll_latest(client, closing(store.open_db(tmp_path / "other.db")), config,
                             {cik: f"T{cik}" for cik in range(2, 5000)})
    assert few.requests == many.requests == 1


def test_second_poll_stops_at_the_cursor_and_adds_nothing(tmp_path, closing, sec_server):
    serve_edgar(sec_server, ADOBE, "0000796343-23-000044-index.html")
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    edgar.poll_latest(client, db, config, {1651311: "MRUS"})
    again = edgar.poll_latest(client, db, config, {1651311: "MRUS"})
    assert again.requests == 1 and again.documents_added == 0 and again.filings_seen == 0


def test_poll_pages_back_until_the_cursor_and_stops_at_the_feed_end(tmp_path, closing, sec_server):
    serve_edgar(sec_server, ADOBE, "0000796343-23-000044-index.html", atom_pages=2)
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    store.record_poll(db, edgar.LATEST_SOURCE, ok=True, cursor="0000000000-00-000000")  # older than the feed
    result = edgar.poll_latest(client, db, config, {1651311: "MRUS"})
    feed_requests = [p for p in sec_server.paths() if p.startswith("/cgi-bin/")]
    assert len(feed_requests) == 3  # two pages of entries, then SEC's 503 past the end
    assert result.errors == [] and result.documents_added == 2  # the filing on both pages is fetched once
    newest = parse_latest_filings((EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml").read_bytes(), "")[0]
    assert store.get_cursor(db, edgar.LATEST_SOURCE) == newest.accession


def test_same_filing_from_feed_and_submissions_routes_is_stored_once(tmp_path, closing, sec_server):
    serve_edgar(sec_server, NVIDIA, "0001045810-26-000024-index.html")
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    _, _, refs = parse_submissions((EDGAR / "CIK0001045810.json").read_bytes(), "", sec_server.url)
    from_submissions = next(r for r in refs if r.form == "8-K")
    from_feed = edgar.FilingRef(from_submissions.accession, 1045810, "8-K", from_submissions.index_url,
                                filed=from_submissions.filed, via="latest-feed")
    for ref in (from_feed, from_submissions):
        store.save_documents(db, edgar.fetch_filing(client, config, ref, "NVDA"))
    assert len(store.list_documents(db, "NVDA")) == 1


def test_reconcile_fetches_what_the_store_lacks_then_uses_a_conditional_get(tmp_path, closing, sec_server):
    serve_edgar(sec_server, NVIDIA, "0001045810-26-000024-index.html")
    submissions = (EDGAR / "CIK0001045810.json").read_bytes()
    sec_server.route("/submissions/CIK0001045810.json",
                     Reply(200, submissions, {"Content-Type": "application/json"}, etag='"s1"'))
    config, db, client = edgar_setup(tmp_path, sec_server, closing, backfill_days=30)
    first = edgar.reconcile_company(client, db, config, "NVDA", 1045810, today=date(2026, 3, 6))
    second = edgar.reconcile_company(client, db, config, "NVDA", 1045810, today=date(2026, 3, 6))
    assert first.errors == [] and first.documents_added == 1
    assert second.requests == 1 and second.documents_added == 0
    assert sec_server.requests[-1].headers.get("If-None-Match") == '"s1"'


def test_reconcile_error_for_one_company_does_not_stop_the_next(tmp_path, closing, sec_server):
    serve_edgar(sec_server, NVIDIA, "0001045810-26-000024-index.html")
    sec_server.route("/submissions/CIK0001045810.json",
                     Reply.file(EDGAR / "CIK0001045810.json", "application/json"))
    sec_server.route_pattern(r"^/submissions/CIK0000000001\.json$",
                             lambda m: Reply(404, (EDGAR / "CIK-000000001.json.404.xml").read_bytes()))
    config = make_config(tmp_path, sec_server, sec={"forms": ["8-K"], "backfill_days": 100000})
    rt = closing(Runtime(config, config.path(config.monitor.db),
                         [WatchedCompany("GONE", 1, "", ()), WatchedCompany("NVDA", 1045810, "", ())],
                         offline=False, client=build_client(config, USER_AGENT)))
    results = job_reconcile(rt)
    db = closing(store.open_db(rt.db_path))
    errors = store.status(db)["recent_errors"]
    gone, nvda = (next(r for r in results if r.source == f"edgar:submissions:{t}") for t in ("GONE", "NVDA"))
    assert gone.errors and nvda.documents_added >= 1
    assert any(e["source"] == "edgar:submissions:GONE" and "HTTP 404" in e["cause"] for e in errors)


# --- press-release feeds ------------------------------------------------------


def release_page(name: str) -> Reply:
    return Reply(200, strip_provenance((RELEASES / name).read_bytes()), {"Content-Type": "text/plain; charset=utf-8"})


def serve_good_feed(server: FixtureServer) -> str:
    """RIOT's feed: a real release, linked from a teaser item."""
    name = "RIOT_2024-06-04_may-2024-production-post-halving-decline.txt"
    server.route("/riot/release", release_page(name))
    server.route("/riot/feed.rss", Reply(200, wrap_in_rss([Item("Riot May 2024 update", f"{server.url}/riot/release",
                                                                     "Riot announces", guid="riot-2024-06-04")]),
                                         {"Content-Type": "application/rss+xml"}, etag='"r1"'))
    return f"{server.url}/riot/feed.rss"


def mara_feed(server: FixtureServer, *feed_replies: Reply, page: Reply | None = None) -> str:
    server.route("/mara/release", page or release_page("MARA_2024-12-03_acquires-wind-farm-hansford-county.txt"))
    rss = wrap_in_rss([Item("MARA Acquires Wind Farm", f"{server.url}/mara/release", "MARA", guid="mara-wind")])
    ok = Reply(200, rss, {"Content-Type": "application/rss+xml"})
    server.route("/mara/feed.rss", *(feed_replies or (ok,)), ok)
    return f"{server.url}/mara/feed.rss"


def feeds_runtime(tmp_path, closing, mara_url: str, riot_url: str, **http) -> Runtime:
    config = make_config(tmp_path, None, http=http)
    companies = [WatchedCompany("MARA", 1507605, "", (mara_url,)), WatchedCompany("RIOT", 1167419, "", (riot_url,))]
    return closing(Runtime(config, config.path(config.monitor.db), companies, offline=False,
                           client=build_client(config, USER_AGENT)))


def test_feed_items_are_stored_with_the_linked_release_text(tmp_path, closing, wire_server):
    rt = feeds_runtime(tmp_path, closing, mara_feed(wire_server), serve_good_feed(wire_server))
    results = job_feeds(rt)
    docs = store.list_documents(closing(store.open_db(rt.db_path)), with_text=True)
    assert [r.errors for r in results] == [[], []]
    assert {d["ticker"] for d in docs} == {"MARA", "RIOT"}
    mara = next(d for d in docs if d["ticker"] == "MARA")
    assert mara["doc_key"] == "wire:mara-wind" and "wind farm" in mara["text"].lower()
    assert mara["url"].endswith("/mara/release") and mara["published_at"].startswith("2025-11-05")


def test_unchanged_feed_answers_304_and_nothing_is_refetched(tmp_path, closing, wire_server):
    riot_url = serve_good_feed(wire_server)
    rt = feeds_runtime(tmp_path, closing, mara_feed(wire_server), riot_url)
    job_feeds(rt)
    before = len(wire_server.requests)
    job_feeds(rt)
    riot_again = [s for s in wire_server.requests[before:] if s.path.startswith("/riot/")]
    assert [s.path for s in riot_again] == ["/riot/feed.rss"]
    assert riot_again[0].headers.get("If-None-Match") == '"r1"'
    assert len(store.list_documents(closing(store.open_db(rt.db_path)))) == 2


BAD_CASES = {
    "malformed feed": (dict(feed=Reply(200, b"<rss><channel><item><title>broken", {"Content-Type": "text/xml"})),
                       "ParseError", "malformed feed"),
    "html page instead of feed": (dict(feed=Reply(200, b"<html><body>Sign in</body></html>",
                                                  {"Content-Type": "text/html"})), "ParseError", "not an RSS/Atom feed"),
    "broken html release page": (dict(page=Reply(200, b"\x00\x00\x00", {"Content-Type": "text/html"})),
                                 "ParseError", "HTML"),
    "body over the size limit": (dict(page=Reply(200, b"<p>" + b"x" * 300_000, {"Content-Type": "text/html"})),
                                 "BodyTooLarge", "exceeds the limit"),
    "server stalls past the timeout": (dict(page=Reply(200, b"late", delay=2.5)), "SourceTimeout", "timed out"),
    "persistent 500": (dict(feed=Reply(500, b"down")), "FetchError", "HTTP 500"),
}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_a_broken_source_is_logged_with_its_cause_and_the_others_are_still_fetched(tmp_path, closing, wire_server, case):
    replies, error, cause = BAD_CASES[case]
    feed_replies = (replies["feed"],) * 5 if "feed" in replies else ()
    mara_url = mara_feed(wire_server, *feed_replies, page=replies.get("page"))
    rt = feeds_runtime(tmp_path, closing, mara_url, serve_good_feed(wire_server),
                       max_body_bytes=200_000, read_timeout=0.5, max_retries=1)
    job_feeds(rt)
    db = closing(store.open_db(rt.db_path))
    status = store.status(db)
    logged = [e for e in status["recent_errors"] if e["source"] == f"feed:MARA:{mara_url}"]
    assert logged and logged[-1]["error"] == error and cause in logged[-1]["cause"]
    assert logged[-1]["url"].startswith(wire_server.url)
    assert status["documents_by_ticker"] == {"RIOT": 1}
    mara_state = next(s for s in status["sources"] if s["name"] == f"feed:MARA:{mara_url}")
    assert cause in mara_state["last_error"]
    # A feed that cannot be read is a failing source; a feed read whose release page fails is not.
    assert mara_state["consecutive_failures"] == (1 if "feed" in replies else 0)


@pytest.mark.parametrize("first", [Reply(500, b"down"), Reply(429, b"slow", {"Retry-After": "1"})],
                         ids=["500 then success", "429 with Retry-After then success"])
def test_transient_failures_are_retried_and_the_release_is_stored(tmp_path, closing, wire_server, first):
    rt = feeds_runtime(tmp_path, closing, mara_feed(wire_server, first), serve_good_feed(wire_server))
    results = job_feeds(rt)
    assert [r.errors for r in results] == [[], []]
    assert store.status(closing(store.open_db(rt.db_path)))["documents_by_ticker"] == {"MARA": 1, "RIOT": 1}


def test_feed_links_to_files_or_other_sites_are_refused(tmp_path, closing, wire_server):
    rss = wrap_in_rss([Item("local file", "file:///etc/passwd", guid="a"),
                       Item("elsewhere", "https://attacker.example.net/x", guid="b")])
    wire_server.route("/mara/feed.rss", Reply(200, rss, {"Content-Type": "application/rss+xml"}))
    rt = feeds_runtime(tmp_path, closing, f"{wire_server.url}/mara/feed.rss", serve_good_feed(wire_server))
    job_feeds(rt)
    errors = store.status(closing(store.open_db(rt.db_path)))["recent_errors"]
    refused = sorted(e["url"] for e in errors if e["error"] == "RefusedURL")
    assert len(refused) == 2 and refused[0].startswith("file:") and refused[1] == "https://attacker.example.net/x"
    assert not any(s.path.startswith("/etc") for s in wire_server.requests)


def test_an_undated_feed_item_is_stored_with_its_fetch_time_flagged_and_scoring_goes_on(tmp_path, closing, wire_server):
    """Issue 14.15: an item without a date was stored with published = "", and once it yielded a disclosure
    every score pass of its company raised ValueError and `monitor scorecard` printed a traceback."""
    from typer.testing import CliRunner

    from monitor.cli import app
    from monitor.pipeline import job_extract, job_score

    wire_server.route("/mara/release", release_page("MARA_2024-12-03_acquires-wind-farm-hansford-county.txt"))
    rss = wrap_in_rss([Item("MARA Acquires Wind Farm", f"{wire_server.url}/mara/release", "", guid="undated",
                            pub_date="")])
    wire_server.route("/mara/feed.rss", Reply(200, rss, {"Content-Type": "application/rss+xml"}))
    config = make_config(tmp_path, None, monitor={"theses_dir": str(ROOT / "rules" / "theses")})
    rt = closing(Runtime(config, config.path(config.monitor.db), [WatchedCompany("MARA", 1507605, "", (
        f"{wire_server.url}/mara/feed.rss",))], offline=False, client=build_client(config, USER_AGENT)))
    assert [r.errors for r in job_feeds(rt)] == [[]]
    assert job_extract(rt).disclosures > 0
    scored = job_score(rt)
    assert scored.errors == [] and scored.events > 0
    db = closing(store.open_db(rt.db_path))
    [doc] = db.execute("select published_at, fetched_at, published_guessed from documents").fetchall()
    assert doc[0] == doc[1] and doc[2] == 1
    shown = CliRunner().invoke(app, ["--db", str(rt.db_path), "scorecard", "MARA", "--json"])
    assert shown.exit_code == 0, shown.output
