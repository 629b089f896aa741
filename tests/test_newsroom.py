"""Newsroom pages and quiet sources, against real local servers.

The newsroom pages' markup is constructed (no capture of Hut 8's list page exists; see
tests/fixtures/newsroom/SOURCES.md): a plain list for the reader's mechanics, and one built to the
structure another monitor describes from the delivered page, for the shipped config's expressions.
The releases behind their links are real texts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor import store
from monitor.config import Config, NewsroomSource, load_config
from monitor.errors import ConfigError
from monitor.fetch.newsroom import parse_newsroom
from monitor.fetch.rhythm import is_quiet, rhythm
from monitor.health import check_health
from monitor.notify.source_alerts import raise_source_alerts
from monitor.pipeline import Runtime, build_client, job_feeds
from monitor.tickers import WatchedCompany
from tests.conftest import FIXTURES, USER_AGENT, make_config
from tests.feeds_wrap import Item, wrap_in_rss
from tests.servers import FixtureServer, Reply
from tests.test_sources import release_page

PAGE = (FIXTURES / "newsroom" / "hut8_press_releases.html").read_text(encoding="utf-8")
PATH = "/news-insights/press-releases/"
RIVER_BEND = ("hut-8-announces-ai-infrastructure-partnership-with-anthropic-and-fluidstack", "2025-12-17",
              "HUT_2025-12-17_river-bend-245mw-fluidstack-lease-google-backstop.txt")
COATUE = ("hut-8-announces-150-million-strategic-investment-from-coatue", "2024-06-24",
          "HUT_2024-06-24_coatue-150m-convertible-note-ai-infrastructure.txt")
DRUMHELLER = ("hut-8-drumheller-site-closure", "2024-03-06", "HUT_2024-03-06_drumheller-site-closure-energy-costs.txt")
NEWSROOM = {"item": "//ul[@class='press-releases']/li", "link": ".//a/@href", "date": ".//time/@datetime"}


def listing(*releases: tuple[str, str, str], etag: str) -> Reply:
    items = "".join(f'<li><time datetime="{day}">{day}</time> <a href="{PATH}{slug}">{slug.replace("-", " ")}</a></li>\n'
                    for slug, day, _ in releases)
    return Reply(200, PAGE.replace("<!--ITEMS-->", items).encode(), {"Content-Type": "text/html; charset=utf-8"},
                 etag=etag)


def serve_releases(server: FixtureServer, *releases: tuple[str, str, str]) -> None:
    for slug, _, name in releases:
        server.route(PATH + slug, release_page(name))


def newsroom_runtime(tmp_path, closing, server: FixtureServer, **selectors: str) -> Runtime:
    newsroom = NewsroomSource(url=server.url + PATH, **{**NEWSROOM, **selectors})
    config = make_config(tmp_path, None)
    companies = [WatchedCompany("HUT", 1964789, "", (), newsroom)]
    return closing(Runtime(config, config.path(config.monitor.db), companies, offline=False,
                           client=build_client(config, USER_AGENT)))


def test_the_newsroom_page_stores_each_listed_release_once_and_then_only_new_ones(tmp_path, closing, wire_server):
    serve_releases(wire_server, RIVER_BEND, COATUE, DRUMHELLER)
    wire_server.route(PATH, listing(COATUE, DRUMHELLER, etag='"v1"'), listing(COATUE, DRUMHELLER, etag='"v1"'),
                      listing(RIVER_BEND, COATUE, DRUMHELLER, etag='"v2"'))
    rt = newsroom_runtime(tmp_path, closing, wire_server)
    db = closing(store.open_db(rt.db_path))

    first = job_feeds(rt)
    assert [(r.source, r.documents_added, r.errors) for r in first] == [(f"newsroom:HUT:{wire_server.url}{PATH}", 2, [])]
    docs = store.list_documents(db, with_text=True)
    assert {d["published_at"][:10] for d in docs} == {"2024-06-24", "2024-03-06"}
    assert all(d["doc_key"].startswith(f"wire:{wire_server.url}{PATH}") for d in docs)

    before = len(wire_server.requests)
    assert job_feeds(rt)[0].documents_added == 0  # unchanged page: a 304, no release page fetched again
    again = wire_server.requests[before:]
    assert [s.path for s in again] == [PATH] and again[0].headers.get("If-None-Match") == '"v1"'

    before = len(wire_server.requests)
    assert job_feeds(rt)[0].documents_added == 1  # a new release on top: only it is fetched
    assert [s.path for s in wire_server.requests[before:]] == [PATH, PATH + RIVER_BEND[0]]
    docs = store.list_documents(db, with_text=True)
    assert len(docs) == 3 and any("River Bend" in d["text"] for d in docs)


def test_a_newsroom_link_to_another_site_is_refused_under_the_link_policy(tmp_path, closing, wire_server):
    serve_releases(wire_server, COATUE)
    offsite = ("x", "2025-01-02", "")
    page = listing(COATUE, offsite, etag='"v1"')
    page.body = page.body.replace(f'href="{PATH}x"'.encode(), b'href="http://198.51.100.7/release"')
    wire_server.route(PATH, page)
    rt = newsroom_runtime(tmp_path, closing, wire_server)
    [result] = job_feeds(rt)
    assert result.documents_added == 1
    assert len(result.errors) == 1 and "198.51.100.7" in result.errors[0]


def test_a_page_the_item_expression_no_longer_matches_is_an_error_naming_source_and_expression(
        tmp_path, closing, wire_server):
    wire_server.route(PATH, listing(COATUE, etag='"v1"'))
    rt = newsroom_runtime(tmp_path, closing, wire_server, item="//div[@class='release']")
    [result] = job_feeds(rt)
    db = closing(store.open_db(rt.db_path))
    [error] = db.execute("select source, error, cause from fetch_errors").fetchall()
    assert error[0] == f"newsroom:HUT:{wire_server.url}{PATH}" and error[1] == "ParseError"
    assert "//div[@class='release']" in error[2] and "matched nothing" in error[2]
    assert result.documents_added == 0


def test_a_newsroom_expression_that_does_not_compile_is_a_config_error_naming_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[[companies]]\nticker = "HUT"\n'
                    'newsroom = { url = "https://hut8.com/news-insights/press-releases/", item = "//li[" }\n')
    with pytest.raises(ConfigError, match=r"companies\.0\.newsroom\.item: '//li\[' is not an XPath expression"):
        load_config(path)


def test_the_shipped_config_validates_with_feeds_for_seven_companies_and_a_newsroom_for_hut():
    from tests.conftest import ROOT
    config: Config = load_config(ROOT / "config.toml")
    with_feeds = {c.ticker for c in config.companies if c.feeds}
    assert with_feeds == {"MARA", "CORZ", "IREN", "WULF", "CIFR", "CLSK", "APLD"}
    hut = next(c for c in config.companies if c.ticker == "HUT")
    assert hut.newsroom is not None and hut.newsroom.url == "https://hut8.com/news-insights/press-releases/"
    assert not next(c for c in config.companies if c.ticker == "RIOT").feeds


# --- Hut 8's page as described, read with the shipped config's expressions ---------------------------

DESCRIBED = (FIXTURES / "newsroom" / "hut8_press_releases_described.html").read_bytes()
BEACON_POINT = "hut-8-commercializes-first-phase-of-1-gw-beacon-point-ai-data-center-campus-with-15-year-352-mw"
ANTHROPIC = "hut-8-announces-ai-infrastructure-partnership-with-anthropic-and-fluidstack"
Q4_2025 = "hut-8-reports-fourth-quarter-and-full-year-2025-results"


def shipped_hut_newsroom() -> NewsroomSource:
    from tests.conftest import ROOT
    newsroom = next(c for c in load_config(ROOT / "config.toml").companies if c.ticker == "HUT").newsroom
    assert newsroom is not None
    return newsroom


def test_the_shipped_expressions_read_each_release_on_the_described_hut_page_once_with_its_title_and_date():
    newsroom = shipped_hut_newsroom()

    feed = parse_newsroom(DESCRIBED, newsroom.url, newsroom)

    assert feed.problem == ""
    assert [(item.link.rsplit("/", 1)[1], item.title, item.published) for item in feed.items] == [
        (BEACON_POINT, "Hut 8 Commercializes First Phase of 1 GW Beacon Point AI Data Center Campus with 15-Year 352 MW",
         "2026-05-06T00:00:00+00:00"),
        (ANTHROPIC, "Hut 8 Announces AI Infrastructure Partnership with Anthropic and Fluidstack",
         "2025-12-17T00:00:00+00:00"),
        (Q4_2025, "Hut 8 Reports Fourth Quarter and Full Year 2025 Results", "2026-02-25T00:00:00+00:00"),
    ]
    assert all(item.link.startswith("https://hut8.com/news-insights/press-releases/") for item in feed.items)


def test_the_described_hut_page_polled_twice_stores_each_release_once(tmp_path, closing, wire_server):
    shipped = shipped_hut_newsroom()
    wire_server.route(PATH, Reply(200, DESCRIBED, {"Content-Type": "text/html; charset=utf-8"}, etag='"h1"'))
    serve_releases(wire_server, (BEACON_POINT, "", COATUE[2]), (ANTHROPIC, "", RIVER_BEND[2]),
                   (Q4_2025, "", DRUMHELLER[2]))
    rt = newsroom_runtime(tmp_path, closing, wire_server, item=shipped.item, link=shipped.link,
                          title=shipped.title, date=shipped.date)
    db = closing(store.open_db(rt.db_path))

    first = job_feeds(rt)
    before = len(wire_server.requests)
    second = job_feeds(rt)

    assert [(r.documents_added, r.errors) for r in first] == [(3, [])]
    assert sorted(p for p in wire_server.paths()[:before] if p != PATH) == sorted(
        PATH + slug for slug in (BEACON_POINT, ANTHROPIC, Q4_2025))  # each listed twice, fetched once
    assert [(r.documents_added, r.errors) for r in second] == [(0, [])]
    assert wire_server.paths()[before:] == [PATH]
    assert len(store.list_documents(db, "HUT")) == 3


# --- quiet sources -----------------------------------------------------------------------------------


def test_a_source_is_quiet_after_six_median_gaps_or_sixty_days_and_future_items_do_not_count():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    weekly = [(now - timedelta(days=50 + 7 * k)).isoformat() for k in range(6)]
    seen = rhythm(weekly + [(now + timedelta(days=30)).isoformat(), ""], now)
    assert seen is not None and seen.newest.startswith("2026-04-12") and seen.median_gap_days == 7
    assert not is_quiet(seen.newest, seen.median_gap_days, now)  # 50 days: under the 60-day floor
    assert is_quiet(seen.newest, seen.median_gap_days, now + timedelta(days=11))
    monthly = 30.0  # 6 x 30 days = 180 days beats the floor
    assert not is_quiet(seen.newest, monthly, now + timedelta(days=100))
    assert rhythm([(now + timedelta(days=3)).isoformat()], now) is None  # only an upcoming event: no evidence


def test_a_feed_answering_200_with_old_items_is_reported_quiet_in_status_and_alerted_once(tmp_path, closing, wire_server):
    old = [Item(f"Release {k}", f"{wire_server.url}/release", "x" * 700, guid=f"old-{k}",
                pub_date=f"Mon, {k + 1:02d} Sep 2025 13:00:00 GMT") for k in range(4)]
    upcoming = Item("Q4 call", f"{wire_server.url}/release", "y" * 700, guid="event",
                    pub_date=(datetime.now(UTC) + timedelta(days=20)).strftime("%a, %d %b %Y %H:%M:%S GMT"))
    wire_server.route("/old.rss", Reply(200, wrap_in_rss(old + [upcoming]), {"Content-Type": "application/rss+xml"}))
    url = f"{wire_server.url}/old.rss"
    config = make_config(tmp_path, None, companies=[{"ticker": "MARA", "feeds": [url]}])
    rt = closing(Runtime(config, config.path(config.monitor.db), [WatchedCompany("MARA", 1507605, "", (url,))],
                         offline=False, client=build_client(config, USER_AGENT)))
    db = closing(store.open_db(rt.db_path))
    job_feeds(rt)
    assert raise_source_alerts(db, 3, []) == 1
    job_feeds(rt)  # still answering 200 with the same items
    assert raise_source_alerts(db, 3, []) == 0
    [alert] = db.execute("select title, event from alerts").fetchall()
    assert alert == (f"Source feed:MARA:{url} answers but lists nothing newer than 2025-09-04", f"source:feed:MARA:{url}")
    [source] = [s for s in check_health(db, config).sources if s.name == f"feed:MARA:{url}"]
    assert source.quiet and source.newest_item_at.startswith("2025-09-04") and source.median_gap_days == 1.0
    assert not source.stale  # the poll itself works: quiet is reported, not a failed source
