"""A world that moves forward in steps, served on 127.0.0.1, for the whole-pipeline crash harness.

The world is the bundled real documents and market files, revealed the way time reveals them:
each step publishes either one press release (on its company's RSS feed, linking to the release
page) or the market observations up to the next release's day, or, first of all, EDGAR's real
latest-filings page. Because a step never publishes data dated before what an earlier step
published, a pipeline that keeps up step by step knows, at every event it scores, exactly what a
pipeline that never crashed knew, so the two stores can be compared row by row.

Servers: ``sec`` plays www.sec.gov and data.sec.gov (latest-filings Atom, a filing index and its
documents, company_tickers.json, submissions JSON), ``wire`` plays the newswire (one RSS feed per
company, release pages, and the market data files). Payload provenance:

* releases: data/samples/wire/releases (see its SOURCES.md), served without their provenance lines;
* latest-filings Atom, SEC's 503 past the feed's end, the Adobe filing (answering for the Merus
  accession the Atom lists) and NVIDIA's submissions JSON: tests/fixtures/edgar (SOURCES.md there);
  every other company's submissions JSON is NVIDIA's with its ``cik`` field set to that company's,
  so reconciliation runs for each watched company and finds nothing inside its window;
* company_tickers.json: data/company_tickers.json (SEC's file);
* market: data/samples/market (SOURCES.md there), CoinGecko BTC and the monthly high-yield spread.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from monitor.documents import strip_provenance
from tests.conftest import FIXTURES, ROOT, SAMPLES
from tests.feeds_wrap import Item, wrap_in_rss
from tests.servers import FixtureServer, Reply

RELEASES = SAMPLES / "wire" / "releases"
MARKET = SAMPLES / "market"
EDGAR = FIXTURES / "edgar"
ADOBE = EDGAR / "0000796343-23-000044"
BTC_FILE = MARKET / "BTC-USD_coingecko_daily_2024-01-01_2025-09-11.csv"
HY_FILE = MARKET / "HY_OAS_BAMLH0A0HYM2_monthly_ohlc_2019-01_2026-05.csv"
THESIS_COMPANIES = ["MARA", "CORZ", "IREN", "WULF", "CIFR", "HUT", "RIOT", "CLSK", "APLD"]
EDGAR_COMPANY = "MRUS"  # the latest-filings page lists its 8-K


@dataclass(frozen=True)
class Release:
    ticker: str
    day: date
    name: str


@dataclass(frozen=True)
class Step:
    """What one step publishes: ``edgar``, a ``market`` horizon (observations before it), or a release."""

    kind: str
    release: Release | None = None
    horizon: date | None = None

    def __str__(self) -> str:
        if self.release:
            return f"release {self.release.name}"
        return f"market before {self.horizon}" if self.kind == "market" else self.kind


def releases() -> list[Release]:
    found = []
    for path in RELEASES.glob("*.txt"):
        ticker, day, _ = path.name.split("_", 2)
        found.append(Release(ticker, date.fromisoformat(day), path.name))
    return sorted(found, key=lambda r: (r.day, r.name))


def _market_rows(path: Path, before: date, month_end: bool) -> list[str]:
    """The file's rows dated before ``before`` (a monthly row counts from its month's last day)."""
    header, *rows = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for row in rows:
        day = date.fromisoformat(row[:10])
        if month_end:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if day < before:
            kept.append(row)
    return [header, *kept]


def steps() -> list[Step]:
    """EDGAR first, then per release: the market up to its day (when that adds rows), the release."""
    plan = [Step("edgar")]
    published = 0
    for release in releases():
        count = sum(len(_market_rows(p, release.day, p == HY_FILE)) for p in (BTC_FILE, HY_FILE))
        if count > published:
            plan.append(Step("market", horizon=release.day))
            published = count
        plan.append(Step("release", release=release))
    plan.append(Step("market", horizon=date.max))
    return plan


class World:
    """The servers and what they publish after ``advance(n)`` has revealed the first n steps."""

    def __init__(self, sec: FixtureServer, wire: FixtureServer) -> None:
        self.sec, self.wire = sec, wire
        self.plan = steps()
        self.revealed = 0
        self._serve_sec()
        self._serve_wire()

    def advance(self, count: int) -> list[Step]:
        """Reveal steps up to ``count``; returns the newly revealed ones."""
        new = self.plan[self.revealed:count]
        self.revealed = max(self.revealed, count)
        return new

    def reset(self) -> None:
        self.revealed = 0

    def _shown(self) -> list[Step]:
        return self.plan[: self.revealed]

    def _horizon(self) -> date | None:
        return max((s.horizon for s in self._shown() if s.kind == "market"), default=None)

    # --- SEC ---------------------------------------------------------------------------------

    def _serve_sec(self) -> None:
        atom = (EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml").read_bytes()
        atom = atom.replace(b"https://www.sec.gov", self.sec.url.encode())
        end = (EDGAR / "getcurrent_count100_start5100_503.html").read_bytes()
        submissions = (EDGAR / "CIK0001045810.json").read_bytes()
        index = (ADOBE / "0000796343-23-000044-index.html").read_bytes()

        def feed_page(match: re.Match[str]) -> Reply:
            edgar_shown = any(s.kind == "edgar" for s in self._shown())
            if edgar_shown and int(match.group(1)) < 100:
                return Reply(200, atom, {"Content-Type": "application/atom+xml"})
            return Reply(503, end, {"Content-Type": "text/html"})

        def company_submissions(match: re.Match[str]) -> Reply:
            body = submissions
            if int(match.group(1)) != 1045810:
                payload = json.loads(submissions)
                payload["cik"] = str(int(match.group(1)))
                body = json.dumps(payload).encode()
            return Reply(200, body, {"Content-Type": "application/json"})

        self.sec.route_pattern(r"^/cgi-bin/browse-edgar\?.*start=(\d+)", feed_page)
        self.sec.route_pattern(r"-index\.html?$", lambda m: Reply(200, index, {"Content-Type": "text/html"}))
        self.sec.route_pattern(r"^/Archives/edgar/data/\d+/\d+/([^/]+\.htm)$",
                               lambda m: Reply.file(ADOBE / m.group(1), "text/html", delay=0.1))
        self.sec.route_pattern(r"^/submissions/CIK(\d+)\.json$", company_submissions)
        self.sec.route("/files/company_tickers.json",
                       Reply.file(ROOT / "data" / "company_tickers.json", "application/json"))

    # --- newswire and market ---------------------------------------------------------------

    def feed_url(self, ticker: str) -> str:
        return f"{self.wire.url}/feeds/{ticker}.rss"

    def _serve_wire(self) -> None:
        def feed(match: re.Match[str]) -> Reply:
            shown = [s.release for s in self._shown() if s.release and s.release.ticker == match.group(1)]
            items = [
                Item(release.name[len(release.ticker) + 12:-4].replace("-", " "),
                     f"{self.wire.url}/releases/{release.name}", release.ticker, guid=release.name,
                     pub_date=format_datetime(datetime.combine(release.day, datetime.min.time(), timezone.utc)))
                for release in reversed(shown)  # newest first, as feeds list them
            ]
            return Reply(200, wrap_in_rss(items), {"Content-Type": "application/rss+xml"})

        def release(match: re.Match[str]) -> Reply:
            body = strip_provenance((RELEASES / match.group(1)).read_bytes())
            return Reply(200, body, {"Content-Type": "text/plain; charset=utf-8"}, delay=0.1)

        def market(path: Path, month_end: bool) -> Reply:
            horizon = self._horizon() or date.min
            rows = _market_rows(path, horizon, month_end)
            return Reply(200, ("\n".join(rows) + "\n").encode(), {"Content-Type": "text/csv"})

        self.wire.route_pattern(r"^/feeds/([A-Z]+)\.rss$", feed)
        self.wire.route_pattern(r"^/releases/([^/]+\.txt)$", release)
        self.wire.route_pattern(r"^/market/btc\.csv$", lambda m: market(BTC_FILE, False))
        self.wire.route_pattern(r"^/market/hy\.csv$", lambda m: market(HY_FILE, True))

    def config_toml(self, db: Path, smtp_host: str, smtp_port: int) -> str:
        """A config watching the thesis companies (feeds on ``wire``) and the EDGAR company, fast schedules."""
        companies = "".join(
            f'\n[[companies]]\nticker = "{t}"\nfeeds = ["{self.feed_url(t)}"]\n' for t in THESIS_COMPANIES
        ) + f'\n[[companies]]\nticker = "{EDGAR_COMPANY}"\n'
        return f'''
[monitor]
db = "{db}"
network = "online"
rules_dir = "{ROOT / 'rules'}"
model_path = "{ROOT / 'models' / 'reader.joblib'}"
theses_dir = "{ROOT / 'rules' / 'theses'}"

[sec]
user_agent = "Catalyst Monitor Crash Harness tests@example.com"
tickers_file = "{ROOT / 'data' / 'company_tickers.json'}"
www_url = "{self.sec.url}"
data_url = "{self.sec.url}"
hosts = ["{self.sec.netloc}"]
forms = ["8-K", "8-K/A"]

[http]
connect_timeout = 2.0
read_timeout = 5.0
total_timeout = 10.0
backoff_base_seconds = 0.05
backoff_max_seconds = 1.0
other_hosts_per_second = 100.0
allow_private_addresses = ["127.0.0.1"]  # the world's servers; releases are linked from its feeds

[schedule]
edgar_poll_minutes = 0.02
feeds_poll_minutes = 0.02
reconcile_hours = 0.001
tickers_refresh_hours = 0.001
extract_minutes = 0.01
market_hours = 0.0005

[market]
price_url_template = ""
price_symbols = []

[[market.sources]]
series = "btc_usd"
url = "{self.wire.url}/market/btc.csv"
format = "coingecko_csv"

[[market.sources]]
series = "hy_oas"
url = "{self.wire.url}/market/hy.csv"
format = "monthly_ohlc_csv"

[notify]
channels = ["slack", "email"]
push_history = true            # the world replays old documents: their alerts must still be delivered
batch_window_minutes = 0
deliver_seconds = 0.5
retry_base_seconds = 0.5

[notify.email]
host = "{smtp_host}"
port = {smtp_port}
security = "none"
sender = "monitor@example.com"
recipients = ["desk@example.com"]
timeout_seconds = 5
''' + companies
