"""EDGAR payload parsers on real payloads: latest-filings Atom, submissions JSON, filing index."""

from __future__ import annotations

import pytest

from monitor.errors import ParseError
from monitor.fetch.edgar_parse import (
    FilingRef,
    parse_filing_index,
    parse_latest_filings,
    parse_submissions,
)
from tests.conftest import FIXTURES

EDGAR = FIXTURES / "edgar"
LATEST = EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml"
LATEST_503 = EDGAR / "getcurrent_count100_start5100_503.html"
NVDA_SUBMISSIONS = EDGAR / "CIK0001045810.json"
NOT_FOUND_BODY = EDGAR / "CIK-000000001.json.404.xml"
ADOBE_INDEX = EDGAR / "0000796343-23-000044" / "0000796343-23-000044-index.html"
ADOBE_INDEX_URL = "https://www.sec.gov/Archives/edgar/data/796343/0000796343-23-000044-index.html"
ADOBE_FOLDER = "https://www.sec.gov/Archives/edgar/data/796343/000079634323000044/"
NVDA_INDEX = EDGAR / "0001045810-26-000024" / "0001045810-26-000024-index.html"
NVDA_INDEX_URL = "https://www.sec.gov/Archives/edgar/data/1045810/0001045810-26-000024-index.html"
WWW = "https://www.sec.gov"


@pytest.fixture(scope="module")
def latest() -> list[FilingRef]:
    return parse_latest_filings(LATEST.read_bytes(), str(LATEST))


# --- latest-filings (getcurrent) Atom feed ----------------------------------------------


def test_latest_feed_gives_one_ref_per_entry(latest: list[FilingRef]) -> None:
    assert len(latest) == 100


def test_latest_feed_keeps_the_feed_order_newest_first(latest: list[FilingRef]) -> None:
    assert latest[0].accession == "0001193125-25-316845"
    assert latest[0].form == "S-8 POS"
    assert latest[0].updated == "2025-12-12T07:59:03-05:00"


def test_latest_feed_merus_8k_has_cik_form_items_and_filing_date(latest: list[FilingRef]) -> None:
    [merus] = [ref for ref in latest if ref.accession == "0001193125-25-316841"]

    assert merus.cik == 1651311
    assert merus.company == "Merus N.V."
    assert merus.form == "8-K"
    assert merus.items == ("2.01", "3.03", "5.01", "5.02", "9.01")
    assert merus.filed == "2025-12-12"
    assert merus.index_url == (
        "https://www.sec.gov/Archives/edgar/data/1651311/000119312525316841/0001193125-25-316841-index.htm"
    )


def test_latest_feed_filing_with_two_filers_gives_a_ref_per_filer(latest: list[FilingRef]) -> None:
    refs = [ref for ref in latest if ref.accession == "0001193125-25-316835"]

    assert {(ref.cik, ref.company) for ref in refs} == {(1651311, "Merus N.V."), (1434265, "GENMAB A/S")}


def test_latest_feed_refs_are_marked_as_arriving_by_the_latest_feed(latest: list[FilingRef]) -> None:
    assert {ref.via for ref in latest} == {"latest-feed"}


def test_latest_feed_503_html_page_is_a_parse_error_naming_the_source() -> None:
    # What SEC serves when paging past the end of getcurrent: an HTML "File Unavailable" page.
    with pytest.raises(ParseError) as excinfo:
        parse_latest_filings(LATEST_503.read_bytes(), "getcurrent?start=5100")

    assert excinfo.value.source == "getcurrent?start=5100"
    assert "not an Atom feed" in excinfo.value.cause


# --- submissions JSON ------------------------------------------------------------


def test_submissions_gives_cik_name_and_every_recent_filing() -> None:
    cik, name, refs = parse_submissions(NVDA_SUBMISSIONS.read_bytes(), str(NVDA_SUBMISSIONS), WWW)

    assert (cik, name, len(refs)) == (1045810, "NVIDIA CORP", 1007)


def test_submissions_builds_the_filing_index_url_from_cik_and_accession() -> None:
    _, _, refs = parse_submissions(NVDA_SUBMISSIONS.read_bytes(), str(NVDA_SUBMISSIONS), WWW)

    assert refs[0].accession == "0001347842-26-000007"
    assert refs[0].index_url == (
        "https://www.sec.gov/Archives/edgar/data/1045810/000134784226000007/0001347842-26-000007-index.html"
    )


def test_submissions_8k_carries_items_period_and_primary_document() -> None:
    _, _, refs = parse_submissions(NVDA_SUBMISSIONS.read_bytes(), str(NVDA_SUBMISSIONS), WWW)

    [ref] = [r for r in refs if r.accession == "0001045810-26-000019"]

    assert ref.form == "8-K"
    assert ref.items == ("2.02", "9.01")
    assert ref.filed == ref.period == "2026-02-25"
    assert ref.primary_document == "nvda-20260225.htm"
    assert ref.via == "submissions"


def test_submissions_filing_without_items_has_an_empty_tuple() -> None:
    _, _, refs = parse_submissions(NVDA_SUBMISSIONS.read_bytes(), str(NVDA_SUBMISSIONS), WWW)

    assert refs[0].form == "4"
    assert refs[0].items == ()


@pytest.mark.parametrize(
    "body",
    [
        NOT_FOUND_BODY.read_bytes(),
        NVDA_SUBMISSIONS.read_bytes()[:5000],
        b'{"cik": "1045810", "name": "NVIDIA CORP"}',
    ],
    ids=["data.sec.gov-404-xml-body", "truncated-json", "json-without-filings"],
)
def test_submissions_garbage_is_a_parse_error_naming_the_source(body: bytes) -> None:
    with pytest.raises(ParseError) as excinfo:
        parse_submissions(body, "CIK0001045810.json", WWW)

    assert excinfo.value.source == "CIK0001045810.json"
    assert "not a submissions JSON" in excinfo.value.cause


# --- filing index page -----------------------------------------------------------


def test_filing_index_primary_document_is_the_8k_with_ix_viewer_prefix_stripped() -> None:
    index = parse_filing_index(ADOBE_INDEX.read_bytes(), ADOBE_INDEX_URL)

    primary = index.documents[0]
    assert (primary.doc_type, primary.filename) == ("8-K", "adbe-20230315.htm")
    assert primary.url == ADOBE_FOLDER + "adbe-20230315.htm"
    assert primary.size == 40091


def test_filing_index_lists_the_ex_99_1_press_release() -> None:
    index = parse_filing_index(ADOBE_INDEX.read_bytes(), ADOBE_INDEX_URL)

    [exhibit] = [doc for doc in index.documents if doc.doc_type == "EX-99.1"]
    assert exhibit.url == ADOBE_FOLDER + "adbeex991q123.htm"


def test_filing_index_document_urls_are_absolute() -> None:
    index = parse_filing_index(ADOBE_INDEX.read_bytes(), ADOBE_INDEX_URL)

    assert all(doc.url.startswith(ADOBE_FOLDER) for doc in index.documents)
    assert not any("/ix?doc=" in doc.url for doc in index.documents)


def test_filing_index_gives_filing_date_period_and_items() -> None:
    index = parse_filing_index(ADOBE_INDEX.read_bytes(), ADOBE_INDEX_URL)

    assert (index.filed, index.period, index.items) == ("2023-03-15", "2023-03-15", ("2.02", "9.01"))


def test_filing_index_filing_date_and_period_can_differ() -> None:
    index = parse_filing_index(NVDA_INDEX.read_bytes(), NVDA_INDEX_URL)

    assert (index.filed, index.period, index.items) == ("2026-03-06", "2026-03-02", ("5.02", "9.01"))


def test_page_without_the_document_table_is_a_parse_error_naming_the_url() -> None:
    with pytest.raises(ParseError) as excinfo:
        parse_filing_index(LATEST_503.read_bytes(), ADOBE_INDEX_URL)

    assert excinfo.value.source == ADOBE_INDEX_URL
    assert "Document Format Files" in excinfo.value.cause
