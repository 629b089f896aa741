"""Press-release source: RSS 2.0 / Atom feeds per company (httpx + feedparser).

feedparser is given bytes, never a URL, so every request goes through our
client (limits, timeouts, size cap, conditional GET). An item's text comes from
the feed body when the feed carries the release, else from the linked page; a
body with no readable text (an image, ``&#160;``, ``…``, ``<p></p>``) is a
teaser too. The link is fetched under the link policy (``monitor.fetch.links``):
not http(s), off the feed's site or port, or a private address is refused and
logged, at the link and at every redirect.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import sqlite_utils

from monitor import store
from monitor.documents import Document
from monitor.errors import MonitorError, ParseError
from monitor.fetch.conditional import conditional_get, remember
from monitor.fetch.feed_xml import entry_text, parse_xml_feed
from monitor.fetch.html_text import body_to_text, html_to_text
from monitor.fetch.http import HttpClient
from monitor.fetch.result import PollResult
from monitor.fetch.rhythm import Rhythm, rhythm
from monitor.fetch.titles import document_title

log = logging.getLogger(__name__)

_SLASHED = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
# A feed body shorter than this is a teaser: the release itself is on the linked page.
MIN_FEED_BODY_CHARS = 600


@dataclass(frozen=True)
class FeedItem:
    guid: str
    link: str
    title: str
    published: str  # ISO 8601 UTC, or "" when the feed gives no parseable date
    body_html: str


@dataclass(frozen=True)
class ParsedFeed:
    items: list[FeedItem]
    problem: str  # why the feed is malformed though items could be recovered; "" when clean


def parse_feed(data: bytes, source: str) -> ParsedFeed:
    """Items of an RSS or Atom feed; a payload with no feed in it is a ParseError.

    feedparser recovers what it can from broken XML; we keep those items but
    report the breakage, because a truncated feed may hide items.
    """
    parsed = parse_xml_feed(data, source)
    exception = parsed.get("bozo_exception")
    if not parsed.entries:
        if parsed.bozo or not parsed.get("version"):
            raise ParseError(source, f"not an RSS/Atom feed: {exception or 'no feed element'}")
        return ParsedFeed([], "")
    benign = isinstance(exception, (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType))
    problem = f"malformed feed, {len(parsed.entries)} items recovered: {exception}" if parsed.bozo and not benign else ""
    return ParsedFeed([_item(entry, source) for entry in parsed.entries], problem)


def _item(entry: Any, source: str) -> FeedItem:
    link = _resolved(source, entry_text(entry, "link").strip())
    title = " ".join(entry_text(entry, "title").split())
    # "updated_parsed" only when the entry has one: asking for it otherwise makes feedparser fall back to
    # "published_parsed" with a DeprecationWarning on every item.
    updated = entry.get("updated_parsed") if "updated_parsed" in entry else None
    published = _slashed_date(entry_text(entry, "published")) or _iso(entry.get("published_parsed") or updated)
    contents = entry.get("content") or []
    body = max((entry_text(c, "value") for c in contents), key=len, default="") or entry_text(entry, "summary")
    guid = entry_text(entry, "id").strip()
    if guid.startswith("/"):
        guid = _resolved(source, guid)  # a relative Atom id is unique only within its feed
    guid = guid or link
    if not guid:
        guid = "sha256:" + hashlib.sha256(f"{title}|{published}|{body}".encode()).hexdigest()
    return FeedItem(guid=guid, link=link, title=title, published=published, body_html=body)


def _resolved(base: str, link: str) -> str:
    """A relative link resolved against ``base``; an absolute or malformed one is kept as given.

    A malformed link (``http://[broken``) must not cost the feed its other items:
    it is kept, and ``links.check_link`` refuses it when the item is fetched.
    """
    try:
        return urljoin(base, link) if link and not urlsplit(link).scheme else link
    except ValueError:
        return link


def _iso(parsed_time: Any) -> str:
    if not parsed_time:
        return ""
    return datetime.fromtimestamp(calendar.timegm(parsed_time), UTC).isoformat(timespec="seconds")


def _slashed_date(value: str) -> str:
    """'2020/1/10 14:33:00', a form some real feeds use, which feedparser misreads as 2020-11-01."""
    match = _SLASHED.match(value.strip())
    if not match:
        return ""
    try:
        return datetime(*(int(part or 0) for part in match.groups())).isoformat(timespec="seconds")
    except ValueError:
        return ""


def feed_source_name(ticker: str, url: str) -> str:
    return f"feed:{ticker}:{url}"


def poll_feed(client: HttpClient, db: sqlite_utils.Database, ticker: str, url: str) -> PollResult:
    """Store the feed's new releases for ``ticker`` (see ``poll_listing``)."""
    return poll_listing(client, db, feed_source_name(ticker, url), ticker, url, parse_feed)


def poll_listing(client: HttpClient, db: sqlite_utils.Database, source: str, ticker: str, url: str,
                 parse: Callable[[bytes, str], ParsedFeed]) -> PollResult:
    """Store the new releases a listing (a feed, a newsroom page) names; item failures are logged, not fatal.

    Feeds and newsroom pages differ only in how their items are read (``parse``): the conditional GET,
    the link policy for release pages, the dedupe by item and by text, and the validator saved only
    after what the listing produced is stored are one path for both.

    The poll counts as a success when the listing itself was read: a release page that fails (gone,
    refused, too big) is recorded in ``fetch_errors`` and tried again next poll, but it does not make
    the source look down, or one dead link would keep health failing and raise source alerts forever.
    The items' dates are kept as the source's rhythm, so a listing that answers 200 with nothing new
    for too long is reported (``monitor.fetch.rhythm``).
    """
    result = PollResult(source)
    before = client.requests_sent
    response = conditional_get(client, db, url)
    listing_ok = True
    seen: Rhythm | None = None
    if not response.not_modified:
        feed = parse(response.content, url)
        seen = rhythm((item.published for item in feed.items), datetime.now(UTC))
        if feed.problem:
            store.record_error(db, result.source, url, "ParseError", feed.problem)
            result.errors.append(feed.problem)
            listing_ok = False
        for item in feed.items:
            doc_key = f"wire:{item.guid}"
            if store.has_document(db, doc_key):
                continue
            result.filings_seen += 1
            try:
                document = release_document(client, ticker, url, item)
            except MonitorError as exc:
                store.record_error(db, result.source, getattr(exc, "url", item.link or url), type(exc).__name__, str(exc))
                result.errors.append(str(exc))
                continue
            result.documents_added += len(store.save_documents(db, [document]))
        if not result.errors:
            remember(db, url, response)
    result.requests = client.requests_sent - before
    store.record_poll(db, result.source, ok=listing_ok, added=result.documents_added,
                      error="; ".join(result.errors[:3]), rhythm=seen)
    return result


def release_document(client: HttpClient, ticker: str, feed_url: str, item: FeedItem) -> Document:
    """The release text from the feed body, or from the linked page when the body is a teaser."""
    text = _body_text(item, feed_url)
    title = item.title
    if len(text) < MIN_FEED_BODY_CHARS and item.link:
        page = client.get(item.link, linked_from=feed_url)
        body = body_to_text(page.content, page.content_type, item.link)
        text, title = body.text, title or document_title(body.text, given=body.title, url=item.link)
    if not text:
        raise ParseError(item.link or feed_url, f"feed item {item.guid!r} has neither a body nor a link")
    return Document(
        source="wire",
        ext_id=item.guid,
        ticker=ticker,
        url=item.link or feed_url,
        text=text,
        title=title,
        form="PR",
        doc_type="PR",
        published_at=item.published,
        via="rss",
    )


def _body_text(item: FeedItem, feed_url: str) -> str:
    """The feed body's text; "" when it has none to keep and the item links to its page.

    Newswires often send only an image, ``&#160;``, ``…`` or an empty ``<p></p>`` as the
    description: that is a teaser, and the release is on the linked page. Without a link,
    an unreadable body is the item's error.
    """
    if not item.body_html.strip():
        return ""
    try:
        return html_to_text(item.body_html, item.link or feed_url).text
    except ParseError:
        if not item.link:
            raise
        return ""
