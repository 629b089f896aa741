"""How often a press-release source publishes, and whether it has gone quiet.

A dead feed can keep answering 200 with the same old items, so "the poll succeeded" says nothing
about whether releases still arrive. What does is the source's own rhythm: a company that publishes
every week and has said nothing for three months has most likely moved its feed. A source is quiet
when its newest item is older than ``QUIET_FACTOR`` x the median gap between its items, and never
sooner than ``QUIET_FLOOR`` (companies go silent for weeks around quarter ends). Items dated in the
future (an events feed announcing a call) are not evidence of anything yet and are ignored.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

QUIET_FACTOR = 6
QUIET_FLOOR = timedelta(days=60)


@dataclass(frozen=True)
class Rhythm:
    """The newest past item of a source and the median gap between its items (None with one item)."""

    newest: str  # ISO 8601 UTC
    median_gap_days: float | None


def rhythm(published: Iterable[str], now: datetime) -> Rhythm | None:
    """The rhythm of a listing's item dates (ISO strings, "" for undated); None when none is in the past."""
    dates = sorted({d for d in (_parse(stamp) for stamp in published) if d is not None and d <= now})
    if not dates:
        return None
    gaps = [(later - earlier) / timedelta(days=1) for earlier, later in zip(dates, dates[1:])]
    return Rhythm(dates[-1].isoformat(timespec="seconds"), statistics.median(gaps) if gaps else None)


def quiet_window(median_gap_days: float | None) -> timedelta:
    """How long a source may go without a new item: max(6 x its median gap, 60 days)."""
    return max(QUIET_FLOOR, timedelta(days=QUIET_FACTOR * (median_gap_days or 0.0)))


def is_quiet(newest: str | None, median_gap_days: float | None, now: datetime) -> bool:
    """True when the source's newest item is older than its quiet window; False when it has no dated item."""
    newest_at = _parse(newest or "")
    return newest_at is not None and now - newest_at > quiet_window(median_gap_days)


def _parse(stamp: str) -> datetime | None:
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
