"""The watch list's feed kinds: GlobeNewswire organisation feeds and the IR platforms' feeds.

No captured Equisolve, Q4, gcs-web or GlobeNewswire RSS exists in any store we could reach (see
tests/fixtures/feeds/SOURCES.md). What does exist is feedparser's reading of a real GlobeNewswire
feed, saved by a public project; the GlobeNewswire payload here is rebuilt from it and checked
against it entry by entry. For the three IR platforms only the feed URLs (../shared/feeds.md) and
real release URLs are known, so they are tested where that is enough: the link policy.
"""

from __future__ import annotations

import json

import feedparser
import pytest

from monitor import store
from monitor.errors import RefusedURL
from monitor.fetch.feeds import parse_feed, poll_feed
from monitor.fetch.links import check_link
from monitor.pipeline import build_client
from tests.conftest import FIXTURES, USER_AGENT, make_config
from tests.servers import FixtureServer, Reply
from tests.test_sources import release_page

FEEDS = FIXTURES / "feeds"
GNW_CAPTURE = json.loads((FEEDS / "globenewswire_us_2021-02-20.feedparser.json").read_text(encoding="utf-8"))
GNW_PAYLOAD = (FEEDS / "globenewswire_us_2021-02-20.reconstructed.xml").read_bytes()
GNW_COUNTRY_FEED = ("http://www.globenewswire.com/RssFeed/country/United%20States/feedTitle/"
                    "GlobeNewswire%20-%20News%20from%20United%20States")
IREN_GNW = "https://www.globenewswire.com/rssfeed/organization/82e8_jAApdE1qYPVHkynKQ=="
IREN_GNW_PAGED = ("https://www.globenewswire.com/RssFeed/organization/82e8_jAApdE1qYPVHkynKQ==/content/fulltext/"
                  "attachments/all/max/20/start/0")


# --- GlobeNewswire --------------------------------------------------------------------------------


def test_the_rebuilt_globenewswire_payload_reads_exactly_as_the_real_feed_did():
    parsed = feedparser.parse(GNW_PAYLOAD)

    assert not parsed.bozo and len(parsed.entries) == len(GNW_CAPTURE)
    for real, rebuilt in zip(GNW_CAPTURE, parsed.entries):
        assert {key: rebuilt.get(key) for key in real} == real


def test_a_globenewswire_item_keeps_its_release_url_as_link_and_guid_and_its_minute_precision_date():
    items = parse_feed(GNW_PAYLOAD, GNW_COUNTRY_FEED).items

    assert [item.title for item in items] == [entry["title"] for entry in GNW_CAPTURE]
    assert all(item.guid == item.link == entry["link"] for item, entry in zip(items, GNW_CAPTURE))
    # pubDate "Sat, 20 Feb 2021 00:05 GMT": GlobeNewswire gives no seconds
    assert [item.published for item in items] == ["2021-02-20T00:05:00+00:00", "2021-02-19T23:31:00+00:00",
                                                  "2021-02-19T23:17:00+00:00", "2021-02-19T22:55:00+00:00"]


def test_a_globenewswire_description_is_a_teaser_so_the_release_page_is_read():
    items = parse_feed(GNW_PAYLOAD, GNW_COUNTRY_FEED).items

    assert all(len(item.body_html) < 600 for item in items)
    assert "(GLOBE NEWSWIRE) --" in items[1].body_html  # the dateline and an &#160; paragraph, nothing else


@pytest.mark.parametrize("feed_url", [IREN_GNW, IREN_GNW_PAGED], ids=["organisation", "paged"])
def test_the_link_policy_accepts_globenewswire_release_links_from_an_organisation_feed(feed_url):
    for entry in GNW_CAPTURE:
        check_link(feed_url, entry["link"])  # http links from an https feed: the same web server
    check_link(feed_url, "https://www.globenewswire.com/news-release/2025/09/08/3145927/0/en/"
                         "IREN-August-2025-Monthly-Update.html")


def test_the_link_policy_refuses_a_globenewswire_item_pointing_off_the_wire():
    with pytest.raises(RefusedURL, match="leaves the feed's site"):
        check_link(IREN_GNW, "https://ml.globenewswire.com.evil.example/Resource/Download/x")


def _serve_globenewswire(server: FixtureServer, **reply: object) -> str:
    """The rebuilt feed at the organisation feed's paged path, its release links on this server."""
    path = "/RssFeed/organization/82e8_jAApdE1qYPVHkynKQ==/content/fulltext/attachments/all/max/20/start/0"
    body = GNW_PAYLOAD.replace(b"http://www.globenewswire.com", server.url.encode())
    server.route(path, Reply(200, body, {"Content-Type": "application/rss+xml; charset=utf-8"}, **reply))
    texts = ["IREN_2025-10-09_875m-zero-coupon-convertible-notes-pricing.txt",
             "MARA_2024-12-03_acquires-wind-farm-hansford-county.txt",
             "CIFR_2025-11-20_fluidstack-additional-56mw-google-backstop.txt",
             "WULF_2025-08-14_fluidstack-200mw-google-backstop.txt"]
    for entry, name in zip(GNW_CAPTURE, texts):  # real release texts behind the teaser links
        server.route(entry["link"].removeprefix("http://www.globenewswire.com"), release_page(name))
    return server.url + path


def _poll_setup(tmp_path, closing):
    config = make_config(tmp_path)
    return closing(build_client(config, USER_AGENT)), closing(store.open_db(config.path(config.monitor.db)))


def test_a_globenewswire_feed_polled_twice_stores_each_release_once_and_honours_the_etag(
        tmp_path, closing, wire_server):
    url = _serve_globenewswire(wire_server, etag='"gnw-1"')
    client, db = _poll_setup(tmp_path, closing)

    first = poll_feed(client, db, "IREN", url)
    before = len(wire_server.requests)
    second = poll_feed(client, db, "IREN", url)

    assert (first.errors, first.documents_added) == ([], 4)
    assert (second.documents_added, second.filings_seen) == (0, 0)
    [again] = wire_server.requests[before:]  # the feed only: answered 304, no release page refetched
    assert again.headers.get("If-None-Match") == '"gnw-1"'
    assert {d["doc_key"] for d in store.list_documents(db, "IREN")} == {
        "wire:" + entry["link"].replace("http://www.globenewswire.com", wire_server.url) for entry in GNW_CAPTURE}


def test_a_globenewswire_feed_without_validators_still_stores_nothing_twice(tmp_path, closing, wire_server):
    url = _serve_globenewswire(wire_server)
    client, db = _poll_setup(tmp_path, closing)

    poll_feed(client, db, "IREN", url)
    before = len(wire_server.requests)
    second = poll_feed(client, db, "IREN", url)

    assert second.documents_added == 0 and second.errors == []
    assert [seen.path for seen in wire_server.requests[before:]] == [url.removeprefix(wire_server.url)]
    assert len(store.list_documents(db, "IREN")) == 4


# --- IR platforms: Equisolve, Q4, Notified/gcs-web -------------------------------------------------

# (feed URL from ../shared/feeds.md, a real release URL on that site seen in public material)
IR_RELEASE_LINKS = {
    "equisolve": ("https://ir.mara.com/news-events/press-releases/rss",
                  "https://ir.mara.com/news-events/press-releases/detail/1409/mara-announces-third-quarter-2025-results"),
    "q4": ("https://investors.cleanspark.com/rss/pressrelease.aspx",
           ("https://investors.cleanspark.com/news/news-details/2026/"
            "CleanSpark-Releases-January-2026-Operational-Update/default.aspx")),
    "gcs-web": ("https://irisenergy.gcs-web.com/rss/news-releases.xml",
                "https://irisenergy.gcs-web.com/news-releases/news-release-details/iren-april-2025-monthly-update"),
}


@pytest.mark.parametrize("kind", sorted(IR_RELEASE_LINKS))
def test_the_link_policy_accepts_an_ir_platform_feed_linking_to_its_own_release_pages(kind):
    feed, release = IR_RELEASE_LINKS[kind]

    check_link(feed, release)  # no RefusedURL


def test_a_gcs_web_feed_may_not_link_to_another_tenant_of_the_platform():
    # IREN's releases appear under both irisenergy.gcs-web.com and iren.gcs-web.com; gcs-web.com is a
    # shared host, so the policy treats them as different sites and refuses the cross link.
    with pytest.raises(RefusedURL, match="leaves the feed's site"):
        check_link("https://irisenergy.gcs-web.com/rss/news-releases.xml",
                   "https://iren.gcs-web.com/news-releases/news-release-details/iren-secures-97bn-ai-cloud-contract-microsoft")
