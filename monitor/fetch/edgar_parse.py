"""Parsers for SEC EDGAR payloads: latest-filings Atom, submissions JSON, filing index.

Pure functions from bytes to plain dataclasses, so they are tested on real
payloads without a network and reused by the live fetcher and the replay alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import lxml.etree
import lxml.html

from monitor.errors import ParseError
from monitor.fetch.feed_xml import entry_text, parse_xml_feed

_ACCESSION = re.compile(r"\d{10}-\d{2}-\d{6}")
_FEED_TITLE = re.compile(r"^(?P<form>.+?) - (?P<name>.*) \((?P<cik>\d{1,10})\) \((?P<role>[^)]*)\)\s*$")
_FILED = re.compile(r"Filed:\s*(?:</b>)?\s*(\d{4}-\d{2}-\d{2})")
_ITEM = re.compile(r"Item\s+(\d{1,2}\.\d{2})")


@dataclass(frozen=True)
class FilingRef:
    """A filing we know of, before its documents are fetched."""

    accession: str
    cik: int
    form: str
    index_url: str
    filed: str = ""  # YYYY-MM-DD
    updated: str = ""  # feed timestamp or acceptance time
    company: str = ""
    items: tuple[str, ...] = ()
    period: str = ""
    primary_document: str = ""
    via: str = ""


@dataclass(frozen=True)
class IndexDocument:
    seq: str
    description: str
    filename: str
    url: str
    doc_type: str
    size: int


@dataclass(frozen=True)
class FilingIndex:
    documents: tuple[IndexDocument, ...]
    filed: str
    period: str
    items: tuple[str, ...]


def index_url(www_url: str, cik: int, accession: str) -> str:
    return f"{www_url}/Archives/edgar/data/{cik}/{accession.replace('-', '')}/{accession}-index.html"


def parse_latest_filings(data: bytes, source: str) -> list[FilingRef]:
    """Entries of the latest-filings (getcurrent) Atom feed, newest first.

    A filing with several filers appears once per filer role; each becomes its
    own FilingRef so the watched company is found whatever its role.
    """
    feed = parse_xml_feed(data, source)
    if feed.bozo and not feed.entries:
        raise ParseError(source, f"not an Atom feed: {feed.get('bozo_exception')}")
    if not feed.entries and "feed" in feed and not feed.feed.get("title", ""):
        raise ParseError(source, "not an EDGAR latest-filings feed (no feed title, no entries)")
    refs = []
    for entry in feed.entries:
        match = _FEED_TITLE.match(entry_text(entry, "title"))
        accession = _ACCESSION.search(entry_text(entry, "id") or entry_text(entry, "link"))
        if not match or not accession:
            continue
        summary = entry_text(entry, "summary")
        filed = _FILED.search(summary)
        refs.append(
            FilingRef(
                accession=accession.group(0),
                cik=int(match["cik"]),
                form=(entry.get("tags") or [{}])[0].get("term") or match["form"],
                index_url=entry_text(entry, "link"),
                filed=filed.group(1) if filed else entry_text(entry, "updated")[:10],
                updated=entry_text(entry, "updated"),
                company=match["name"],
                items=tuple(_ITEM.findall(summary)),
                via="latest-feed",
            )
        )
    return refs


def parse_submissions(data: bytes, source: str, www_url: str) -> tuple[int, str, list[FilingRef]]:
    """(cik, company name, recent filings) from a data.sec.gov submissions JSON.

    Any JSON may arrive here (an error page, a hostile server): whatever is not the
    submissions shape, down to a cik of 1e999 or arrays nested past Python's
    recursion limit, is a ParseError naming the source.
    """
    try:
        payload = json.loads(data)
        cik = int(payload["cik"])
        recent = payload["filings"]["recent"]
        columns = {key: recent[key] for key in ("accessionNumber", "form", "filingDate")}
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError) as exc:
        raise ParseError(source, f"not a submissions JSON: {type(exc).__name__}: {exc}") from exc
    if not all(isinstance(values, list) for values in columns.values()):
        raise ParseError(source, "submissions JSON columns accessionNumber, form, filingDate must be lists")
    count = len(columns["accessionNumber"])
    if any(len(values) != count for values in columns.values()):
        raise ParseError(source, "submissions JSON columns have different lengths")

    def column(name: str, i: int) -> str:
        values = recent.get(name)
        if not isinstance(values, list) or i >= len(values) or values[i] is None:
            return ""
        return str(values[i])

    refs = [
        FilingRef(
            accession=column("accessionNumber", i),
            cik=cik,
            form=column("form", i),
            index_url=index_url(www_url, cik, column("accessionNumber", i)),
            filed=column("filingDate", i),
            updated=column("acceptanceDateTime", i),
            company=str(payload.get("name", "")),
            items=tuple(item for item in column("items", i).split(",") if item),
            period=column("reportDate", i),
            primary_document=column("primaryDocument", i),
            via="submissions",
        )
        for i in range(count)
    ]
    return cik, str(payload.get("name", "")), refs


def parse_filing_index(data: bytes, url: str) -> FilingIndex:
    """Documents, filing date, period and items from a ``-index.html`` page."""
    try:
        root = lxml.html.document_fromstring(data)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ParseError(url, f"unparseable filing index: {exc}") from exc
    tables = root.xpath('//table[@class="tableFile" and @summary="Document Format Files"]')
    if not tables:
        raise ParseError(url, "no 'Document Format Files' table in filing index")
    documents = []
    for row in tables[0].xpath(".//tr[td]"):
        cells = row.xpath("./td")
        if len(cells) < 5:
            continue
        links = cells[2].xpath(".//a/@href")
        if not links:
            continue
        href = links[0].replace("/ix?doc=", "")
        size = cells[4].text_content().strip()
        documents.append(
            IndexDocument(
                seq=cells[0].text_content().strip(),
                description=" ".join(cells[1].text_content().split()),
                filename=cells[2].xpath(".//a")[0].text_content().strip(),
                url=urljoin(url, href),
                doc_type=cells[3].text_content().strip(),
                size=int(size) if size.isdigit() else 0,
            )
        )
    return FilingIndex(
        documents=tuple(documents),
        filed=_info(root, "Filing Date"),
        period=_info(root, "Period of Report"),
        items=tuple(_ITEM.findall(_info(root, "Items", joined=True))),
    )


def _info(root: lxml.html.HtmlElement, head: str, joined: bool = False) -> str:
    values = root.xpath(f'//div[@class="infoHead" and normalize-space()="{head}"]/following-sibling::div[1]')
    if not values:
        return ""
    text = values[0].text_content()
    return " ".join(text.split()) if joined else text.strip()
