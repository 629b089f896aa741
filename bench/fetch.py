"""Fetch-stage figures: requests per poll as watched companies grow, and replay speed.

Run: .venv/bin/python bench/fetch.py

1. Requests per poll for 10, 100 and 1,000 watched companies against a local
   server playing SEC with the real latest-filings page. Discovery must stay
   O(1) in companies: the figure is feed requests per poll (first poll, then a
   steady-state poll that meets its cursor); filing fetches are printed apart,
   since they grow with the filings found, not with the watch list.
2. Documents/second of the offline replay (parse + store of the bundled real
   payloads), as a ratio against a baseline in the same process: reading the
   same files and decoding them, with no parsing or storing.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import store  # noqa: E402
from monitor.fetch import edgar  # noqa: E402
from monitor.fetch.edgar_parse import parse_latest_filings  # noqa: E402
from monitor.fetch.replay import ReplayPlan, load_manifest, replay_samples  # noqa: E402
from monitor.pipeline import build_client  # noqa: E402
from monitor.tickers import parse_company_tickers  # noqa: E402
from tests.conftest import USER_AGENT, make_config  # noqa: E402
from tests.servers import FixtureServer, Reply  # noqa: E402

EDGAR = ROOT / "tests" / "fixtures" / "edgar"
ATOM = EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml"
ADOBE = EDGAR / "0000796343-23-000044"
SAMPLES = ROOT / "data" / "samples"


def watched(n: int) -> dict[int, str]:
    """n companies: every filer on the feed page first, then others from SEC's ticker map."""
    on_feed = list(dict.fromkeys(ref.cik for ref in parse_latest_filings(ATOM.read_bytes(), "bench")))
    others = [cik for cik, _ in parse_company_tickers((ROOT / "data" / "company_tickers.json").read_bytes(),
                                                      "bench").values()]
    ciks = list(dict.fromkeys(on_feed + others))[:n]
    return {cik: f"C{cik}" for cik in ciks}


def requests_per_poll(tmp: Path) -> None:
    print("requests per poll against a local SEC (real latest-filings page, 100 entries)")
    print(f"{'watched':>8} {'feed req (1st poll)':>20} {'feed req (2nd poll)':>20} {'filings fetched':>16} "
          f"{'filing req':>11}")
    baseline = None
    with FixtureServer() as server:
        atom = ATOM.read_bytes().replace(b"https://www.sec.gov", server.url.encode())
        server.route_pattern(r"^/cgi-bin/browse-edgar", lambda m: Reply(200, atom, {"Content-Type": "text/xml"}))
        index = (ADOBE / "0000796343-23-000044-index.html").read_bytes()
        server.route_pattern(r"-index\.html?$", lambda m: Reply(200, index, {"Content-Type": "text/html"}))
        server.route_pattern(r"^/Archives/edgar/data/\d+/\d+/([^/]+\.htm)$",
                             lambda m: Reply.file(ADOBE / m.group(1), "text/html"))
        for n in (10, 100, 1000):
            config = make_config(tmp / str(n), server)
            (tmp / str(n)).mkdir()
            with build_client(config, USER_AGENT) as client:
                db = store.open_db(config.path(config.monitor.db))
                start = len(server.requests)
                first = edgar.poll_latest(client, db, config, watched(n))
                feed_first = sum(1 for s in server.requests[start:] if s.path.startswith("/cgi-bin/"))
                second = edgar.poll_latest(client, db, config, watched(n))
                filings = db.execute("select count(distinct accession) from documents").fetchone()[0]
                db.close()
            filing_requests = first.requests - feed_first
            baseline = baseline or (feed_first + second.requests)
            print(f"{n:>8} {feed_first:>20} {second.requests:>20} {filings:>16} "
                  f"{filing_requests:>11}   discovery ratio vs 10 companies: "
                  f"{(feed_first + second.requests) / baseline:.2f}x")


def replay_speed(tmp: Path) -> None:
    samples = load_manifest(SAMPLES)
    tickers = {s.ticker for s in samples}
    files = [SAMPLES / s.file for s in samples]
    words = sum(len(f.read_text(encoding="utf-8", errors="replace").split()) for f in files)
    rounds = 20

    started = time.perf_counter()
    for _ in range(rounds):
        for f in files:
            f.read_bytes().decode("utf-8", errors="replace")
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    for i in range(rounds):
        db = store.open_db(tmp / f"replay{i}.db")
        replay_samples(db, ReplayPlan(SAMPLES, tickers))
        db.close()
    replay = time.perf_counter() - started

    db = store.open_db(tmp / "replay0.db")
    started = time.perf_counter()
    again = replay_samples(db, ReplayPlan(SAMPLES, tickers))
    rerun = time.perf_counter() - started
    db.close()

    docs = len(files) * rounds
    print(f"\noffline replay: {len(files)} bundled payloads ({words} words), {rounds} rounds into fresh stores")
    print(f"  baseline (read + decode only): {docs / baseline:10.0f} docs/s")
    print(f"  replay (parse + dedupe + store): {docs / replay:8.0f} docs/s   "
          f"{words * rounds / replay:,.0f} words/s   ratio to baseline: {baseline / replay:.3f}")
    print(f"  re-run on a full store: {rerun * 1000:.1f} ms, {again.documents_added} added")


def main() -> None:
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        requests_per_poll(Path(tmp))
        replay_speed(Path(tmp))


if __name__ == "__main__":
    main()
