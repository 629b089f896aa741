"""The weekly digest: per thesis and company, the scorecard now vs a week ago and why.

``build_digest`` reads the store and returns plain frozen dataclasses; nothing
is rendered there, so the same ``Digest`` feeds the HTML page, the text
version, the charts and the e-mail message:

* the scorecard at the end of the week and seven days earlier
  (``monitor.score.engine.compute`` on ``load_inputs``), with the cash-flow
  backing and every pillar's delta;
* what moved it: the disclosures published in the week, binding or soft, each
  with its sentence, source URL, date, type, direction and the points it adds
  to which pillar now; the documents of the week that gave no disclosure;
* the alerts raised in the week (``alerts`` rows whose ``as_of`` is in it);
* open risks: the risk pillars (BTC drawdown, financing cost, mining
  economics, AI mix) with their value and the largest contribution's
  explanation;
* pending items: soft announcements that count as optionality, published in
  the thesis' ``lapse_days`` (180 in the seed thesis) before the week's end and
  not yet confirmed by a binding disclosure of the same type (and counterparty,
  when the announcement named one) – the rule ``engine.lapsed`` applies;
* the market backdrop (the series the thesis reads: BTC, the HY spread) and,
  per company, the data of its chart: scorecard history (the ``scorecards``
  table, or weekly recomputation when the store was never scored) against the
  share price (``px:TICKER``, else BTC), with the alerts as markers.

``render_digest`` writes ``digest-YYYY-Www.html`` and ``.txt`` and one PNG per
company beside them (the HTML names the PNGs by relative file name), and
``digest_message`` packs the same for a channel: ``text`` is the text version,
the PNGs are image attachments with content ids, and the HTML version with
``cid:`` image references travels as a ``text/html`` attachment named
``digest.html`` (``digest_html(message)`` returns it), which the e-mail channel
should use as the message's HTML alternative.

Every string that came from a filing, a feed or a rule is untrusted: the HTML
template autoescapes everything and links only http(s) URLs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
import sqlite_utils

from monitor import store
from monitor.config import MarketLensSettings
from monitor.ledger.build import Ledger
from monitor.ledger.units import money, units_text
from monitor.notify.message import Attachment, Message
from monitor.notify.templating import environment
from monitor.score.deal_alerts import deal_headline, deal_name
from monitor.score.engine import Evidence, Scorecard, Series, compute
from monitor.score.stage import list_alerts, load_inputs, scorecard_history
from monitor.score.thesis import Thesis

CONTENT_ID_DOMAIN = "catalyst-monitor"
HTML_ATTACHMENT = "digest.html"
CHART_DAYS = 365
MATERIAL_MOVE = 1.0  # backing points
_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
SERIES_LABELS = {"btc_usd": "BTC (USD)", "hy_oas": "US high-yield OAS (%)", "ust_10y": "10-year Treasury (%)"}


# --- weeks --------------------------------------------------------------------------------------


def iso_week_bounds(week: str) -> tuple[date, date]:
    """``"2025-W35"`` → (Monday 2025-08-25, Sunday 2025-08-31); a clear ValueError for anything else."""
    match = _WEEK.fullmatch(str(week).strip())
    if not match:
        raise ValueError(f"{week!r} is not an ISO week: expected YYYY-Www, e.g. 2025-W35")
    year, number = int(match.group(1)), int(match.group(2))
    weeks = date(year, 12, 28).isocalendar().week if 1 <= year <= 9999 else 0
    if not 1 <= number <= weeks:
        raise ValueError(f"{week!r} is not an ISO week: {year} has weeks W01 to W{weeks:02d}")
    monday = date.fromisocalendar(year, number, 1)
    return monday, monday + timedelta(days=6)


def week_label(day: date) -> str:
    """The ISO week a day belongs to, as ``YYYY-Www``."""
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def default_week_end(today: date) -> date:
    """The last completed Sunday: yesterday on a Monday, a week before today on a Sunday."""
    return today - timedelta(days=today.weekday() + 1)


# --- what the digest holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class PillarDelta:
    id: str
    name: str
    kind: str  # backing | optionality | risk
    before: float
    after: float

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 1)


@dataclass(frozen=True)
class Moved:
    """A disclosure published in the week: what it says, where, and what it adds now."""

    disclosure_id: int
    day: date
    type: str
    commitment: str  # binding | soft
    direction: str
    sentence: str
    url: str
    counterparty: str | None
    mw: float | None
    usd: float | None
    pillars: tuple[str, ...]  # names of the pillars it counts in
    points: float  # points it adds to them at the week's end (negative: it lowers them)
    deal: str = ""  # the ledger deal it was read into ("lease with Fluidstack at Barber Lake"), if any


@dataclass(frozen=True)
class Citation:
    sentence: str
    url: str
    day: str


@dataclass(frozen=True)
class AlertItem:
    as_of: str
    severity: str
    direction: str
    title: str
    reasons: tuple[str, ...]
    evidence: tuple[Citation, ...]


@dataclass(frozen=True)
class Risk:
    pillar: str
    name: str
    value: float
    before: float
    elevated: bool  # at or above the pillar's first alert threshold (50 when it has none)
    why: str  # the largest contribution's explanation
    derived: bool = False  # the inverse of another pillar (e.g. "AI mix too small" = 100 - contracted compute)
    sentence: str = ""
    url: str = ""
    day: str = ""

    @property
    def delta(self) -> float:
        return round(self.value - self.before, 1)


@dataclass(frozen=True)
class Pending:
    """A proposal of the ledger (optionality) not yet confirmed by a binding disclosure (Ledger.pending)."""

    deal: str  # the deal's key in the ledger
    day: date
    type: str
    direction: str
    sentence: str
    url: str
    counterparty: str | None
    mw: float | None
    usd: float | None
    age_days: int
    lapses_on: date


@dataclass(frozen=True)
class QuietDocument:
    """A document of the week from which no disclosure was extracted."""

    day: str
    form: str
    title: str
    url: str


@dataclass(frozen=True)
class ChartData:
    history: tuple[tuple[date, float, float | None], ...]  # (day, backing, lead backing pillar)
    lead_pillar: str  # the name of that pillar (the backing pillar with the largest weight)
    prices: tuple[tuple[date, float], ...]
    price_label: str
    alerts: tuple[tuple[date, str, str], ...]  # (day, direction, severity)
    start: date
    end: date


@dataclass(frozen=True)
class DealChange:
    """What a document of the week did to a deal of the ledger, with the deal's numbers after it."""

    day: date
    event: str  # signed | confirmed | expanded | amended | under_construction | delivered | delayed | terminated …
    headline: str  # deal_headline: kind, party, site, event, MW, value, term, derived annual revenue
    negative: bool
    sentence: str
    url: str


@dataclass(frozen=True)
class CompanyDigest:
    thesis: str
    ticker: str
    has_data: bool  # any disclosure up to the week's end
    backing: float
    backing_before: float
    pillars: tuple[PillarDelta, ...]
    moved: tuple[Moved, ...]
    documents: tuple[QuietDocument, ...]
    alerts: tuple[AlertItem, ...]
    risks: tuple[Risk, ...]
    pending: tuple[Pending, ...]
    chart: ChartData | None
    market_view: str = ""  # BTC beta and idiosyncratic share now vs a week ago (informational)
    deal_changes: tuple[DealChange, ...] = ()  # the week's ledger changes: what the card leads with
    units: str = ""  # the ledger in units at the week's end (units_text)

    @property
    def backing_delta(self) -> float:
        return round(self.backing - self.backing_before, 1)

    @property
    def active(self) -> bool:
        """Something happened to it this week: a disclosure, a document, an alert, or a backing move of at
        least MATERIAL_MOVE points (evidence decay alone moves it by a tenth of a point or so a week)."""
        return bool(self.moved or self.documents or self.alerts or self.deal_changes
                    or abs(self.backing_delta) >= MATERIAL_MOVE)

    @property
    def key(self) -> str:
        return f"{self.thesis}|{self.ticker}"

    @property
    def top_risk(self) -> Risk | None:
        """The highest risk read from its own evidence or market data (derived pillars left out)."""
        own = [r for r in self.risks if not r.derived]
        return max(own, key=lambda r: r.value) if own else None


@dataclass(frozen=True)
class ThesisDigest:
    id: str
    name: str
    statement: str
    companies: tuple[CompanyDigest, ...]  # active first, then quiet ones with data (thesis order within each)
    without_data: tuple[str, ...]  # tickers with no disclosure stored up to the week's end


@dataclass(frozen=True)
class MarketLine:
    series: str
    label: str
    value: float
    day: date
    before: float | None
    before_day: date | None
    stale: bool  # the last observation is older than a week and than 1.5 times the series' usual spacing

    @property
    def change_pct(self) -> float | None:
        """None when there is nothing to compare: no value a week before, or no new value since (stale)."""
        if self.stale or self.before in (None, 0):
            return None
        return round((self.value - self.before) / abs(self.before) * 100, 1)


@dataclass(frozen=True)
class Digest:
    week: str  # YYYY-Www
    start: date  # Monday
    end: date  # Sunday
    generated_at: str
    market: tuple[MarketLine, ...]
    theses: tuple[ThesisDigest, ...]

    @property
    def subject(self) -> str:
        return f"Weekly thesis digest {self.week}"

    @property
    def week_ago(self) -> date:
        """The day the "a week ago" scorecards stand at (the Sunday before the week)."""
        return self.end - timedelta(days=7)

    def companies(self) -> Iterable[CompanyDigest]:
        for thesis in self.theses:
            yield from thesis.companies


@dataclass(frozen=True)
class DigestFiles:
    html_path: Path
    text_path: Path
    chart_paths: tuple[Path, ...]


# --- building -----------------------------------------------------------------------------------


def build_digest(db: sqlite_utils.Database, theses: Sequence[Thesis], week_end: date,
                 chart_days: int = CHART_DAYS, market_lens: MarketLensSettings | None = None) -> Digest:
    """The digest of the week ending ``week_end`` (a Sunday; any day works as the last of seven); the market
    view reads ``market_lens`` (the config's [market_lens]: factor, windows)."""
    start = week_end - timedelta(days=6)
    theses_out = []
    series_read: list[str] = []
    for thesis in theses:
        cards = []
        for ticker in thesis.companies:
            cards.append(_company(db, thesis, ticker, start, week_end, chart_days, market_lens))
        with_data = [c for c in cards if c.has_data]
        ordered = [c for c in with_data if c.active] + [c for c in with_data if not c.active]
        theses_out.append(ThesisDigest(thesis.id, thesis.name, " ".join(thesis.statement.split()), tuple(ordered),
                                       tuple(c.ticker for c in cards if not c.has_data)))
        for pillar in thesis.pillars:
            series_read += [term.series for term in pillar.market if term.series not in series_read]
    return Digest(week_label(week_end), start, week_end, datetime.now(UTC).isoformat(timespec="seconds"),
                  tuple(line for s in series_read if (line := _market_line(db, s, week_end))), tuple(theses_out))


def _company(db: sqlite_utils.Database, thesis: Thesis, ticker: str, start: date, end: date,
             chart_days: int, market_lens: MarketLensSettings | None = None) -> CompanyDigest:
    evidence, market, ledger = load_inputs(db, thesis, ticker)
    now = compute(thesis, ticker, end, evidence, market, ledger=ledger)
    before = compute(thesis, ticker, end - timedelta(days=7), evidence, market, ledger=ledger)
    known = [e for e in evidence if e.day <= end]
    pillars = tuple(PillarDelta(p.id, p.name, p.kind, before.pillars[p.id].value, p.value)
                    for p in now.pillars.values())
    has_data = bool(known)
    alerts = [a for a in list_alerts(db, ticker) if a["thesis"] == thesis.id]
    return CompanyDigest(
        thesis=thesis.id, ticker=ticker, has_data=has_data, backing=now.backing, backing_before=before.backing,
        pillars=pillars,
        moved=_moved(now, [e for e in known if e.day >= start], ledger),
        documents=_quiet_documents(db, ticker, start, end),
        alerts=tuple(_alert_item(a) for a in alerts if start.isoformat() <= a["as_of"][:10] <= end.isoformat()),
        risks=_risks(thesis, now, before),
        pending=_pending(thesis, ledger, end),
        deal_changes=_deal_changes(ledger, start, end),
        units=units_text(now.quantities) if now.quantities else "",
        chart=_chart_data(db, thesis, ticker, evidence, market, now, alerts, end, chart_days, ledger) if has_data else None,
        market_view=_market_view_line(db, ticker, end, market_lens),
    )


def _market_view_line(db: sqlite_utils.Database, ticker: str, end: date, settings: MarketLensSettings | None) -> str:
    """The re-rating signal in one line: 60-day BTC beta and the share of variance that is not BTC."""
    from monitor.errors import NoData
    from monitor.market.view import market_view

    try:
        now = market_view(db, ticker, as_of=end, settings=settings)
        before = market_view(db, ticker, as_of=end - timedelta(days=7), settings=settings)
    except NoData as exc:
        return f"market view: {exc}"
    return (f"market view ({now['factor']}, {now['window']} days): beta {before['beta']:.2f} -> {now['beta']:.2f}, "
            f"not BTC {before['value']:.0f}% -> {now['value']:.0f}% of daily variance (informational)")


def _moved(now: Scorecard, fresh: list[Evidence], ledger: Ledger) -> tuple[Moved, ...]:
    """The week's disclosures with what each adds now. One that moves no pillar by itself may still have
    been read into a deal of the ledger (an increment, a restated term): it says which, because the
    units above count it there, and "counts in nothing" would be untrue."""
    in_deals = {(cite.get("sentence", ""), cite.get("url", "")): deal_name(event.deal)
                for event in ledger.events for cite in event.cites}
    found = []
    for item in fresh:
        names, points = [], 0.0
        for pillar in now.pillars.values():
            mine = [c.points for c in pillar.contributions
                    if c.disclosure_id == item.id or (c.disclosure_id is None and c.sentence == item.sentence
                                                      and c.url == item.url)]
            if mine:
                names.append(pillar.name)
                points += sum(mine)
        found.append(Moved(item.id, item.day, item.type, item.commitment, item.direction, item.sentence, item.url,
                           item.counterparty, item.mw, item.usd, tuple(names), round(points, 2),
                           in_deals.get((item.sentence, item.url), "")))
    # Scored items first, the largest effect first; then the rest in text order.
    return tuple(sorted(found, key=lambda m: (not m.pillars, not m.deal, -abs(m.points), m.day)))


def _quiet_documents(db: sqlite_utils.Database, ticker: str, start: date, end: date) -> tuple[QuietDocument, ...]:
    rows = db.execute(
        "select published_at, form, title, url from documents d where ticker = ? and substr(published_at, 1, 10) "
        "between ? and ? and not exists (select 1 from disclosures s where s.document_id = d.id) "
        "order by published_at, id", [ticker.upper(), start.isoformat(), end.isoformat()]).fetchall()
    return tuple(QuietDocument(str(r[0] or "")[:10], r[1] or "", r[2] or "", r[3] or "") for r in rows)


def _alert_item(row: Mapping[str, Any]) -> AlertItem:
    title = str(row["title"])
    prefix = f"{row['ticker']} · "
    return AlertItem(
        as_of=str(row["as_of"])[:10], severity=str(row["severity"]), direction=str(row["direction"]),
        title=title[len(prefix):] if title.startswith(prefix) else title,
        reasons=tuple(str(r) for r in row.get("reasons") or ()),
        evidence=tuple(Citation(str(e.get("sentence", "")), str(e.get("url", "")),
                                "" if str(e.get("date", "")).startswith("0001-") else str(e.get("date", "")))
                       for e in row.get("evidence") or ()),
    )


def _risks(thesis: Thesis, now: Scorecard, before: Scorecard) -> tuple[Risk, ...]:
    risks = []
    for pillar in thesis.pillars:
        if pillar.kind != "risk":
            continue
        score = now.pillars[pillar.id]
        top = next((c for c in score.contributions if c.points), score.contributions[0] if score.contributions else None)
        thresholds = sorted(pillar.alert_thresholds)
        elevated = score.value >= (thresholds[0] if thresholds else 50.0)
        risks.append(Risk(pillar.id, pillar.name, score.value, before.pillars[pillar.id].value, elevated,
                          top.why if top else "no evidence yet", bool(pillar.inverse_of), top.sentence if top else "",
                          top.url if top and top.sentence else "", top.day if top else ""))
    return tuple(sorted(risks, key=lambda r: (not r.elevated, -r.value)))


def _deal_changes(ledger: Ledger, start: date, end: date) -> tuple[DealChange, ...]:
    """The ledger events of the week, restatements left out (a known deal repeated changes nothing)."""
    found = []
    for event in ledger.events:
        if start <= event.day <= end and event.event != "restated":
            cite = event.cites[0] if event.cites else {}
            found.append(DealChange(event.day, event.event, deal_headline(event),
                                    event.event in ("delayed", "terminated"), cite.get("sentence", ""),
                                    cite.get("url", "")))
    return tuple(found)


_TYPE_OF_FAMILY = {"compute": "contracted_compute", "power": "power", "partnership": "partnership"}


def _pending(thesis: Thesis, ledger: Ledger, end: date) -> tuple[Pending, ...]:
    """The ledger's pending proposals on ``end`` (Ledger.pending: the one rule), each with its first sentence."""
    window = thesis.alerts.lapse_days
    found = []
    for deal in ledger.pending(end, window):
        cite = deal.cited("proposal") or {}
        first = deal.first_day or end
        found.append(Pending(deal.key, first, _TYPE_OF_FAMILY[deal.family], "positive", cite.get("sentence", ""),
                             cite.get("url", ""), deal.counterparty, deal.mw, deal.usd, (end - first).days,
                             (deal.last_day or first) + timedelta(days=window)))
    return tuple(sorted(found, key=lambda p: (-p.day.toordinal(), p.deal)))


def _chart_data(db: sqlite_utils.Database, thesis: Thesis, ticker: str, evidence: list[Evidence], market: Series,
                now: Scorecard, alerts: list[dict[str, Any]], end: date, days: int, ledger: Ledger) -> ChartData:
    start = end - timedelta(days=days)
    weights = {p.id: p.weight for p in thesis.pillars if p.kind == "backing" and p.weight > 0}
    lead = max(weights, key=lambda pid: weights[pid])
    rows = [r for r in scorecard_history(db, thesis.id, ticker) if start.isoformat() < r["as_of"] <= end.isoformat()]
    first = compute(thesis, ticker, start, evidence, market, ledger=ledger)
    points: dict[date, tuple[float, float | None]] = {start: (first.backing, first.pillars[lead].value)}
    if rows:
        for row in rows:  # several events on a day: the last one stands
            points[date.fromisoformat(row["as_of"][:10])] = (float(row["backing"]), row["pillars"].get(lead))
    else:  # never scored: recompute weekly
        day = start + timedelta(days=7)
        while day < end:
            card = compute(thesis, ticker, day, evidence, market, ledger=ledger)
            points[day] = (card.backing, card.pillars[lead].value)
            day += timedelta(days=7)
    points[end] = (now.backing, now.pillars[lead].value)
    history = tuple((day, backing, value) for day, (backing, value) in sorted(points.items()))
    prices = store.market_series(db, f"px:{ticker}", start, end)
    label = f"{ticker} close (USD)"
    if not prices:
        prices, label = store.market_series(db, "btc_usd", start, end), "BTC close (USD)"
    markers = tuple((date.fromisoformat(a["as_of"][:10]), str(a["direction"]), str(a["severity"]))
                    for a in alerts if start.isoformat() <= a["as_of"][:10] <= end.isoformat())
    return ChartData(history, thesis.pillar(lead).name, tuple((date.fromisoformat(d), v) for d, v in prices),
                     label, markers, start, end)


def _market_line(db: sqlite_utils.Database, series: str, end: date) -> MarketLine | None:
    """The series' last value by the week's end against a week before; a series that stopped within the
    last year is still shown, with its last day and marked stale, never left out (a missing BTC line
    reads as "nothing happened"); None only when it has no observation in that year."""
    history = store.market_series(db, series, end - timedelta(days=400), end)
    if not history:
        return None
    day, value = history[-1]
    before = [o for o in history[-60:] if o[0] <= (end - timedelta(days=7)).isoformat()]
    label = SERIES_LABELS.get(series) or (f"{series[3:]} close (USD)" if series.startswith("px:") else series)
    recent = [date.fromisoformat(d) for d, _ in history[-5:]]
    spacing = (recent[-1] - recent[0]).days / (len(recent) - 1) if len(recent) > 1 else 1.0
    age = (end - date.fromisoformat(day)).days
    return MarketLine(series, label, value, date.fromisoformat(day), before[-1][1] if before else None,
                      date.fromisoformat(before[-1][0]) if before else None, age > max(7.0, 1.5 * spacing))


# --- rendering ----------------------------------------------------------------------------------


def chart_filename(week: str, thesis: str, ticker: str) -> str:
    return _UNSAFE_NAME.sub("-", f"digest-{week}-{thesis}-{ticker}") + ".png"


def content_id(filename: str) -> str:
    return f"{_UNSAFE_NAME.sub('-', Path(filename).stem)}@{CONTENT_ID_DOMAIN}"


def render_html(digest: Digest, images: Mapping[str, str] | None = None) -> str:
    """The HTML version; ``images`` maps a company's ``key`` to its chart's ``src`` (file name or ``cid:…``)."""
    return _environment().get_template("digest.html.j2").render(_context(digest, images or {}))


def render_text(digest: Digest, images: Mapping[str, str] | None = None) -> str:
    """The plain-text version (chart file names listed when given)."""
    return _environment().get_template("digest.txt.j2").render(_context(digest, images or {}))


def render_digest(digest: Digest, out_dir: Path | str) -> DigestFiles:
    """Write ``digest-YYYY-Www.html``, ``.txt`` and one PNG per company chart into ``out_dir``."""
    from monitor.notify.charts import scorecard_chart

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    charts = []
    for company in digest.companies():
        if company.chart is None:
            continue
        name = chart_filename(digest.week, company.thesis, company.ticker)
        path = out / name
        data = company.chart
        scorecard_chart(data.history, data.prices, f"{company.ticker} · {company.thesis}: cash-flow backing vs "
                        f"{data.price_label.split(' (')[0]}", path, price_label=data.price_label,
                        lead_label=data.lead_pillar, alerts=data.alerts, highlight=(digest.start, digest.end),
                        start=data.start, end=data.end)
        images[company.key] = name
        charts.append(path)
    html_path = out / f"digest-{digest.week}.html"
    text_path = out / f"digest-{digest.week}.txt"
    html_path.write_text(render_html(digest, images), encoding="utf-8")
    text_path.write_text(render_text(digest, images), encoding="utf-8")
    return DigestFiles(html_path, text_path, tuple(charts))


def digest_message(digest: Digest, files: DigestFiles) -> Message:
    """The digest as one Message for a channel.

    ``text`` is the text version; each chart PNG is an image attachment with a content id; the HTML version,
    its images referenced as ``cid:<content id>``, is the last attachment (``text/html``, ``digest.html``).
    """
    by_name = {path.name: path for path in files.chart_paths}
    images: dict[str, str] = {}
    attachments = []
    for company in digest.companies():
        path = by_name.get(chart_filename(digest.week, company.thesis, company.ticker))
        if path is None:
            continue
        cid = content_id(path.name)
        images[company.key] = f"cid:{cid}"
        attachments.append(Attachment(path.name, "image/png", path.read_bytes(), cid))
    html = render_html(digest, images)
    attachments.append(Attachment(HTML_ATTACHMENT, "text/html", html.encode("utf-8"), content_id(HTML_ATTACHMENT)))
    return Message(key=f"digest-{digest.week}", kind="digest", subject=digest.subject,
                   text=files.text_path.read_text(encoding="utf-8"), attachments=tuple(attachments))


def digest_html(message: Message) -> str | None:
    """The HTML version a digest message carries (its ``text/html`` attachment), or None."""
    for attachment in message.attachments:
        if attachment.content_type.lower().startswith("text/html"):
            return attachment.data.decode("utf-8")
    return None


def summary_text(digest: Digest, limit: int = 3000) -> str:
    """A short digest for chat channels (Slack caps a message's text): one line per active company."""
    lines = [digest.subject + f" ({digest.start:%d %b} – {digest.end:%d %b %Y})"]
    for thesis in digest.theses:
        lines.append(f"{thesis.name}:")
        for c in thesis.companies:
            if not c.active:
                continue
            binding = sum(m.commitment == "binding" for m in c.moved)
            lines.append(f"  {c.ticker}: backing {c.backing_before:.1f} → {c.backing:.1f} ({c.backing_delta:+.1f}); "
                         f"{binding} binding, {len(c.moved) - binding} soft disclosures; {len(c.alerts)} alerts; "
                         f"{len(c.pending)} pending")
        quiet = [c.ticker for c in thesis.companies if not c.active]
        if quiet:
            lines.append(f"  unchanged: {', '.join(quiet)}")
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- template helpers ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return environment(dict(line=_line, href=_http_url, num=_number, signed=_signed, arrow=_arrow, colour=_colour,
                            money=_money, wrap=_wrap, effect=_effect))


def _context(digest: Digest, images: Mapping[str, str]) -> dict[str, Any]:
    return {"d": digest, "images": images, "material": MATERIAL_MOVE}


def _line(value: Any) -> str:
    """Untrusted text on one line: control characters and line breaks become single spaces."""
    return " ".join(_CONTROL.sub(" ", str(value if value is not None else "")).split())


def _http_url(url: Any) -> str:
    """The URL when it is http(s) with a host (then it may be a link), else ""."""
    text = str(url or "").strip()
    if not text or _CONTROL.search(text) or any(c.isspace() for c in text):
        return ""
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _number(value: Any, digits: int = 1) -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}"
    return "–" if value is None else _line(value)


def _signed(value: Any) -> str:
    return f"{value:+.1f}" if isinstance(value, (int, float)) else "–"


def _arrow(delta: Any) -> str:
    if not isinstance(delta, (int, float)) or abs(delta) < 0.05:
        return "▶"  # unchanged
    return "▲" if delta > 0 else "▼"


def _colour(delta: Any, kind: str = "backing", threshold: float = 0.05) -> str:
    """Green when the change is good for the thesis, red when bad (a rising risk is bad), grey when below
    ``threshold``."""
    if not isinstance(delta, (int, float)) or abs(delta) < threshold:
        return "#5f6368"
    good = delta > 0 if kind != "risk" else delta < 0
    return "#1e7b34" if good else "#b3261e"


def _money(item: Any) -> str:
    """" · 200 MW · $3.50bn · with Fluidstack" for the fields a disclosure carries."""
    parts = []
    if getattr(item, "mw", None):
        parts.append(f"{item.mw:,.0f} MW")
    if getattr(item, "usd", None):
        parts.append(money(item.usd))
    if getattr(item, "counterparty", None):
        parts.append(f"with {_line(item.counterparty)}")
    return " · ".join(parts)


def _effect(item: Moved) -> str:
    if not item.pillars and item.deal:
        return f"read into the deal ledger: {item.deal} (counted in the units above)"
    if not item.pillars:
        return "counts in no pillar of this thesis"
    note = "" if item.commitment == "binding" else " (optionality, not cash flow)"
    return f"{item.points:+.1f} pts now in {', '.join(item.pillars)}{note}"


def _wrap(value: Any, width: int = 96, indent: str = "    ") -> str:
    import textwrap

    return textwrap.fill(_line(value), width=width, initial_indent=indent, subsequent_indent=indent)
