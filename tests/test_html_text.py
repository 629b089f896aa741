"""HTML → text: what later stages may rely on in the text of a filing or release.

Real documents: MARA's 2024-11-21 8-K (iXBRL, five items) and Adobe's 2023-03-15
8-K (Workiva iXBRL with a hidden ix:header), plus the qemu.org Atom feed for a
real feed body. Small inline inputs only for failure modes (broken markup,
nesting, encodings).
"""

from __future__ import annotations

import re

import pytest

from monitor.documents import strip_provenance
from monitor.errors import ParseError
from monitor.fetch.feeds import parse_feed
from monitor.fetch.html_text import body_to_text, html_to_text
from tests.conftest import FIXTURES, SAMPLES

MARA_8K = SAMPLES / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm"
ADOBE_8K = FIXTURES / "edgar" / "0000796343-23-000044" / "adbe-20230315.htm"
QEMU_FEED = FIXTURES / "feeds" / "netnewswire_qemu.atom"
MARA_RELEASE = SAMPLES / "wire" / "releases" / "MARA_2024-12-03_acquires-wind-farm-hansford-county.txt"

MARA_ITEMS = ("1.01", "2.03", "3.02", "8.01", "9.01")


@pytest.fixture(scope="module")
def mara_text() -> str:
    return html_to_text(MARA_8K.read_bytes(), str(MARA_8K)).text


# --- a real 8-K -----------------------------------------------------------------


def test_mara_8k_item_codes_are_found_in_order() -> None:
    assert html_to_text(MARA_8K.read_bytes(), str(MARA_8K)).items == MARA_ITEMS


@pytest.mark.parametrize("code", MARA_ITEMS)
def test_mara_8k_item_heading_is_a_line_of_its_own_after_a_blank_line(mara_text: str, code: str) -> None:
    lines = mara_text.split("\n")
    [index] = [i for i, line in enumerate(lines) if line.startswith(f"Item {code}")]

    assert lines[index - 1] == ""
    assert lines[index + 1] == ""
    # The heading alone, with nothing of the section glued on.
    assert re.fullmatch(rf"Item {re.escape(code)}\. [^.]+\.", lines[index])


@pytest.mark.parametrize(
    "residue",
    ["dei:", "xbrli", "iso4217", "AsOf2024-11-20", "Fact000003", "0001507605"],
)
def test_mara_8k_text_has_no_inline_xbrl_residue(mara_text: str, residue: str) -> None:
    assert residue not in mara_text


def test_mara_8k_convertible_notes_sentence_is_on_one_line(mara_text: str) -> None:
    [line] = [line for line in mara_text.split("\n") if "$1 billion" in line]

    assert "The aggregate principal amount of notes sold in the offering was $1 billion, which" in line
    assert line.endswith("which additional purchase was completed on November 20, 2024.")


def test_adobe_8k_hidden_ix_header_is_absent() -> None:
    text = html_to_text(ADOBE_8K.read_bytes(), str(ADOBE_8K)).text

    assert "ADOBE INC." in text  # the visible cover page is there ...
    assert "i14f396a08089492c80ae0c1180c7b12c" not in text  # ... the header's context id is not
    assert "0000796343" not in text  # nor the dei:EntityCentralIndexKey fact


def test_adobe_8k_item_codes() -> None:
    assert html_to_text(ADOBE_8K.read_bytes(), str(ADOBE_8K)).items == ("2.02", "9.01")


# --- markup in bad shape ------------------------------------------------------------


def nested_page(depth: int) -> bytes:
    """'before', then 'deep' inside ``depth`` nested divs, then 'after'."""
    nest = b"<div>" * depth + b"deep" + b"</div>" * depth
    return b"<html><body><p>before</p>" + nest + b"<p>after</p></body></html>"


def test_broken_html_still_yields_its_text() -> None:
    broken = (
        b"<html><body><div><p>First para<p>Second <b>bold</div></div></span>"
        b"<table><tr><td>a<td>b</table>tail"
    )

    text = html_to_text(broken, "broken.htm").text

    assert text.split("\n\n") == ["First para", "Second bold", "a | b", "tail"]


def test_deeply_nested_html_is_a_parse_error_not_a_recursion_error() -> None:
    deep = nested_page(50_000)

    with pytest.raises(ParseError, match="nested deeper"):
        html_to_text(deep, "deep.htm")


def test_nesting_within_libxml2_depth_limit_keeps_all_text() -> None:
    nested = nested_page(1000)

    assert html_to_text(nested, "nested.htm").text == "before\n\ndeep\n\nafter"


def test_nesting_beyond_the_parser_limit_is_refused_not_silently_truncated() -> None:
    deep = nested_page(3000)

    with pytest.raises(ParseError, match="nested deeper"):
        html_to_text(deep, "deep.htm")


def test_script_and_style_content_is_removed() -> None:
    page = (
        b"<html><head><style>p{color:red}</style><script>var tracker = 1;</script></head>"
        b"<body><script>alert('x')</script><p>Visible text</p><style>.a{}</style>"
        b"<noscript>enable js</noscript>"
        b"</body></html>"
    )

    assert html_to_text(page, "page.htm").text == "Visible text"


def test_zero_width_characters_are_removed() -> None:
    page = b"<p>Vis&#x200b;ible&#xfeff; te&#xad;xt&#x200d;</p>"

    assert html_to_text(page, "page.htm").text == "Visible text"


@pytest.mark.parametrize("body", [b"", b"  \n\t "], ids=["empty", "whitespace"])
def test_empty_body_is_a_parse_error_naming_the_source(body: bytes) -> None:
    with pytest.raises(ParseError) as excinfo:
        html_to_text(body, "https://ir.example.com/empty.htm")

    assert excinfo.value.source == "https://ir.example.com/empty.htm"
    assert str(excinfo.value).startswith("https://ir.example.com/empty.htm: ")


# --- character encodings ------------------------------------------------------------


def test_html_with_a_declared_charset_keeps_non_ascii_characters() -> None:
    html = '<html><head><meta charset="utf-8"></head><body><p>MARA’s “wind farm” — café</p></body></html>'

    assert html_to_text(html.encode("utf-8"), "page.htm").text == "MARA’s “wind farm” — café"


def test_html_given_as_str_keeps_non_ascii_characters() -> None:
    first = parse_feed(QEMU_FEED.read_bytes(), "https://www.qemu.org/feed.xml").items[0]
    assert "We’d like" in first.body_html

    assert html_to_text(first.body_html, first.link).text.startswith("We’d like to announce")


def test_utf8_html_bytes_without_a_charset_declaration_decode_as_utf8() -> None:
    page = "<html><body><p>MARA’s “wind farm” — café</p></body></html>".encode("utf-8")

    assert html_to_text(page, "page.htm").text == "MARA’s “wind farm” — café"


def release_text() -> str:
    return strip_provenance(MARA_RELEASE.read_bytes()).decode("utf-8")


def test_body_to_text_decodes_utf8_plain_text() -> None:
    text = release_text()

    result = body_to_text(text.encode("utf-8"), "text/plain", "release.txt")

    assert result.text.startswith("Site features 240 MW of interconnection capacity")
    assert "MARA’s Advanced ASIC Retirement Initiative" in result.text


def test_body_to_text_decodes_cp1252_plain_text_like_utf8() -> None:
    text = release_text()

    from_cp1252 = body_to_text(text.encode("cp1252"), "text/plain", "release.txt")

    assert from_cp1252.text == body_to_text(text.encode("utf-8"), "text/plain", "release.txt").text
    assert "MARA’s Advanced ASIC Retirement Initiative" in from_cp1252.text


def test_body_to_text_parses_html_served_as_text_plain() -> None:
    result = body_to_text(MARA_8K.read_bytes(), "text/plain", str(MARA_8K))

    assert result.items == MARA_ITEMS


def test_body_to_text_refuses_a_non_text_content_type() -> None:
    with pytest.raises(ParseError, match="unsupported content type"):
        body_to_text(b"%PDF-1.7\n", "application/pdf", "filing.pdf")


def test_body_to_text_empty_plain_text_is_a_parse_error_naming_the_source() -> None:
    with pytest.raises(ParseError) as excinfo:
        body_to_text(b" \r\n ", "text/plain", "exhibit.txt")

    assert excinfo.value.source == "exhibit.txt"
