"""Document titles: the headline a reader would name, never iXBRL, cover pages or site furniture.

Each case is a real bundled payload (data/samples/, provenance in its SOURCES.md), parsed as
the replay parses it, so the first lines are exactly those a live fetch would see.
"""

from __future__ import annotations

import pytest

from monitor.fetch.replay import load_manifest, sample_document
from monitor.fetch.titles import document_title, reads_as_headline
from tests.conftest import SAMPLES


def bundled(file_part: str) -> tuple[str, str, str]:
    """(text, url, doc_type) of the bundled sample whose file name contains ``file_part``."""
    [sample] = [s for s in load_manifest(SAMPLES) if file_part in s.file]
    document = sample_document(SAMPLES, sample)
    return document.text, document.url, document.doc_type


def title_of(file_part: str) -> str:
    text, url, doc_type = bundled(file_part)
    return document_title(text, url=url, doc_type=doc_type)


def test_an_8k_whose_first_line_is_the_ixbrl_header_is_titled_by_its_form() -> None:
    text, _, _ = bundled("CIFR_8-K_2025-09-24")
    assert text.startswith("false 0001819989")

    assert title_of("CIFR_8-K_2025-09-24") == "8-K"


def test_an_8k_is_titled_by_its_item_headings_not_its_cover_page() -> None:
    title = title_of("mara_8-K_2024-11-21")

    assert title.startswith("8-K: Item 1.01 Entry Into a Material Definitive Agreement; Item 2.03 Creation of")
    assert "SECURITIES AND EXCHANGE COMMISSION" not in title


def test_an_exhibit_is_titled_by_its_headline_not_the_line_naming_the_site_above_it() -> None:
    assert title_of("corescientifichpcoption3re") == (
        "Core Scientific Announces Exercise of Final Contract Option by CoreWeave")


def test_a_newspaper_page_is_titled_by_the_article_headline_not_the_masthead_or_date_stamp() -> None:
    assert title_of("HUT_2024-03-06_drumheller") == "Hut 8 closes Drumheller site, miners moving to Medicine Hat"


def test_a_wire_page_behind_a_sign_up_box_is_titled_by_the_release_headline() -> None:
    assert title_of("CORZ_2024-12-03_550m-zero-coupon") == (
        "Core Scientific Prices Upsized $550 Million Convertible Senior Notes Offering")


def test_a_release_that_opens_with_its_dateline_is_titled_from_the_headline_in_its_url() -> None:
    text, _, _ = bundled("CORZ_2024-06-05_may-2024-production")
    assert text.startswith("AUSTIN, Texas--(BUSINESS WIRE)--")

    assert title_of("CORZ_2024-06-05_may-2024-production") == (
        "Core Scientific Announces May 2024 Production and Operations Updates")


def test_a_page_title_loses_the_site_name_around_it() -> None:
    assert document_title("", given="Core Scientific Prices Upsized Notes Offering | Business Wire") == (
        "Core Scientific Prices Upsized Notes Offering")


def test_a_page_title_that_is_only_a_file_name_gives_way_to_the_form() -> None:
    assert document_title("", given="form8-k.htm", doc_type="8-K") == "8-K"


@pytest.mark.parametrize("line", [
    "false 0001819989 0001819989 2025-09-24 2025-09-24 0001819989 us-gaap:CommonStockMember",
    "SECURITIES AND EXCHANGE COMMISSION",
    "Date of Report (Date of earliest event reported): November 20, 2024",
    "Join today and have your say! It’s FREE!",
    "10/23/2025 | Press release | Distributed by Public on 10/23/2025 14:55",
    "EASTON, Md., Aug. 22, 2025 (GLOBE NEWSWIRE) -- TeraWulf Inc. (Nasdaq: WULF), a leading owner",
])
def test_furniture_and_body_lines_do_not_read_as_headlines(line: str) -> None:
    assert not reads_as_headline(line)


def test_every_bundled_document_has_a_title_that_is_a_headline_or_a_form_label() -> None:
    for sample in load_manifest(SAMPLES):
        document = sample_document(SAMPLES, sample)
        assert document.title, sample.file
        assert reads_as_headline(document.title) or document.title.startswith(document.doc_type), (
            sample.file, document.title)


@pytest.mark.parametrize("line", ["To Our Shareholders | 3 |", "Revenues increased 92% to $252.4 million |",
                                  "Source: GlobeNewswire (MIL-NZ-AU)"])
def test_table_cells_and_credit_lines_do_not_read_as_headlines(line: str) -> None:
    assert not reads_as_headline(line)


def test_a_headline_wrapped_mid_phrase_is_joined_with_its_next_line() -> None:
    text = "CleanSpark, Inc. Announces Upsize and Pricing of\n$1.15 Billion Convertible Notes Offering\nLAS VEGAS, ..."

    assert document_title(text) == "CleanSpark, Inc. Announces Upsize and Pricing of $1.15 Billion Convertible Notes Offering"
