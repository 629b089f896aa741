"""Digest charts: a company's scorecard history against its share price (or BTC), as a PNG.

matplotlib's object API only: a ``Figure`` drawn by ``FigureCanvasAgg``, never
pyplot, so nothing is kept in pyplot's global figure registry and nothing
needs a display. The Agg backend is selected at import unless pyplot was
already imported by the host program (its choice is then left alone; this
module does not depend on it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 900, 450, 100
BACKING = "#1a5fb4"
LEAD = "#26a269"
PRICE = "#9a9996"
WEEK = "#fff1c2"
ALERT_COLOURS = {"positive": "#1e7b34", "negative": "#b3261e"}
# Shape and colour both say which way an alert points (▲ good for the thesis, ▼ bad), for readers who
# cannot tell the colours apart.
ALERT_MARKERS = {"positive": ("^", "positive alert"), "negative": ("v", "negative alert")}
PRICE_GAP_DAYS = 5  # a weekend or a holiday is not a price series that stopped


def scorecard_chart(history: Sequence[tuple[date, float, float | None]], prices: Sequence[tuple[date, float]],
                    title: str, path: Path | str, *, price_label: str = "price (USD)",
                    lead_label: str = "Contracted compute", alerts: Sequence[tuple[date, str, str]] = (),
                    highlight: tuple[date, date] | None = None, start: date | None = None,
                    end: date | None = None) -> Path:
    """Draw ``history`` (day, cash-flow backing, lead backing pillar) as steps on the left axis (0-100),
    ``prices`` (day, value) on the right axis, ``alerts`` (day, direction, severity) as markers along the
    top, and shade ``highlight`` (the digest's week); write a ~900x450 px PNG to ``path`` and return it."""
    path = Path(path)
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    handles: list[Line2D] = []

    if highlight:
        ax.axvspan(highlight[0], highlight[1], color=WEEK, zorder=0, lw=0)
    if history:
        days = [h[0] for h in history]
        handles += ax.step(days, [h[1] for h in history], where="post", color=BACKING, lw=2.2,
                           label="Cash-flow backing", zorder=3)
        lead = [(h[0], h[2]) for h in history if h[2] is not None]
        if lead:
            handles += ax.step([d for d, _ in lead], [v for _, v in lead], where="post", color=LEAD, lw=1.4,
                               ls="--", label=lead_label, zorder=2)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score (0–100)")
    ax.grid(axis="y", color="#e6e6e6", lw=0.8)
    ax.set_axisbelow(True)

    for direction, (marker, label) in ALERT_MARKERS.items():
        days = [d for d, dirn, _ in alerts if dirn == direction]
        if days:
            handles.append(ax.scatter(days, [101] * len(days), marker=marker, s=46, color=ALERT_COLOURS[direction],
                                      label=label, zorder=4, clip_on=False))

    if prices:
        price_axis = ax.twinx()
        handles += price_axis.plot([d for d, _ in prices], [v for _, v in prices], color=PRICE, lw=1.1,
                                   label=price_label, zorder=1)
        last_day, last_price = prices[-1]
        if end and (end - last_day).days > PRICE_GAP_DAYS:  # the series stopped: say where, not a silent gap
            price_axis.plot([last_day], [last_price], marker="o", color=PRICE, ms=5, zorder=1)
            price_axis.annotate(f"no price after {last_day:%d %b %Y}", (last_day, last_price),
                                textcoords="offset points", xytext=(-6, 8), ha="right", fontsize=8, color=PRICE)
        price_axis.set_ylabel(price_label, color="#5e5c64")
        price_axis.tick_params(axis="y", colors="#5e5c64")
        price_axis.set_ylim(bottom=0)
        ax.set_zorder(price_axis.get_zorder() + 1)  # the scorecard drawn over the price line
        ax.patch.set_visible(False)

    first = start or min([h[0] for h in history] + [d for d, _ in prices], default=None)
    last = end or max([h[0] for h in history] + [d for d, _ in prices], default=None)
    if first and last and first < last:
        ax.set_xlim(first, last)
    locator = AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_title(title, fontsize=12, loc="left")
    if handles:
        figure.legend(handles=handles, loc="outside lower center", fontsize=8, frameon=False,
                      ncols=min(5, len(handles)))
    for side in ("top",):
        ax.spines[side].set_visible(False)

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path
