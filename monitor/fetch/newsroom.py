"""Newsroom pages: a company's press-release list page, read where it publishes no feed.

Hut 8 has no feed anywhere on its site; its releases are listed on a server-rendered page. That page
is read as a listing of items with the XPath expressions its ``[[companies]] newsroom`` entry gives
(``monitor.config.NewsroomSource``), and each item goes down the feed path (``feeds.poll_listing``):
conditional GET of the page, the release page fetched under the link policy, stored once by its URL
and by its text. A page on which the item expression matches nothing is an error naming the source
and the expression: a redesign must not look like a quiet company.
"""

from __future__ import annotations

from datetime import UTC

import lxml.etree
import lxml.html
import sqlite_utils
from dateutil import parser as dateparser

from monitor.config import NewsroomSource
from monitor.errors import ParseError
from monitor.fetch.feeds import FeedItem, ParsedFeed, poll_listing
from monitor.fetch.html_text import parse_html
from monitor.fetch.http import HttpClient
from monitor.fetch.result import PollResult


def newsroom_source_name(ticker: str, url: str) -> str:
    return f"newsroom:{ticker}:{url}"


def poll_newsroom(client: HttpClient, db: sqlite_utils.Database, ticker: str, newsroom: NewsroomSource) -> PollResult:
    """Store the releases the newsroom page lists that the store does not have yet."""
    return poll_listing(client, db, newsroom_source_name(ticker, newsroom.url), ticker, newsroom.url,
                        lambda data, url: parse_newsroom(data, url, newsroom))


def parse_newsroom(data: bytes, url: str, newsroom: NewsroomSource) -> ParsedFeed:
    """The releases listed on the page, each once; items without a link are the listing's problem, not fatal.

    A page may list a release twice (Hut 8's has a "Featured" block above "All Press Releases"): the
    first listing of a link is kept, so one release is one item of the poll.
    """
    root = parse_html(data, url)
    try:
        elements = root.xpath(newsroom.item)
    except lxml.etree.XPathError as exc:
        raise ParseError(url, f"newsroom item expression {newsroom.item!r} failed: {exc}") from exc
    if not isinstance(elements, list) or not elements:
        raise ParseError(url, f"newsroom item expression {newsroom.item!r} matched nothing: has the page changed?")
    items: list[FeedItem] = []
    listed: set[str] = set()
    unlinked = 0
    for element in elements:
        if not isinstance(element, lxml.etree._Element):
            raise ParseError(url, f"newsroom item expression {newsroom.item!r} must select elements")
        item = _item(element, url, newsroom)
        if item is None:
            unlinked += 1
        elif item.link not in listed:
            listed.add(item.link)
            items.append(item)
    problem = (f"{unlinked} of {len(elements)} newsroom items have no link at {newsroom.link!r}"
               if unlinked else "")
    return ParsedFeed(items, problem)


def _item(element: lxml.etree._Element, page_url: str, newsroom: NewsroomSource) -> FeedItem | None:
    """One listed release; None when it has no link. Its URL is its identity: a list page gives no id."""
    found = _first(element, newsroom.link)
    href = str(found).strip() if found is not None else ""
    if isinstance(found, lxml.etree._Element):
        href = (found.get("href") or "").strip()
    if not href:
        return None
    link = lxml.html.urljoin(page_url, href) if "://" not in href else href
    if newsroom.title:
        title = _text(_first(element, newsroom.title))
    else:
        anchor = found if isinstance(found, lxml.etree._Element) else getattr(found, "getparent", lambda: None)()
        title = _text(anchor)
    published = _date(_text(_first(element, newsroom.date))) if newsroom.date else ""
    return FeedItem(guid=link, link=link, title=title, published=published, body_html="")


def _first(element: lxml.etree._Element, expression: str) -> object | None:
    found = element.xpath(expression)
    if isinstance(found, list):
        return found[0] if found else None
    return found if found not in ("", None) else None


def _text(found: object | None) -> str:
    if found is None:
        return ""
    text = found.text_content() if isinstance(found, lxml.html.HtmlElement) else str(found)
    return " ".join(text.split())


def _date(text: str) -> str:
    """ISO 8601 UTC from the page's date text ("December 17, 2025", "2025-12-17"); "" when unreadable.

    An unreadable date leaves the release undated (stored with its fetch time, flagged) rather than
    dropping it: the release matters more than its date.
    """
    if not text:
        return ""
    try:
        parsed = dateparser.parse(text)
    except (ValueError, OverflowError):
        return ""
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds")
