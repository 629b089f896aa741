"""parse_feed on five real RSS/Atom feeds (two broken in real-world ways) and check_link's refusals."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from monitor.errors import ParseError, RefusedURL
from monitor.fetch.feeds import FeedItem, parse_feed
from monitor.fetch.links import check_link
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"
# file → (the URL the feed was published at, its number of items)
REAL_FEEDS = {
    "netnewswire_kc0011.rss": ("http://kc0011.net/", 20),  # declares gb2312, bytes are GBK
    "netnewswire_livemint.xml": ("https://www.livemint.com/rss/news", 25),
    "netnewswire_medscape.rss": ("https://www.medscape.com/cx/rssfeeds/2674.xml", 20),
    "netnewswire_phpxml.rss": ("https://www.fcutrecht.net/", 20),  # bogus <?phpxml ...?> declaration
    "netnewswire_qemu.atom": ("https://www.qemu.org/feed.xml", 10),
}


def items_of(name: str) -> list[FeedItem]:
    url, _ = REAL_FEEDS[name]
    return parse_feed((FEEDS / name).read_bytes(), url).items


@pytest.mark.parametrize("name", sorted(REAL_FEEDS))
def test_every_item_of_a_real_feed_has_a_guid_and_a_title(name: str) -> None:
    items = items_of(name)

    assert len(items) == REAL_FEEDS[name][1]
    assert all(item.guid and item.title for item in items)


@pytest.mark.parametrize("name", sorted(REAL_FEEDS))
def test_real_feed_with_recoverable_breakage_reports_no_problem(name: str) -> None:
    url, _ = REAL_FEEDS[name]

    assert parse_feed((FEEDS / name).read_bytes(), url).problem == ""


@pytest.mark.parametrize("name", sorted(REAL_FEEDS))
def test_item_titles_are_single_lines(name: str) -> None:
    assert not any("\n" in item.title or item.title != item.title.strip() for item in items_of(name))


@pytest.mark.parametrize("name", sorted(REAL_FEEDS))
def test_item_guids_are_unique_within_a_feed(name: str) -> None:
    guids = [item.guid for item in items_of(name)]

    assert len(set(guids)) == len(guids)


def test_livemint_published_dates_are_iso_8601_utc() -> None:
    items = items_of("netnewswire_livemint.xml")

    assert items[0].published == "2019-05-29T10:16:00+00:00"  # pubDate "Wed, 29 May 2019 10:16:00 GMT"
    assert all(datetime.fromisoformat(item.published).utcoffset().total_seconds() == 0 for item in items)


def test_livemint_item_keeps_its_absolute_link() -> None:
    first = items_of("netnewswire_livemint.xml")[0]

    assert first.link.startswith("https://www.livemint.com/news/india/pm-modi-xi-jinping-informal-summit")


def test_gbk_feed_declared_as_gb2312_decodes_its_titles() -> None:
    assert items_of("netnewswire_kc0011.rss")[0].title == "建国35周年纪念，华表，和平鸽"


def test_non_rfc822_pubdate_is_read_correctly_or_left_empty() -> None:
    first = items_of("netnewswire_kc0011.rss")[0]  # <pubDate>2020/1/10 14:33:00</pubDate>

    assert first.published == "" or first.published.startswith("2020-01-10T14:33")


def test_feed_with_bogus_xml_declaration_still_parses_with_dates() -> None:
    first = items_of("netnewswire_phpxml.rss")[0]

    assert first.title == "Serdar Gözübüyük scheidsrechter bij FC Twente - FC Utrecht"
    assert first.published == "2021-09-06T10:17:00+00:00"


def test_atom_relative_links_are_resolved_against_the_feed_url() -> None:
    first = items_of("netnewswire_qemu.atom")[0]

    assert first.link == "https://www.qemu.org/2025/08/26/qemu-10-1-0/"


def test_atom_item_body_is_the_full_content_not_the_summary() -> None:
    first = items_of("netnewswire_qemu.atom")[0]

    assert "Highlights include" in first.body_html


# --- payloads that are not feeds ----------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x01\x02\x89PNG\r\n\x1a\n\xff\xfe garbage",
        (FIXTURES / "edgar" / "getcurrent_count100_start5100_503.html").read_bytes(),
        (FIXTURES / "edgar" / "0000796343-23-000044" / "adbe-20230315.htm").read_bytes(),
        (FIXTURES / "edgar" / "CIK0001045810.json").read_bytes(),
    ],
    ids=["garbage-bytes", "sec-503-html-page", "ixbrl-html-page", "json"],
)
def test_payload_that_is_not_a_feed_is_a_parse_error_naming_the_source(payload: bytes) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse_feed(payload, "https://ir.example.com/rss/news.xml")

    assert excinfo.value.source == "https://ir.example.com/rss/news.xml"
    assert "not an RSS/Atom feed" in excinfo.value.cause


def test_valid_feed_with_no_items_is_an_empty_list() -> None:
    # The livemint channel header with its items cut off: a feed that has nothing new.
    raw = (FEEDS / "netnewswire_livemint.xml").read_bytes()
    empty = raw[: raw.index(b"<item>")] + b"</channel></rss>"

    feed = parse_feed(empty, "https://www.livemint.com/rss/news")

    assert (feed.items, feed.problem) == ([], "")


# --- check_link --------------------------------------------------------------------

FEED_URL = "https://www.example.com/rss/news.xml"


@pytest.mark.parametrize(
    "link",
    ["file:///etc/passwd", "javascript:alert(1)", "ftp://www.example.com/release.txt", "/news/relative"],
    ids=["file", "javascript", "ftp", "no-scheme"],
)
def test_check_link_refuses_non_http_links(link: str) -> None:
    with pytest.raises(RefusedURL, match="is not http") as excinfo:
        check_link(FEED_URL, link)

    assert excinfo.value.url == link


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.com/release",
        "https://example.com.evil.net/release",
        "https://notexample.com/x",
        "http://127.0.0.1/x",
    ],
)
def test_check_link_refuses_links_that_leave_the_feeds_site(link: str) -> None:
    with pytest.raises(RefusedURL, match="leaves the feed's site"):
        check_link(FEED_URL, link)


@pytest.mark.parametrize(
    "link",
    [
        "https://ir.example.com/news/2024/release.htm",
        "http://www.example.com/news/1",
        "https://example.com/x",
    ],
)
def test_check_link_accepts_links_on_the_same_site(link: str) -> None:
    check_link(FEED_URL, link)  # no RefusedURL


def test_check_link_refuses_another_site_under_a_two_label_public_suffix() -> None:
    try:
        check_link("https://www.company.co.uk/rss", "https://attacker.co.uk/release")
    except RefusedURL:
        return
    raise AssertionError("https://attacker.co.uk was accepted as the same site as www.company.co.uk")


def test_fixture_feeds_are_all_covered() -> None:
    # the GlobeNewswire capture and its rebuilt payload are covered by tests/test_feed_kinds.py
    present = {path.name for path in Path(FEEDS).iterdir()
               if path.name != "SOURCES.md" and not path.name.startswith("globenewswire_")}

    assert present == set(REAL_FEEDS)
