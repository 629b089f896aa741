"""Is the monitor keeping up? Per-source staleness, outbox depths, and one verdict.

An unattended daemon fails quietly: a source that stops answering simply stops
adding rows, and nothing crashes. ``monitor status --json`` (the container's
HEALTHCHECK and the systemd health timer) turns the ``sources`` table into a
verdict an exit code can carry.

The rules, as an operator would expect them:

* Only the sources the latest ``monitor run`` schedules are judged (online: EDGAR,
  submissions, feeds, tickers, market; offline: the two replays), so switching from
  offline to online does not leave the old replay rows failing health forever.
* A source is stale when it has not succeeded within its window (``[health]``:
  ``stale_factor`` x its job's interval, or ``stale_after_minutes``).
* A daemon that has just started gets one window from its start, but only until a
  source's first attempt after the start: right after a first start (or a restart
  after downtime) nothing is stale until the jobs have had their chance, while a
  restart, or a crash loop, cannot hide a source that keeps failing. A ``--once``
  run gets no grace: its polls are over when it exits.
* The run judged is the running daemon's when one is recorded and its process is
  alive, so a manual ``monitor run --once`` beside it does not change the verdict.
* A store no run was ever recorded in is unhealthy (nothing is watching).
* Outbox rows still queued long after they were due (a due time, batch window and
  claim lease all past by ``stale_factor`` x ``notify.deliver_seconds``, at least
  ``STUCK_AFTER``) are unhealthy: delivery is jammed or not running, and alerts are
  not reaching anyone while every source looks fine.
* Dead letters are reported always but fail health only when asked
  (``fail_on_dead_letters``): they need a person (a revoked webhook, a bad address),
  while restarting or paging on the daemon would not bring them back.
* A feed or newsroom that answers but has listed nothing new for max(6 x its median gap
  between items, 60 days) is reported quiet (``monitor.fetch.rhythm``) and raises one source
  alert, but does not fail health: the daemon is working, and a person must find the
  company's new feed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.config import Config
from monitor.fetch.companyfacts import companyfacts_source
from monitor.fetch.edgar import LATEST_SOURCE, submissions_source
from monitor.fetch.feeds import feed_source_name
from monitor.fetch.newsroom import newsroom_source_name
from monitor.fetch.rhythm import is_quiet
from monitor.fetch.replay import REPLAY_SOURCE
from monitor.market.fetch import market_source_name, market_sources
from monitor.market.replay import MARKET_REPLAY_SOURCE
from monitor.notify.outbox import outbox_summary, stuck_messages
from monitor.pipeline import Runtime, fetch_jobs
from monitor.runs import current_run
from monitor.tickers import TICKERS_SOURCE

QUEUED = ("pending", "sending")
STUCK_AFTER = timedelta(minutes=15)  # the least a due message may wait before health calls it stuck


@dataclass(frozen=True)
class SourceHealth:
    """One row of ``sources`` judged against its window; ``job`` is None when no scheduled job polls it."""

    name: str
    job: str | None
    last_success_at: str | None
    last_attempt_at: str | None
    consecutive_failures: int
    last_error: str
    documents_added: int
    window_minutes: float | None
    stale: bool
    newest_item_at: str | None  # feeds and newsrooms: the newest past item the listing named
    median_gap_days: float | None
    quiet: bool  # answering, but no new item for max(6 x median gap, 60 days): a feed that has died


@dataclass(frozen=True)
class Health:
    """The verdict with its reasons, per-source detail, and the outbox's queues and dead letters."""

    healthy: bool
    reasons: list[str]
    checked_at: str
    run: dict[str, Any] | None
    sources: list[SourceHealth]
    queues: dict[str, dict[str, int]]  # channel -> status -> rows
    queued: int
    stuck: dict[str, int]  # channel -> rows queued long past their due time
    dead_letters: int
    recent_dead_letters: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_windows(config: Config, offline: bool) -> dict[str, timedelta]:
    """Fetch job name -> how long its sources may go without a success."""
    # fetch_jobs reads only the schedule and the mode, so a runtime without companies or client will do.
    jobs = fetch_jobs(Runtime(config, Path(), [], offline=offline))
    overrides: dict[str, float] = dict(config.health.stale_after_minutes)
    return {job.name: timedelta(minutes=overrides[job.name]) if job.name in overrides
            else timedelta(seconds=job.every_seconds * config.health.stale_factor) for job in jobs}


def scheduled_sources(config: Config, offline: bool) -> dict[str, str]:
    """Source name -> the fetch job that polls it, as pipeline's jobs name them in ``sources``."""
    if offline:
        return {REPLAY_SOURCE: "replay", MARKET_REPLAY_SOURCE: "market-replay"}
    tickers = [company.ticker for company in config.companies]
    names = {LATEST_SOURCE: "edgar-latest", TICKERS_SOURCE: "tickers"}
    names.update({submissions_source(ticker): "edgar-reconcile" for ticker in tickers})
    names.update({companyfacts_source(ticker): "edgar-reconcile" for ticker in tickers})
    names.update({feed_source_name(c.ticker, url): "feeds" for c in config.companies for url in c.feeds})
    names.update({newsroom_source_name(c.ticker, c.newsroom.url): "feeds" for c in config.companies if c.newsroom})
    names.update({market_source_name(s.series): "market" for s in market_sources(config.market, tickers)})
    return names


def check_health(db: sqlite_utils.Database, config: Config, *, now: datetime | None = None,
                 fail_on_dead_letters: bool = False) -> Health:
    """Judge every source of the store and the outbox; plain data for ``monitor status``."""
    now = now or datetime.now(UTC)
    run = current_run(db)
    reasons: list[str] = []
    if run is None:
        reasons.append("no `monitor run` has been recorded in this store: nothing is polling")
    offline = run is not None and run["mode"] == "offline"
    scheduled = scheduled_sources(config, offline) if run else {}
    windows = job_windows(config, offline)
    grace_from = _parse(run["started_at"]) if run and run["kind"] == "daemon" else None
    rows = {row["name"]: row for row in db.query("select * from sources order by name")}
    sources = []
    for name in sorted(rows.keys() | scheduled.keys()):
        row = rows.get(name, {})
        job = scheduled.get(name)
        window = windows[job] if job else None
        success = _parse(row.get("last_success_at"))
        attempt = _parse(row.get("last_attempt_at"))
        # The grace lasts until the source's first attempt after the start: a restart (or a crash loop)
        # must not hide a source that keeps failing.
        graced = grace_from if grace_from is not None and (attempt is None or attempt < grace_from) else None
        since = max((t for t in (success, graced) if t is not None), default=None)
        stale = window is not None and (since is None or now - since > window)
        if stale:
            reasons.append(_stale_reason(name, success, window, row.get("last_error") or ""))
        sources.append(SourceHealth(
            name=name, job=job, last_success_at=row.get("last_success_at"),
            last_attempt_at=row.get("last_attempt_at"),
            consecutive_failures=row.get("consecutive_failures") or 0, last_error=row.get("last_error") or "",
            documents_added=row.get("documents_added") or 0,
            window_minutes=window.total_seconds() / 60 if window else None, stale=stale,
            newest_item_at=row.get("newest_item_at"), median_gap_days=row.get("median_gap_days"),
            quiet=is_quiet(row.get("newest_item_at"), row.get("median_gap_days"), now),
        ))
    # Before the first scoring run there is no alerts table, and so no outbox to summarise.
    outbox = outbox_summary(db) if "alerts" in db.table_names() else {"channels": {}, "dead_letters": []}
    queues = outbox["channels"]
    dead = sum(counts.get("dead", 0) for counts in queues.values())
    queued = sum(counts.get(status, 0) for counts in queues.values() for status in QUEUED)
    stuck = stuck_messages(db, now - stuck_window(config)) if "alerts" in db.table_names() else {}
    for channel, count in stuck.items():
        reasons.append(f"outbox {channel}: {count} message row{'s' if count != 1 else ''} stuck past their due time")
    if dead and fail_on_dead_letters:
        reasons.append(f"{dead} dead letter{'s' if dead != 1 else ''} in the outbox")
    return Health(
        healthy=not reasons, reasons=reasons, checked_at=now.isoformat(timespec="seconds"), run=run,
        sources=sources, queues=queues, queued=queued, stuck=stuck,
        dead_letters=dead, recent_dead_letters=outbox["dead_letters"],
    )


def stuck_window(config: Config) -> timedelta:
    """How long past its due time a queued message may wait: the batch window, then a few delivery turns."""
    notify = config.notify
    turns = timedelta(seconds=notify.deliver_seconds * config.health.stale_factor)
    return timedelta(minutes=notify.batch_window_minutes) + max(turns, STUCK_AFTER)


def _stale_reason(name: str, success: datetime | None, window: timedelta, error: str) -> str:
    when = f"last success {success.isoformat(timespec='seconds')}" if success else "never succeeded"
    cause = f"; last error: {error}" if error else ""
    return f"source {name} is stale: {when}, window {format_window(window.total_seconds() / 60)}{cause}"


def format_window(minutes: float) -> str:
    """'45 min', '18 h': windows read in the unit their schedule is set in."""
    return f"{minutes / 60:g} h" if minutes >= 120 else f"{minutes:g} min"


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    parsed = datetime.fromisoformat(stamp)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
