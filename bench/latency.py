"""Latency from SEC acceptance to stored document and to the score pass that can alert on it.

Run: .venv/bin/python bench/latency.py [--edgar-seconds S] [--extract-seconds S] [--phases N]

What is replayed: the real latest-filings page (tests/fixtures/edgar, 100 entries
accepted 06:05-07:59 ET on 2025-12-12, inside SEC's filing hours), each entry at
its real acceptance time (the feed's ``updated``). Every 8-K filer on the page is
watched; every filing's index and primary document are SEC's real NVIDIA 8-K
(the only whole 8-K bundled), served by a local server playing SEC.

What is simulated: the clock. Polls happen every ``[schedule] edgar_poll_minutes``
and the extract and score jobs every ``extract_minutes``, as the daemon's
interval triggers fire them (extract and score start together, so a score pass
sees what an extract pass finished before it started). At each poll the server
shows the page as it stood then (the entries accepted so far), and the real
``job_edgar_latest``, ``job_extract`` and ``job_score`` run against it and the
store; their wall time is added to the simulated clock. A poll whose page did not
change is counted as the one request it costs (it meets its cursor on the first
entry) without being made, and a stage tick with nothing to do is skipped. The daemon's first tick falls anywhere relative to
filings, so the run is repeated for ``--phases`` evenly spread offsets.

Printed: acceptance -> stored and acceptance -> score pass done (an alert the pass
raises is queued in the outbox in the same transaction) at p50 and p95 against
the 60 s target, and requests per minute to SEC (mean and peak minute; every
redirect hop counts) against SEC's ceiling of 10 requests/second.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import lxml.etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor import store  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.fetch.edgar_parse import parse_latest_filings  # noqa: E402
from monitor.pipeline import Runtime, build_client, job_edgar_latest, job_extract, job_score  # noqa: E402
from monitor.tickers import WatchedCompany  # noqa: E402
from tests.conftest import USER_AGENT, make_config  # noqa: E402
from tests.servers import FixtureServer, Reply  # noqa: E402

EDGAR = ROOT / "tests" / "fixtures" / "edgar"
ATOM = EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml"
FILING = EDGAR / "0001045810-26-000024"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
TARGET_SECONDS = 60.0
SEC_CEILING_PER_MINUTE = 10 * 60


@dataclass
class Replay:
    """One replay's measurements: seconds after acceptance per filing, requests per simulated minute."""

    stored: list[float] = field(default_factory=list)
    scored: list[float] = field(default_factory=list)
    requests_by_minute: dict[int, int] = field(default_factory=dict)
    minutes: float = 0.0  # the replayed span, polls included, to turn requests into a mean rate


class LivePage:
    """The real latest-filings page as it stood at a moment: the entries accepted by then, newest first."""

    def __init__(self, data: bytes, base_url: str) -> None:
        self.data = data.replace(b"https://www.sec.gov", base_url.encode())
        self.body = self.data

    def at(self, moment: float) -> int:
        """Show the page at ``moment`` (epoch seconds); return how many entries it holds."""
        root = lxml.etree.fromstring(self.data)
        entries = root.findall(f"{ATOM_NS}entry")
        for entry in entries:
            if _epoch(entry.findtext(f"{ATOM_NS}updated") or "") > moment:
                root.remove(entry)
        self.body = lxml.etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1")
        return len(root.findall(f"{ATOM_NS}entry"))


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def serve_sec(server: FixtureServer, page: LivePage) -> None:
    index = (FILING / f"{FILING.name}-index.html").read_bytes()
    server.route_pattern(r"^/cgi-bin/browse-edgar", lambda m: Reply(200, page.body, {"Content-Type": "application/atom+xml"}))
    server.route_pattern(r"-index\.html?$", lambda m: Reply(200, index, {"Content-Type": "text/html"}))
    server.route_pattern(r"^/Archives/edgar/data/\d+/\d+/([^/]+\.htm)$",
                         lambda m: Reply.file(FILING / m.group(1), "text/html"))


def replay(edgar_every: float, stage_every: float, phase: float, workdir: Path) -> Replay:
    """One simulated morning: polls, extract and score passes on their intervals from ``phase``."""
    refs = parse_latest_filings(ATOM.read_bytes(), str(ATOM))
    accepted = {r.accession: _epoch(r.updated) for r in refs if r.form == "8-K"}
    companies = [WatchedCompany(f"C{cik}", cik, name, ()) for cik, name in
                 sorted({(r.cik, r.company) for r in refs if r.form == "8-K"})]
    start = min(_epoch(r.updated) for r in refs) - edgar_every + phase
    end = max(accepted.values()) + 3 * (edgar_every + stage_every)
    result = Replay(minutes=(end - start) / 60)
    with FixtureServer() as server:
        page = LivePage(ATOM.read_bytes(), server.url)
        serve_sec(server, page)
        config = make_config(workdir, server, sec={"forms": ["8-K"]},
                             monitor={"theses_dir": str(ROOT / "rules" / "theses")})
        rt = Runtime(config, config.path(config.monitor.db), companies, offline=False,
                     client=build_client(config, USER_AGENT))
        try:
            stored_at: dict[str, float] = {}
            extracted_at: dict[str, float] = {}
            reported: set[str] = set()
            shown = -1
            next_poll, next_stage = start, start
            while next_poll < end or next_stage < end:
                if next_poll <= next_stage:
                    now = next_poll
                    visible = page.at(now)
                    minute = int(now // 60)
                    if visible == shown:  # a poll of an unchanged page: one request, nothing new
                        result.requests_by_minute[minute] = result.requests_by_minute.get(minute, 0) + 1
                    else:
                        shown = visible
                        began = time.perf_counter()
                        polls = job_edgar_latest(rt)
                        done = now + time.perf_counter() - began
                        result.requests_by_minute[minute] = (result.requests_by_minute.get(minute, 0)
                                                             + sum(p.requests for p in polls))
                        for accession in _stored(rt) - stored_at.keys():
                            stored_at[accession] = done
                    next_poll += edgar_every
                else:
                    now = next_stage
                    ready = {a for a, t in extracted_at.items() if t <= now} - reported  # extracted before this tick
                    pending = {a for a, t in stored_at.items() if t <= now} - extracted_at.keys()
                    if ready:
                        began = time.perf_counter()
                        job_score(rt)  # starts with extract on the same tick: sees what was extracted before
                        scored = now + time.perf_counter() - began
                        reported |= ready
                        result.scored += [scored - accepted[a] for a in ready]
                    if pending:
                        began = time.perf_counter()
                        job_extract(rt)
                        extracted_at.update(dict.fromkeys(pending, now + time.perf_counter() - began))
                    next_stage += stage_every
            result.stored = [stored_at[a] - accepted[a] for a in stored_at]
        finally:
            rt.close()
    return result


def _stored(rt: Runtime) -> set[str]:
    db = store.open_db(rt.db_path)
    try:
        return {row[0] for row in db.execute("select distinct accession from documents where accession != ''")}
    finally:
        db.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: an observed value, so p95 of a small sample is not interpolated down."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> None:
    schedule = load_config(ROOT / "config.toml").schedule
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edgar-seconds", type=float, default=schedule.edgar_poll_minutes * 60,
                        help="poll interval of the latest-filings feed (default: config.toml [schedule])")
    parser.add_argument("--extract-seconds", type=float, default=schedule.extract_minutes * 60,
                        help="interval of the extract and score jobs (default: config.toml [schedule])")
    parser.add_argument("--phases", type=int, default=4, help="replays, with the first poll spread over an interval")
    args = parser.parse_args()

    runs = []
    for i in range(args.phases):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(replay(args.edgar_seconds, args.extract_seconds, i * args.edgar_seconds / args.phases,
                               Path(tmp)))
    stored = [v for r in runs for v in r.stored]
    scored = [v for r in runs for v in r.scored]
    peak = max(n for r in runs for n in r.requests_by_minute.values())
    mean = sum(sum(r.requests_by_minute.values()) for r in runs) / sum(r.minutes for r in runs)
    print(f"schedule: edgar poll every {args.edgar_seconds:g} s, extract and score every {args.extract_seconds:g} s; "
          f"{args.phases} replays of {len(runs[0].stored)} real 8-K acceptances (06:05-07:59 ET, 2025-12-12)")
    for name, values in (("acceptance -> stored", stored), ("acceptance -> score pass (alert queued)", scored)):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        print(f"{name:<42} p50 {p50:6.1f} s   p95 {p95:6.1f} s   p95/target {p95 / TARGET_SECONDS:.2f} "
              f"(target {TARGET_SECONDS:g} s; n={len(values)})")
    print(f"requests to SEC per minute: mean {mean:.1f}, peak {peak}; peak/ceiling {peak / SEC_CEILING_PER_MINUTE:.3f} "
          f"(ceiling {SEC_CEILING_PER_MINUTE}/min = 10/s, redirect hops included)")


if __name__ == "__main__":
    main()
