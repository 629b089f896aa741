"""Hostile and broken input: every parser and loader returns plain data or raises a MonitorError naming
the source and the cause, never another exception, never a hang, never unbounded memory.

Property tests mutate the real payloads in tests/fixtures (feeds, EDGAR Atom/JSON/index, 8-K HTML) and
the real config.toml, rules/*.toml and thesis file, and generate feeds, HTML trees and TOML values. The
explicit tests cover the classes the issue names (huge bodies, deep nesting, invalid UTF-8, billion
laughs, script/style and zero-width characters, links off the feed's site or to file:/javascript:/data:),
each also end to end: a local server serves the payload, the real poll job runs, a fetch_errors row
names the source URL and the cause, and the next source is still polled.

``MONITOR_FUZZ_EXAMPLES`` sets the examples per property (default 40, the default suite's budget);
``MONITOR_FUZZ_RANDOM=1`` draws fresh random inputs instead of the reproducible derandomized ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from monitor import store
from monitor.config import Config, load_config
from monitor.errors import ConfigError, MonitorError, ParseError, RefusedURL
from monitor.extract.rules import RULE_FILES, Rules, load_rules
from monitor.fetch import edgar
from monitor.fetch.edgar_parse import FilingIndex, parse_filing_index, parse_latest_filings, parse_submissions
from monitor.fetch.feeds import ParsedFeed, parse_feed
from monitor.fetch.links import check_link
from monitor.fetch.html_text import HtmlText, body_to_text, html_to_text
from monitor.pipeline import Runtime, build_client, job_edgar_latest, job_feeds, job_reconcile
from monitor.score.thesis import Thesis, load_thesis
from monitor.tickers import WatchedCompany
from tests.conftest import FIXTURES, ROOT, SAMPLES, USER_AGENT, make_config
from tests.feeds_wrap import Item, wrap_in_rss
from tests.servers import FixtureServer, Reply

# A failing example is a real payload of tens of kB; hypothesis warns that its repr is large, and under
# filterwarnings=error that warning would replace the report of the failure itself.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")

# Hypothesis caches unicode tables and literal constants in its home folder: a temporary one, not the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "monitor-hypothesis")
EXAMPLES = int(os.environ.get("MONITOR_FUZZ_EXAMPLES", "40"))
HOSTILE = settings(
    max_examples=EXAMPLES,
    deadline=None,  # wall-clock per example is bounded by CALL_SECONDS below, not by hypothesis' flaky timer
    database=None,  # no .hypothesis/ directory in the repository
    derandomize=os.environ.get("MONITOR_FUZZ_RANDOM") != "1",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
CALL_SECONDS = 10.0  # one parse of one (at most a few hundred kB) input; a hang shows up as a failure

FEED_URLS = {
    "netnewswire_kc0011.rss": "http://kc0011.net/",
    "netnewswire_livemint.xml": "https://www.livemint.com/rss/news",
    "netnewswire_medscape.rss": "https://www.medscape.com/cx/rssfeeds/2674.xml",
    "netnewswire_phpxml.rss": "https://www.fcutrecht.net/",
    "netnewswire_qemu.atom": "https://www.qemu.org/feed.xml",
}
FEEDS = [(FIXTURES / "feeds" / name).read_bytes() for name in FEED_URLS]
EDGAR = FIXTURES / "edgar"
LATEST_ATOM = (EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml").read_bytes()
SUBMISSIONS = (EDGAR / "CIK0001045810.json").read_bytes()
INDEXES = [(EDGAR / "0000796343-23-000044" / "0000796343-23-000044-index.html").read_bytes(),
           (EDGAR / "0001045810-26-000024" / "0001045810-26-000024-index.html").read_bytes()]
HTML_PAGES = [(EDGAR / "0000796343-23-000044" / "adbeex991q123.htm").read_bytes(),
              (SAMPLES / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm").read_bytes()]
CONFIG_TOML = (ROOT / "config.toml").read_bytes()
THESIS_TOML = (ROOT / "rules" / "theses" / "mara_ai_pivot.toml").read_bytes()
RULES = {name: (ROOT / "rules" / name).read_bytes() for name in RULE_FILES}

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
HIDDEN_MARK = "HIDDENMARK"

# --- tally: what the properties tried, printed at the end of the module ----------------------------

TALLY: dict[str, Counter[str]] = {}


def attempt(target: str, source: str, call: Callable[[], Any]) -> Any:
    """Run one parse; a MonitorError must name ``source`` and a cause, anything else fails the test."""
    counts = TALLY.setdefault(target, Counter())
    counts["inputs"] += 1
    started = time.monotonic()
    try:
        return call()
    except MonitorError as exc:
        counts["errors"] += 1
        assert str(exc).startswith(f"{source}: ") and len(str(exc)) > len(source) + 3, str(exc)
        return exc
    finally:
        assert time.monotonic() - started < CALL_SECONDS, f"{target}: one input took over {CALL_SECONDS}s"


@pytest.fixture(scope="module", autouse=True)
def report_tally(request: pytest.FixtureRequest) -> Iterator[None]:
    TALLY.clear()
    yield
    if not TALLY:
        return
    inputs = sum(c["inputs"] for c in TALLY.values())
    errors = sum(c["errors"] for c in TALLY.values())
    lines = [f"hypothesis: {inputs} inputs over {len(TALLY)} properties, {errors} MonitorErrors, 0 escapes"]
    lines += [f"  {name}: {c['inputs']} inputs, {c['errors']} MonitorErrors" for name, c in sorted(TALLY.items())]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + "\n".join(lines))


# --- strategies ------------------------------------------------------------------------------------

HOSTILE_TOKENS = [
    b"\x00", b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"&#xD800;", b"&#0;", b"&lol;", b"&#x200b;",
    b'<!DOCTYPE x [<!ENTITY lol "lol">]>', b"<![CDATA[", b"]]>", b"<div>" * 40, b"</", b"<?xml version='1.0'?>",
    b"<script>HIDDENMARK()</script>", "\u200b\ufeff".encode(), b"<link>file:///etc/passwd</link>",
    b"<link>javascript:alert(1)</link>", b"<link>http://[::1</link>", b'href="data:text/html,x"', b"<entry>",
    b"<item>", b"\r\n", b'"', b"{", b"[", b"1e999", b"null", b"-1", b"\\u0000", b"\\ud800", b" = ", b"[[",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A real payload with a few byte-level edits: inserts (hostile tokens or random bytes), deletions,
    byte flips, truncation and repeated spans, the breakage a real server or a hostile one produces."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "flip", "truncate", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(HOSTILE_TOKENS), st.binary(min_size=1, max_size=24)))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 400))]
        elif op == "flip":
            data[at:at + 1] = bytes([draw(st.integers(0, 255))])
        elif op == "truncate":
            del data[at:]
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 400))] * draw(st.integers(1, 3))
    return bytes(data)


_TOML_SCALAR = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "true", "false", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z"]),
    st.text(max_size=30).map(json.dumps),
    st.sampled_from(['"http://[bad"', '"file:///etc/passwd"', '"https://x/{symbol}{symbol.__class__}"',
                     '"https://x/{symbol}{symbol:>999999999}"', '"a\\u0000b"', '"(((("', '"a{4294967296}"',
                     '"' + "(" * 5000 + ")" * 5000 + '"', '"x"', '""']),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
)
TOML_VALUE = st.recursive(
    _TOML_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=3)
        .map(lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"),
    ),
    max_leaves=8,
)
_KEY_LINE = re.compile(r"^\s*([A-Za-z0-9_.\"-]+)\s*=\s*(.*)$")


@st.composite
def toml_swapped(draw: st.DrawFn, seed: bytes) -> bytes:
    """A real TOML file with a few values replaced by generated ones: valid TOML of the wrong shape,
    so the loader's own checks (not only the TOML parser) are exercised."""
    lines = seed.decode("utf-8").split("\n")
    for _ in range(draw(st.integers(1, 3))):
        keyed = [i for i, line in enumerate(lines) if _KEY_LINE.match(line)]
        i = draw(st.sampled_from(keyed))
        key, rhs = _KEY_LINE.match(lines[i]).groups()  # type: ignore[union-attr]
        end = i + 1
        if rhs.strip() == "[":  # a multi-line array: replace it whole
            while end < len(lines) and lines[end].strip() != "]":
                end += 1
            end += 1
        lines[i:end] = [f"{key} = {draw(TOML_VALUE)}"]
    return "\n".join(lines).encode("utf-8")


def toml_inputs(seed: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated([seed]), toml_swapped(seed))


LINKS = st.one_of(
    st.sampled_from(["file:///etc/passwd", "javascript:alert(1)", "data:text/html,<p>x</p>", "ftp://ir.acme.com/x",
                     "http://[::1", "https://acme.com.attacker.net/x", "https://attacker.net/acme.com",
                     "https://acme.com@attacker.net/", "//attacker.net/x", "/news/1", "news/2", "", "\x00",
                     "https://www.acme.com/pr/1", "https://ir.acme.com/pr/2", "http://acme.com./x"]),
    st.builds(lambda scheme, host, path: f"{scheme}://{host}/{path}",
              st.sampled_from(["http", "https", "file", "javascript", "data", "gopher", "HTTP"]),
              st.sampled_from(["acme.com", "ir.acme.com", "evil.com", "acme.com.evil.com", "127.0.0.1", "[::1]",
                               "xn--acme-9za.com", "ACME.COM"]),
              st.text(max_size=10)),
    st.text(max_size=40),
)
FEED_URL = "https://ir.acme.com/rss/news.xml"

_TAGS = ["div", "p", "span", "table", "tr", "td", "b", "li", "pre", "a", "h2", "section", "font"]
_HIDING = ["script", "style", "noscript", "template", "iframe", "svg"]
_TEXT = st.text(alphabet=st.sampled_from(list("Item 1.01 contract lease MW $&;<\n\t") + list(ZERO_WIDTH)),
                max_size=20).map(lambda s: s.replace("&", "&amp;").replace("<", "&lt;"))
_ZW_REFS = st.sampled_from(["&#x200b;", "&#8203;", "&#xfeff;", "&shy;", "&zwnj;", "&zwj;", "&#x2060;"])
HTML_TREE = st.recursive(
    st.one_of(_TEXT, _ZW_REFS),
    lambda inner: st.one_of(
        st.builds(lambda tag, kids: f"<{tag}>{''.join(kids)}</{tag}>", st.sampled_from(_TAGS), st.lists(inner, max_size=4)),
        st.builds(lambda tag, kids: f"<{tag}>{HIDDEN_MARK}{''.join(kids)}</{tag}>", st.sampled_from(_HIDING),
                  st.lists(inner, max_size=2)),
        st.builds(lambda kids: f'<div style="display:none">{HIDDEN_MARK}{"".join(kids)}</div>', st.lists(inner, max_size=2)),
    ),
    max_leaves=25,
)


# --- properties: feeds ---------------------------------------------------------------------------


@HOSTILE
@given(data=mutated(FEEDS))
def test_feed_parser_returns_items_or_a_parse_error_for_mutated_real_feeds(data: bytes) -> None:
    result = attempt("parse_feed", FEED_URL, lambda: parse_feed(data, FEED_URL))

    assert isinstance(result, (ParsedFeed, ParseError))
    if isinstance(result, ParsedFeed):
        assert all(isinstance(item.guid, str) and item.guid for item in result.items)


@HOSTILE
@given(links=st.lists(LINKS, min_size=1, max_size=5), titles=st.lists(st.text(max_size=30), min_size=5, max_size=5))
def test_feed_links_are_followed_only_when_http_and_on_the_feeds_site(links: list[str], titles: list[str]) -> None:
    rss = wrap_in_rss([Item(title or "t", link, guid=f"g{i}") for i, (link, title) in enumerate(zip(links, titles))])
    feed = attempt("parse_feed (generated)", FEED_URL, lambda: parse_feed(rss, FEED_URL))

    for item in getattr(feed, "items", []):
        refused = attempt("check_link", item.link, lambda: check_link(FEED_URL, item.link))
        host = re.match(r"^https?://([^/?#@]*@)?(?P<host>[^/:?#]*)", item.link, re.I)
        allowed = host is not None and host["host"].lower().rstrip(".") in ("acme.com", "ir.acme.com", "www.acme.com")
        assert (refused is None) == allowed, item.link
        if refused is not None:
            assert isinstance(refused, RefusedURL) and refused.url == item.link


# --- properties: EDGAR ---------------------------------------------------------------------------


@HOSTILE
@given(data=mutated([LATEST_ATOM]))
def test_latest_filings_parser_survives_mutated_real_atom(data: bytes) -> None:
    source = "https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent"
    result = attempt("parse_latest_filings", source, lambda: parse_latest_filings(data, source))

    assert isinstance(result, (list, ParseError))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
_JSON_PATHS = [("cik",), ("name",), ("filings",), ("filings", "recent"), ("filings", "recent", "accessionNumber"),
               ("filings", "recent", "form"), ("filings", "recent", "filingDate"), ("filings", "recent", "items"),
               ("filings", "recent", "primaryDocument"), ("filings", "recent", "acceptanceDateTime")]


@st.composite
def submissions_swapped(draw: st.DrawFn) -> bytes:
    """The real submissions JSON with values at known keys replaced by arbitrary JSON."""
    payload = json.loads(SUBMISSIONS)
    for _ in range(draw(st.integers(1, 3))):
        *parents, key = draw(st.sampled_from(_JSON_PATHS))
        node = payload
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[key] = draw(JSON_VALUES)
    return json.dumps(payload).encode()


@HOSTILE
@given(data=st.one_of(mutated([SUBMISSIONS]), submissions_swapped(),
                      st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n)))
def test_submissions_parser_survives_mutated_and_reshaped_real_json(data: bytes) -> None:
    source = "https://data.sec.gov/submissions/CIK0001045810.json"
    result = attempt("parse_submissions", source, lambda: parse_submissions(data, source, "https://www.sec.gov"))

    assert isinstance(result, (tuple, ParseError))


@HOSTILE
@given(data=mutated(INDEXES))
def test_filing_index_parser_survives_mutated_real_indexes(data: bytes) -> None:
    source = "https://www.sec.gov/Archives/edgar/data/796343/000079634323000044/0000796343-23-000044-index.html"
    result = attempt("parse_filing_index", source, lambda: parse_filing_index(data, source))

    assert isinstance(result, (FilingIndex, ParseError))


# --- properties: HTML --------------------------------------------------------------------------------


@HOSTILE
@given(data=mutated(HTML_PAGES),
       content_type=st.sampled_from(["text/html", "text/plain", "", "application/octet-stream", "application/pdf"]))
def test_body_parser_survives_mutated_real_filings(data: bytes, content_type: str) -> None:
    source = "https://www.sec.gov/Archives/edgar/data/1507605/x.htm"
    result = attempt("body_to_text", source, lambda: body_to_text(data, content_type, source))

    assert isinstance(result, (HtmlText, ParseError))


@HOSTILE
@given(tree=st.lists(HTML_TREE, max_size=4), as_text=st.booleans())
def test_html_text_never_carries_hidden_content_or_zero_width_characters(tree: list[str], as_text: bool) -> None:
    page = f"<html><head><title>T&#x200b;itle</title></head><body><p>Visible words</p>{''.join(tree)}</body></html>"
    result = attempt("html_to_text (generated)", "page.htm",
                     lambda: html_to_text(page if as_text else page.encode("utf-8"), "page.htm"))

    assert isinstance(result, HtmlText), result
    assert result.text.startswith("Visible words") and result.title == "Title"
    assert HIDDEN_MARK not in result.text
    assert not set(ZERO_WIDTH) & set(result.text + result.title)


# --- properties: configuration, rules, theses ----------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@HOSTILE
@given(data=toml_inputs(CONFIG_TOML))
def test_config_loader_gives_a_config_or_a_config_error_naming_the_file(scratch: Path, data: bytes) -> None:
    path = scratch / "config.toml"
    path.write_bytes(data)
    result = attempt("load_config", str(path), lambda: load_config(path))

    assert isinstance(result, (Config, ConfigError))


@HOSTILE
@given(name=st.sampled_from(RULE_FILES), data=st.data())
def test_rules_loader_gives_rules_or_a_config_error_naming_the_file(scratch: Path, name: str, data: st.DataObject) -> None:
    rules_dir = scratch / "rules"
    rules_dir.mkdir(exist_ok=True)
    for other, content in RULES.items():
        (rules_dir / other).write_bytes(content)
    (rules_dir / name).write_bytes(data.draw(toml_inputs(RULES[name])))
    result = attempt("load_rules", str(rules_dir / name), lambda: load_rules(rules_dir))

    assert isinstance(result, (Rules, ConfigError))


@HOSTILE
@given(data=toml_inputs(THESIS_TOML))
def test_thesis_loader_gives_a_thesis_or_a_config_error_naming_the_file(scratch: Path, data: bytes) -> None:
    path = scratch / "thesis.toml"
    path.write_bytes(data)
    result = attempt("load_thesis", str(path), lambda: load_thesis(path))

    assert isinstance(result, (Thesis, ConfigError))


# --- explicit hostile classes -----------------------------------------------------------------------


def laughs(root: str) -> bytes:
    """The classic billion-laughs document: ten levels of ten references, 10^9 'lol's if expanded."""
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n' + "\n".join(levels) + "\n]>\n" + root).encode()


def quadratic(root: str) -> bytes:
    """One 1 MB text entity referenced 10,000 times: no nesting, 10 GB if expanded."""
    return (f'<?xml version="1.0"?>\n<!DOCTYPE x [\n<!ENTITY a "{"A" * 1_000_000}">\n]>\n' + root).encode()


RSS_ROOT = ('<rss version="2.0"><channel><title>&{e};</title><item><title>t</title>'
            '<link>https://ir.acme.com/a</link><description>{refs}</description></item></channel></rss>')
ATOM_ROOT = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>&{e};</title><entry>'
             '<title>8-K - X (0000000001) (Filer)</title><summary>{refs}</summary></entry></feed>')
ENTITY_BOMBS = {
    "billion laughs rss": laughs(RSS_ROOT.format(e="lol9", refs="&lol9;")),
    "quadratic blow-up rss": quadratic(RSS_ROOT.format(e="a", refs="&a;" * 10_000)),
    "billion laughs atom": laughs(ATOM_ROOT.format(e="lol9", refs="&lol9;")),
    "external entity rss": (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                            + RSS_ROOT.format(e="xxe", refs="&xxe;").encode()),
    "billion laughs in utf-16": laughs(RSS_ROOT.format(e="lol9", refs="&lol9;")).decode().replace(
        'version="1.0"', 'version="1.0" encoding="utf-16"').encode("utf-16"),
}


def bounded(call: Callable[[], Any], megabytes: float = 64.0) -> Any:
    """Run ``call`` (returning its MonitorError, if any); fail when it takes over 5 s or allocates more
    than ``megabytes`` at its peak. Only for inputs refused early: tracemalloc slows Python code tenfold."""
    tracemalloc.start()
    try:
        return timed(call, seconds=5.0)
    finally:
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        assert peak < megabytes, f"peaked at {peak:.0f} MB"


def timed(call: Callable[[], Any], seconds: float) -> Any:
    """Run ``call`` (returning its MonitorError, if any); fail when it takes longer than ``seconds``."""
    started = time.monotonic()
    try:
        return call()
    except MonitorError as exc:
        return exc
    finally:
        elapsed = time.monotonic() - started
        assert elapsed < seconds, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("name", ENTITY_BOMBS, ids=list(ENTITY_BOMBS))
@pytest.mark.parametrize("parser", [parse_feed, parse_latest_filings], ids=["feed", "latest-filings"])
def test_xml_entity_declarations_are_refused_before_expansion(parser: Callable[..., Any], name: str) -> None:
    error = bounded(lambda: parser(ENTITY_BOMBS[name], FEED_URL))

    assert isinstance(error, ParseError) and error.source == FEED_URL
    assert "entity expansion is refused" in error.cause


def test_a_short_literal_entity_such_as_a_copyright_sign_is_still_allowed() -> None:
    rss = '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY copy "\u00a9">\n]>\n'.encode() + RSS_ROOT.format(
        e="copy", refs="a&copy;b").encode()

    assert [item.title for item in parse_feed(rss, FEED_URL).items] == ["t"]


def test_character_reference_entities_of_real_feeds_are_still_allowed() -> None:
    rss = b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY nbsp "&#160;">\n]>\n' + RSS_ROOT.format(
        e="nbsp", refs="a&nbsp;b").encode()

    assert [item.title for item in parse_feed(rss, FEED_URL).items] == ["t"]


@pytest.mark.parametrize("name", ENTITY_BOMBS, ids=list(ENTITY_BOMBS))
@pytest.mark.parametrize("parser", [html_to_text, parse_filing_index], ids=["html", "filing-index"])
def test_html_parsers_do_not_expand_entities(parser: Callable[..., Any], name: str) -> None:
    result = bounded(lambda: parser(ENTITY_BOMBS[name], "page.htm"))

    text = getattr(result, "text", str(result))
    assert "lollollol" not in text and "AAAAAAAAAA" * 1000 not in text and "root:" not in text


def nested(depth: int, tag: bytes = b"div") -> bytes:
    return b"<html><body><p>before</p>" + b"<%s>" % tag * depth + b"deep" + b"</%s>" % tag * depth + b"</body></html>"


@pytest.mark.parametrize("call", [
    lambda: html_to_text(nested(100_000), "deep.htm"),
    lambda: html_to_text(nested(100_000, b"table"), "deep.htm"),
    lambda: parse_filing_index(nested(100_000), "deep.htm"),
    lambda: parse_feed(b'<rss version="2.0"><channel><item><title>t</title><description>' + nested(100_000, b"b")
                       + b"</description></item></channel></rss>", "deep.htm"),
    lambda: parse_submissions(b"[" * 100_000 + b"]" * 100_000, "deep.htm", "https://www.sec.gov"),
], ids=["html divs", "html tables", "filing index", "feed body", "submissions json"])
def test_deep_nesting_is_bounded_and_never_a_recursion_error(call: Callable[[], Any]) -> None:
    result = timed(call, seconds=20.0)

    assert not isinstance(result, MonitorError) or str(result).startswith("deep.htm: ")


@pytest.mark.parametrize("loader", [load_config, load_thesis], ids=["config", "thesis"])
def test_deeply_nested_toml_is_a_config_error_naming_the_file(tmp_path: Path, loader: Callable[[Path], Any]) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000)

    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: not valid TOML: .*nested too deeply"):
        loader(path)


def test_a_rules_pattern_too_large_for_the_regex_engine_is_a_config_error_naming_file_and_key(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "rules" / "boilerplate.toml").write_text("sentence = ['a{4294967296}']\n")

    with pytest.raises(ConfigError, match=r"boilerplate\.toml: sentence\[0\]: bad pattern"):
        load_rules(tmp_path / "rules")


def test_a_price_template_with_attribute_access_is_a_config_error_not_evaluated(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[market]\nprice_url_template = "https://x.example/{symbol}{symbol.__class__}"\n')

    with pytest.raises(ConfigError, match=r"price_url_template: .*only \{symbol\} may be in braces"):
        load_config(path)


def test_invalid_utf8_html_is_decoded_not_fatal() -> None:
    page = b"<html><body><p>Caf\xe9 \x93quoted\x94 \xff\xfe text</p></body></html>"

    assert html_to_text(page, "page.htm").text == "Caf\u00e9 \u201cquoted\u201d \u00ff\u00fe text"


def test_html_text_given_lone_surrogates_is_not_an_encoding_crash() -> None:
    assert html_to_text("<p>before \ud800 after</p>", "page.htm").text == "before ? after"


def test_a_feed_parser_crash_on_a_surrogate_reference_is_a_parse_error() -> None:
    rss = b'<rss version="2.0"><channel><item><title>a&#xD800;b</title></item></channel></rss>'

    with pytest.raises(ParseError, match=r"^https://ir\.acme\.com/rss/news\.xml: feed parser failed"):
        parse_feed(rss, FEED_URL)


def test_a_huge_body_given_to_the_parsers_is_handled_in_bounded_time() -> None:
    huge = b"<html><body>" + b"<p>Item 8.01 Other events. The lease is signed.</p>" * 50_000 + b"</body></html>"

    assert timed(lambda: html_to_text(huge, "huge.htm"), seconds=30.0).text.count("The lease is signed.") == 50_000
    assert isinstance(timed(lambda: parse_feed(huge, "huge.htm"), seconds=30.0), ParseError)


# --- end to end: the real poll jobs against a local server ---------------------------------------------


def feed_poll(tmp_path: Path, closing: Callable[[Any], Any], server: FixtureServer, feed: bytes,
              page: Reply | None = None, **http: Any) -> tuple[Any, str]:
    """MARA's feed (hostile) then RIOT's (a real release behind a real feed's structure), one job_feeds run;
    returns (status, MARA's feed URL)."""
    release = (SAMPLES / "wire" / "releases" / "RIOT_2024-06-04_may-2024-production-post-halving-decline.txt")
    server.route("/riot/release", Reply(200, release.read_bytes(), {"Content-Type": "text/plain; charset=utf-8"}))
    server.route("/riot/feed.rss", Reply(200, wrap_in_rss([Item("Riot update", f"{server.url}/riot/release", "Riot",
                                                                guid="riot-1")]), {"Content-Type": "application/rss+xml"}))
    server.route("/mara/feed.rss", Reply(200, feed.replace(b"{server}", server.url.encode()),
                                         {"Content-Type": "application/rss+xml"}))
    if page is not None:
        server.route("/mara/release", page)
    mara_url, riot_url = f"{server.url}/mara/feed.rss", f"{server.url}/riot/feed.rss"
    config = make_config(tmp_path, None, http={"max_retries": 0, **http})
    rt = closing(Runtime(config, config.path(config.monitor.db),
                         [WatchedCompany("MARA", 1507605, "", (mara_url,)), WatchedCompany("RIOT", 1167419, "", (riot_url,))],
                         offline=False, client=build_client(config, USER_AGENT)))
    job_feeds(rt)
    return store.status(closing(store.open_db(rt.db_path))), mara_url


def mara_item(link: str) -> bytes:
    return wrap_in_rss([Item("MARA release", link, "MARA", guid="mara-1")])


FEED_CASES = {
    "huge body": (mara_item("{server}/mara/release"), Reply(200, b"<p>" + b"x" * 3_000_000, {"Content-Type": "text/html"}),
                  "/mara/release", "BodyTooLarge", "exceeds the limit of 2000000 bytes"),
    "deeply nested html": (mara_item("{server}/mara/release"), Reply(200, nested(100_000), {"Content-Type": "text/html"}),
                           "/mara/release", "ParseError", "nested deeper"),
    "billion laughs": (ENTITY_BOMBS["billion laughs rss"], None, "/mara/feed.rss", "ParseError",
                       "entity expansion is refused"),
    "quadratic entity blow-up": (ENTITY_BOMBS["quadratic blow-up rss"], None, "/mara/feed.rss", "ParseError",
                                 "entity expansion is refused"),
    "feed parser crash": (b'<rss version="2.0"><channel><item><title>a&#xD800;</title></item></channel></rss>', None,
                          "/mara/feed.rss", "ParseError", "feed parser failed"),
    "binary feed": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", None, "/mara/feed.rss", "ParseError",
                    "not an RSS/Atom feed"),
    "file link": (mara_item("file:///etc/passwd"), None, "file://etc/passwd", "RefusedURL", "is not http(s)"),
    "javascript link": (mara_item("javascript:alert(1)"), None, "javascript:alert(1)", "RefusedURL", "is not http(s)"),
    "data link": (mara_item("data:text/html,<p>x</p>"), None, "data:text/html,<p>x</p>", "RefusedURL", "is not http(s)"),
    "off-domain link": (mara_item("https://attacker.example.net/pr"), None, "https://attacker.example.net/pr",
                        "RefusedURL", "leaves the feed's site"),
    "malformed link": (mara_item("http://[::1/pr"), None, "http://[::1/pr", "RefusedURL", "malformed feed link"),
    "control character in link": (mara_item("{server}/mara/re\nlease"), None, "/mara/re\nlease", "RefusedURL",
                                  "invalid URL"),
}


@pytest.mark.parametrize("case", FEED_CASES, ids=list(FEED_CASES))
def test_a_hostile_feed_is_recorded_with_url_and_cause_and_the_next_feed_is_still_polled(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer, case: str) -> None:
    feed, page, where, error, cause = FEED_CASES[case]
    status, mara_url = feed_poll(tmp_path, closing, wire_server, feed, page, max_body_bytes=2_000_000)

    [row] = [e for e in status["recent_errors"] if e["source"] == f"feed:MARA:{mara_url}"]
    assert row["error"] == error and cause in row["cause"]
    assert row["url"] == (wire_server.url + where if where.startswith("/") else where)
    assert status["documents_by_ticker"] == {"RIOT": 1}
    assert not any(seen.path.startswith("/etc") or "attacker" in seen.path for seen in wire_server.requests)


def test_a_release_with_script_style_and_zero_width_characters_is_stored_without_them(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer) -> None:
    words = "MARA signed a 200 MW hosting agreement with a hyperscaler for a ten year term. " * 12
    page = ("<html><head><style>p{color:red}</style><script>var HIDDENMARK = 1;</script></head><body>"
            f"<p>MA&#x200b;RA\u200d signs</p><script>HIDDENMARK()</script><p>{words}</p>"
            "<noscript>HIDDENMARK</noscript><p style='display:none'>HIDDENMARK</p></body></html>").encode()
    status, _ = feed_poll(tmp_path, closing, wire_server, mara_item("{server}/mara/release"),
                          Reply(200, page, {"Content-Type": "text/html"}))

    [doc] = store.list_documents(closing(store.open_db(tmp_path / "monitor.db")), "MARA", with_text=True)
    assert doc["text"].startswith("MARA signs\n\nMARA signed a 200 MW hosting agreement")
    assert HIDDEN_MARK not in doc["text"] and not set(ZERO_WIDTH) & set(doc["text"])
    assert status["documents_by_ticker"] == {"MARA": 1, "RIOT": 1}


def test_a_release_page_in_invalid_utf8_is_stored_decoded(
        tmp_path: Path, closing: Callable[[Any], Any], wire_server: FixtureServer) -> None:
    page = b"<html><body><p>MARA\x92s \x93wind farm\x94 \xff</p>" + b"<p>The site has 240 MW of capacity.</p>" * 20
    status, _ = feed_poll(tmp_path, closing, wire_server, mara_item("{server}/mara/release"),
                          Reply(200, page, {"Content-Type": "text/html"}))

    [doc] = store.list_documents(closing(store.open_db(tmp_path / "monitor.db")), "MARA", with_text=True)
    assert doc["text"].startswith("MARA\u2019s \u201cwind farm\u201d \u00ff")
    assert status["documents_by_ticker"] == {"MARA": 1, "RIOT": 1}


SUBMISSIONS_CASES = {
    "invalid utf-8": (b'{"cik": "\xff\xfe", "filings": {}}', "UnicodeDecodeError"),
    "nested 100k deep": (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),
    "cik of 1e999": (b'{"cik": 1e999, "filings": {"recent": {}}}', "OverflowError"),
    "columns not lists": (b'{"cik": 1, "filings": {"recent": {"accessionNumber": 1, "form": 2, "filingDate": 3}}}',
                          "must be lists"),
    "html error page": ((EDGAR / "CIK-000000001.json.404.xml").read_bytes(), "not a submissions JSON"),
}


@pytest.mark.parametrize("case", SUBMISSIONS_CASES, ids=list(SUBMISSIONS_CASES))
def test_hostile_submissions_json_is_recorded_and_the_next_company_is_still_reconciled(
        tmp_path: Path, closing: Callable[[Any], Any], sec_server: FixtureServer, case: str) -> None:
    body, cause = SUBMISSIONS_CASES[case]
    sec_server.route("/submissions/CIK0000000001.json", Reply(200, body, {"Content-Type": "application/json"}))
    sec_server.route("/submissions/CIK0001045810.json", Reply.file(EDGAR / "CIK0001045810.json", "application/json"))
    config = make_config(tmp_path, sec_server, sec={"forms": ["8-K"], "backfill_days": 0})  # NVDA: JSON only
    rt = closing(Runtime(config, config.path(config.monitor.db),
                         [WatchedCompany("BAD", 1, "", ()), WatchedCompany("NVDA", 1045810, "", ())],
                         offline=False, client=build_client(config, USER_AGENT)))
    results = job_reconcile(rt)

    status = store.status(closing(store.open_db(rt.db_path)))
    [row] = [e for e in status["recent_errors"] if e["source"] == "edgar:submissions:BAD"]
    assert row["error"] == "ParseError" and cause in row["cause"]
    assert row["url"] == edgar.submissions_url(config, 1)
    [nvda_poll] = [r for r in results if r.source == "edgar:submissions:NVDA"]
    assert nvda_poll.errors == [] and nvda_poll.filings_seen > 900
    nvda = next(s for s in status["sources"] if s["name"] == "edgar:submissions:NVDA")
    assert nvda["consecutive_failures"] == 0


@pytest.mark.parametrize("case", ["billion laughs atom", "deeply nested index"])
def test_hostile_edgar_payloads_in_the_latest_poll_are_recorded_with_url_and_cause(
        tmp_path: Path, closing: Callable[[Any], Any], sec_server: FixtureServer, case: str) -> None:
    atom = LATEST_ATOM.replace(b"https://www.sec.gov", sec_server.url.encode())
    if case == "billion laughs atom":
        atom = ENTITY_BOMBS[case]
    sec_server.route_pattern(r"^/cgi-bin/browse-edgar", lambda m: Reply(200, atom, {"Content-Type": "application/atom+xml"}))
    sec_server.route_pattern(r"-index\.html?$", lambda m: Reply(200, nested(100_000), {"Content-Type": "text/html"}))
    config = make_config(tmp_path, sec_server, sec={"forms": ["8-K"]})
    rt = closing(Runtime(config, config.path(config.monitor.db), [WatchedCompany("MRUS", 1651311, "", ())],
                         offline=False, client=build_client(config, USER_AGENT)))
    [result] = job_edgar_latest(rt)

    errors = store.status(closing(store.open_db(rt.db_path)))["recent_errors"]
    assert result.documents_added == 0 and errors
    if case == "billion laughs atom":
        assert errors[-1]["url"] == edgar.latest_feed_url(config, 0)
        assert "entity expansion is refused" in errors[-1]["cause"]
    else:
        assert errors[-1]["url"].startswith(sec_server.url) and errors[-1]["url"].endswith("-index.htm")
        assert "no 'Document Format Files' table" in errors[-1]["cause"]


# --- the atheris fuzz run -----------------------------------------------------------------------------


def test_a_short_atheris_run_over_every_parser_loader_and_http_behaviour_finds_no_crash(request: pytest.FixtureRequest,
                                                                        tmp_path: Path) -> None:
    """bench/fuzz.py in a subprocess (libFuzzer owns its process); ``MONITOR_FUZZ_RUNS`` sets its length (1500 here, the
    default suite's budget; the bench alone runs 3000).

    The counts of every target are printed, the HTTP-behaviour ones (encodings, redirect chains,
    header and body timing, Retry-After) included."""
    pytest.importorskip("atheris")
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "fuzz.py")], capture_output=True, text=True,
                         timeout=600, cwd=ROOT, env={"MONITOR_FUZZ_RUNS": "1500", **os.environ,
                                                     "MONITOR_FUZZ_DIR": str(tmp_path)})

    assert run.returncode == 0, run.stderr[-4000:]
    report = run.stdout[run.stdout.index("atheris: "):].strip()
    assert all(f"  {name}: 0 inputs" not in report
               for name in ("http_encoding", "http_redirects", "http_timing", "http_retry_after")), report
    assert re.match(r"atheris: \d+ inputs over 13 targets, \d+ MonitorErrors recorded, 0 crashes", report)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print("\n" + report)
