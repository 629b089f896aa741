"""Coverage-guided fuzz run (atheris/libFuzzer) over every parser and loader that takes outside input,
and over the HTTP client's handling of what a hostile server sends (bench/fuzz_http.py).

Run: .venv/bin/python bench/fuzz.py [--runs N]     (default: $MONITOR_FUZZ_RUNS, else 3000)

One harness: the first input byte picks the target, the rest is its input. The corpus starts from the
real payloads of tests/fixtures and the real config.toml, rules/*.toml and thesis, one seed per target,
so libFuzzer mutates real documents rather than discovering XML from nothing. The contract checked for
every input: the target returns, or raises a MonitorError whose message starts with the source it was
given (for the HTTP targets, the URL asked for); any other exception is a crash (libFuzzer stops, prints the traceback and the input, exits
non-zero). Per-input time and memory are bounded by libFuzzer (-timeout, -rss_limit_mb). The corpus
and any crash artifact go to a temporary folder ($MONITOR_FUZZ_DIR if set), never into the repository.

At the end it prints, per target, the inputs tried and the MonitorErrors recorded, and the crash
count; the default suite runs a short run of it (tests/test_hostile_input.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["monitor"]):  # feedparser too would run it 5x slower
    from bench.fuzz_http import HTTP_TARGETS, SERVER
    from monitor.config import load_config
    from monitor.errors import MonitorError
    from monitor.extract.rules import RULE_FILES, load_rules
    from monitor.fetch.edgar_parse import parse_filing_index, parse_latest_filings, parse_submissions
    from monitor.fetch.feeds import parse_feed
    from monitor.fetch.html_text import body_to_text, html_to_text
    from monitor.fetch.links import check_link
    from monitor.score.thesis import load_thesis

FIXTURES = ROOT / "tests" / "fixtures"
URL = "https://ir.acme.com/feed.xml"
# libFuzzer ends the process without Python's clean-up, so a caller that wants the folder gone names it.
SCRATCH = Path(os.environ.get("MONITOR_FUZZ_DIR") or tempfile.mkdtemp(prefix="monitor-fuzz-"))
SCRATCH.mkdir(parents=True, exist_ok=True)
RULES_DIR = SCRATCH / "rules"


def _feed(data: bytes) -> str:
    for item in parse_feed(data, URL).items:
        try:
            check_link(URL, item.link)
        except MonitorError as exc:
            assert str(exc).startswith(f"{item.link}: "), str(exc)
    return URL


def _to_file(name: str, load: Callable[[Path], object]) -> Callable[[bytes], str]:
    def run(data: bytes) -> str:
        path = SCRATCH / name
        path.write_bytes(data)
        load(path)
        return str(path)
    return run


def _rules(data: bytes) -> str:
    """The second byte picks which rules file the rest replaces; the others stay the real ones."""
    name = RULE_FILES[data[0] % len(RULE_FILES)] if data else RULE_FILES[0]
    for other in RULE_FILES:
        (RULES_DIR / other).write_bytes((ROOT / "rules" / other).read_bytes())
    (RULES_DIR / name).write_bytes(data[1:])
    try:
        load_rules(RULES_DIR)
    except MonitorError as exc:
        assert str(exc).startswith(str(RULES_DIR)), str(exc)
        raise
    return str(RULES_DIR)


# name → (run: bytes → the source its errors must name, seed payloads)
TARGETS: list[tuple[str, Callable[[bytes], object], list[bytes]]] = [
    ("parse_feed", _feed, [p.read_bytes() for p in sorted((FIXTURES / "feeds").glob("netnewswire_*"))]),
    ("parse_latest_filings", lambda d: parse_latest_filings(d, URL) and URL,
     [(FIXTURES / "edgar" / "getcurrent_count100_start3500_2025-12-12.atom.xml").read_bytes()]),
    ("parse_submissions", lambda d: parse_submissions(d, URL, "https://www.sec.gov") and URL,
     [(FIXTURES / "edgar" / "CIK0001045810.json").read_bytes()]),
    ("parse_filing_index", lambda d: parse_filing_index(d, URL) and URL,
     [p.read_bytes() for p in sorted((FIXTURES / "edgar").glob("*/*-index.html"))]),
    ("html_to_text", lambda d: html_to_text(d, URL) and URL,
     [(FIXTURES / "edgar" / "0000796343-23-000044" / "adbeex991q123.htm").read_bytes()]),
    ("body_to_text", lambda d: body_to_text(d, "text/plain", URL) and URL,
     [(ROOT / "data" / "samples" / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm").read_bytes()]),
    ("load_config", _to_file("config.toml", load_config), [(ROOT / "config.toml").read_bytes()]),
    ("load_rules", _rules, [bytes([i]) + (ROOT / "rules" / name).read_bytes() for i, name in enumerate(RULE_FILES)]),
    ("load_thesis", _to_file("thesis.toml", load_thesis), [(ROOT / "rules" / "theses" / "mara_ai_pivot.toml").read_bytes()]),
    *HTTP_TARGETS,
]
SOURCES = {"parse_feed": URL, "load_config": str(SCRATCH / "config.toml"), "load_rules": str(RULES_DIR),
           "load_thesis": str(SCRATCH / "thesis.toml"), **{name: SERVER.url for name, _, _ in HTTP_TARGETS}}
COUNTS: dict[str, Counter[str]] = {name: Counter() for name, _, _ in TARGETS}
RUN = Counter[str]()


def one_input(data: bytes) -> None:
    RUN["calls"] += 1
    try:
        checked(data)
    finally:
        if RUN["calls"] == RUN["limit"]:  # libFuzzer exits from C after the last run: report now
            report()


def checked(data: bytes) -> None:
    if not data:
        return
    name, run, _ = TARGETS[data[0] % len(TARGETS)]
    COUNTS[name]["inputs"] += 1
    try:
        run(data[1:])
    except MonitorError as exc:
        COUNTS[name]["errors"] += 1
        source = SOURCES.get(name, URL)
        if not str(exc).startswith(source):
            raise AssertionError(f"{name}: error does not name its source {source}: {exc}") from exc


def report() -> None:
    inputs = sum(c["inputs"] for c in COUNTS.values())
    errors = sum(c["errors"] for c in COUNTS.values())
    print(f"atheris: {inputs} inputs over {len(COUNTS)} targets, {errors} MonitorErrors recorded, 0 crashes",
          flush=True)
    for name, counts in COUNTS.items():
        print(f"  {name}: {counts['inputs']} inputs, {counts['errors']} MonitorErrors", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("MONITOR_FUZZ_RUNS", "3000")))
    parser.add_argument("--max-len", type=int, default=16_384,
                        help="longest input; seeds are cut to it (larger is slower but keeps whole documents)")
    args = parser.parse_args()
    RULES_DIR.mkdir()
    corpus = SCRATCH / "corpus"
    corpus.mkdir()
    for i, (_, _, seeds) in enumerate(TARGETS):
        for j, seed in enumerate(seeds):
            (corpus / f"{i}-{j}").write_bytes(bytes([i]) + seed)
    RUN["limit"] = args.runs
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", "-seed=1", "-timeout=20", "-rss_limit_mb=3072",
                   f"-max_len={args.max_len}", f"-artifact_prefix={SCRATCH}/", "-print_final_stats=1",
                   str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
