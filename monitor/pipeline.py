"""The jobs the daemon schedules, as plain functions the CLI and tests call.

Every job opens its own database connection (jobs run in worker threads and
SQLite connections are per thread), turns any failure into an error record
plus a failed poll in ``sources``, and returns what it did; a job never raises
into the scheduler, so one broken source never stops the others. After the fetch
jobs, the ``extract`` job runs the extraction stage over what they stored.
"""

from __future__ import annotations

import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, Union, cast
from urllib.parse import urlsplit

from monitor import store
from monitor.config import Config, require_sec_contact
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.extract.stage import ExtractResult, extract_pending, load_extractor
from monitor.fetch import edgar, feeds, newsroom
from monitor.fetch.http import HttpClient
from monitor.fetch.limiter import RateLimiter
from monitor.fetch.links import LinkPolicy
from monitor.fetch.replay import REPLAY_SOURCE, ReplayPlan, replay_samples
from monitor.fetch.result import PollResult
from monitor.market.fetch import Download, download_series, market_source_name, market_sources, save_downloads
from monitor.fetch.companyfacts import companyfacts_source, companyfacts_url, fetch_revenue
from monitor.ledger.stage import LedgerReader
from monitor.market.replay import MARKET_REPLAY_SOURCE, replay_market
from monitor.notify.message import Message
from monitor.notify.outbox import KINDS, DeliveryResult, queue_for
from monitor.runs import daemon_started_before, record_start
from monitor.score.stage import ScoreResult, score_pending
from monitor.score.thesis import Thesis, load_theses
from monitor.tickers import (
    TICKERS_SOURCE,
    TICKERS_URL_PATH,
    WatchedCompany,
    save_ticker_map,
    watched_companies,
)

R = TypeVar("R")  # what a guarded piece of work returns when it succeeds

log = logging.getLogger(__name__)

Mode = Literal["auto", "online", "offline"]
# Feeds polled at once: a slow host holds one of them for at most its deadlines, not every other feed.
FEED_WORKERS = 4


@dataclass
class Runtime:
    """What every job needs: settings, the store's path, the companies, one shared client."""

    config: Config
    db_path: Path
    companies: list[WatchedCompany]
    offline: bool
    client: HttpClient | None = None
    last_good: dict[str, Any] = field(default_factory=dict)  # rules that loaded, kept when an edit breaks them
    notify_history: bool = False  # push alerts of a first run or a backfill too (`run --notify-history`)
    stopping: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: start no more sources

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def build_client(config: Config, user_agent: str) -> HttpClient:
    """One client per process: its SEC limiter is the one all jobs share."""
    return HttpClient(
        config.http,
        user_agent,
        sec_hosts=config.sec.hosts,
        sec_limiter=RateLimiter.per_second(config.sec.max_requests_per_second),
        sec_pause_seconds=config.sec.rate_limit_pause_seconds,
        link_policy=LinkPolicy(config.http.allow_private_addresses),
    )


def network_reachable(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def build_runtime(config: Config, db_path: Path | None = None, mode: Mode | None = None) -> Runtime:
    """Decide online/offline and resolve companies; configuration problems raise here, at start-up.

    ``auto`` goes online only when an SEC contact is configured and SEC answers a TCP connect;
    without a contact we never contact SEC (its fair-access policy requires one), so we replay.
    """
    mode = mode or config.monitor.network
    companies = watched_companies(config)
    db_path = db_path or config.path(config.monitor.db)
    if mode == "offline":
        return Runtime(config, db_path, companies, offline=True)
    agent = config.sec.resolved_user_agent()
    if mode == "auto" and (not agent or not network_reachable(config.sec.www_url)):
        if not agent:
            log.warning("no SEC contact configured (sec.user_agent or $%s): replaying bundled samples offline",
                        config.sec.user_agent_env)
        else:
            log.warning("%s is not reachable: replaying bundled samples offline", config.sec.www_url)
        return Runtime(config, db_path, companies, offline=True)
    return Runtime(config, db_path, companies, offline=False, client=build_client(config, require_sec_contact(config)))


def _guarded(rt: Runtime, source: str, url: str, work: Callable[[store.sqlite_utils.Database], R]) -> R | PollResult:
    """``work`` on a fresh connection; a failure is recorded against ``source`` and returned as a PollResult."""
    db = store.open_db(rt.db_path)
    try:
        return work(db)
    except Exception as exc:  # a bug must not kill the scheduler either
        return _failed(db, source, url, exc)
    finally:
        db.close()


def _failed(db: store.sqlite_utils.Database, source: str, url: str, exc: Exception) -> PollResult:
    """Record a failure against ``source``; called while handling ``exc``, so a bug keeps its traceback."""
    where = getattr(exc, "url", "") or url
    if isinstance(exc, MonitorError):
        log.warning("%s: %s", source, exc)
    else:
        log.exception("%s: unexpected failure: %s", source, exc)
    try:
        store.record_error(db, source, where, type(exc).__name__, str(exc))
        store.record_poll(db, source, ok=False, error=str(exc))
    except StoreError as store_exc:  # the store itself is failing: the log line above is all we can do
        log.error("%s: could not record the failure: %s", source, store_exc)
    return PollResult(source, errors=[str(exc)])


def _sec_paused(rt: Runtime) -> bool:
    assert rt.client is not None
    pause = rt.client.sec_limiter.paused_for()
    if pause > 0:
        log.warning("SEC requests paused for %.0fs after a rate-limit answer; skipping this poll", pause)
    return pause > 0


def job_edgar_latest(rt: Runtime) -> list[PollResult]:
    if rt.client is None or _sec_paused(rt):
        return []
    watched = {c.cik: c.ticker for c in rt.companies}
    client = rt.client
    url = edgar.latest_feed_url(rt.config, 0)
    return [_guarded(rt, edgar.LATEST_SOURCE, url, lambda db: edgar.poll_latest(client, db, rt.config, watched))]


def job_reconcile(rt: Runtime) -> list[PollResult]:
    if rt.client is None:
        return []
    results = []
    client = rt.client
    for company in rt.companies:
        if _sec_paused(rt):
            break
        url = edgar.submissions_url(rt.config, company.cik)
        results.append(
            _guarded(rt, edgar.submissions_source(company.ticker), url,
                     lambda db, c=company: edgar.reconcile_company(client, db, rt.config, c.ticker, c.cik))
        )
        facts_url = companyfacts_url(rt.config, company.cik)  # reported revenue, for the AI mix
        results.append(
            _guarded(rt, companyfacts_source(company.ticker), facts_url,
                     lambda db, c=company: fetch_revenue(client, db, rt.config, c.ticker, c.cik))
        )
    return results


def job_feeds(rt: Runtime) -> list[PollResult]:
    """Every company's feeds and newsroom page, ``FEED_WORKERS`` at a time, results in the configured order.

    Feeds are on many unrelated hosts, so one slow or hostile host must not delay the others
    (each request ends by ``http.total_timeout``); once ``rt.stopping`` is set no further
    feed is started, so SIGTERM waits only for the polls under way.
    """
    if rt.client is None:
        return []
    client = rt.client

    listings: list[tuple[str, str, Callable[[store.sqlite_utils.Database], PollResult]]] = []
    for company in rt.companies:
        for url in company.feeds:
            listings.append((feeds.feed_source_name(company.ticker, url), url,
                             partial(feeds.poll_feed, client, ticker=company.ticker, url=url)))
        if company.newsroom is not None:
            listings.append((newsroom.newsroom_source_name(company.ticker, company.newsroom.url), company.newsroom.url,
                             partial(newsroom.poll_newsroom, client, ticker=company.ticker, newsroom=company.newsroom)))

    def poll(source: str, url: str, work: Callable[[store.sqlite_utils.Database], PollResult]) -> PollResult | None:
        if rt.stopping.is_set():
            return None
        return _guarded(rt, source, url, work)

    with ThreadPoolExecutor(max_workers=FEED_WORKERS, thread_name_prefix="feed") as pool:
        polled = list(pool.map(poll, *zip(*listings))) if listings else []
    return [result for result in polled if result is not None]


def job_replay(rt: Runtime) -> list[PollResult]:
    plan = ReplayPlan(rt.config.path(rt.config.monitor.samples_dir), {c.ticker for c in rt.companies})
    return [_guarded(rt, REPLAY_SOURCE, str(plan.samples_dir), lambda db: replay_samples(db, plan))]


def job_market(rt: Runtime) -> list[PollResult]:
    """Every market source ([market] of the config, and px:TICKER per watched company): one result each.

    Each source is fetched and parsed on its own (a failing one is recorded and the others go on),
    then everything that arrived is stored in one transaction (``save_downloads`` says why).
    """
    if rt.client is None:
        return []
    client = rt.client
    downloads: list[Download] = []
    results: list[PollResult] = []
    for source in market_sources(rt.config.market, [c.ticker for c in rt.companies]):
        got = _guarded(rt, market_source_name(source.series), source.url,
                       lambda db, s=source: download_series(client, db, s))
        if isinstance(got, Download):
            downloads.append(got)
        else:
            results.append(got)
    if downloads:
        db = store.open_db(rt.db_path)
        try:
            results.extend(save_downloads(db, downloads))
        except Exception as exc:  # as in _guarded: recorded against every source of the update, never raised
            results.extend(_failed(db, d.name, d.source.url, exc) for d in downloads)
        finally:
            db.close()
    return results


def job_market_replay(rt: Runtime) -> list[PollResult]:
    """Offline: the bundled market files of ``samples_dir/market`` (idempotent, so cheap to repeat)."""
    samples = rt.config.path(rt.config.monitor.samples_dir) / "market"
    return [_guarded(rt, MARKET_REPLAY_SOURCE, str(samples), lambda db: replay_market(db, samples))]


def job_refresh_tickers(rt: Runtime) -> list[PollResult]:
    if rt.client is None or _sec_paused(rt):
        return []
    client = rt.client
    url = rt.config.sec.www_url + TICKERS_URL_PATH

    def refresh(db: store.sqlite_utils.Database) -> PollResult:
        before = client.requests_sent
        save_ticker_map(rt.config, client.get(url).content, url)
        store.record_poll(db, TICKERS_SOURCE, ok=True)
        return PollResult(TICKERS_SOURCE, requests=client.requests_sent - before)

    return [_guarded(rt, TICKERS_SOURCE, url, refresh)]


def job_extract(rt: Runtime) -> ExtractResult:
    """The extraction stage over every document not yet extracted with the current rules.

    The rules are loaded on every run, so an edit of ``rules/`` is picked up (and re-extracts
    every document) without restarting the daemon.
    """
    def work(db: store.sqlite_utils.Database) -> ExtractResult:
        rules_dir = rt.config.path(rt.config.monitor.rules_dir)
        model_path = rt.config.path(rt.config.monitor.model_path)
        result = extract_pending(db, with_last_good(rt, db, "rules", lambda: load_extractor(rules_dir, model_path)))
        if result.documents:
            log.info("extract: %d documents, %d disclosures, %d errors (rules %s)", result.documents,
                     result.disclosures, len(result.errors), result.rules_version)
        return result

    return _stage(rt, "extract", ExtractResult, work)


S = TypeVar("S")


def _stage(rt: Runtime, name: str, failed: Callable[..., S], work: Callable[[store.sqlite_utils.Database], S]) -> S:
    """Run a stage on its own connection; any failure is logged and returned, never raised.

    ``failed(errors=[…], aborted=True)`` makes the result of a stage that failed as a whole (the
    store, the rules, a bug), which ``monitor run --once`` turns into a non-zero exit.
    """
    try:
        db = store.open_db(rt.db_path)
    except MonitorError as exc:
        log.warning("%s: %s", name, exc)
        return failed(errors=[str(exc)], aborted=True)
    try:
        return work(db)
    except MonitorError as exc:
        log.warning("%s: %s", name, exc)
        return failed(errors=[str(exc)], aborted=True)
    except Exception as exc:  # a bug must not kill the scheduler; it is logged with its traceback
        log.exception("%s: unexpected failure", name)
        return failed(errors=[f"{type(exc).__name__}: {exc}"], aborted=True)
    finally:
        db.close()


T = TypeVar("T")


def with_last_good(rt: Runtime, db: store.sqlite_utils.Database, name: str, load: Callable[[], T]) -> T:
    """Load rules; when an edit broke them, log it, record it and keep the last good ones.

    A daemon must not stop scoring because someone saved a half-edited file; the
    error names file, line or key, and shows in ``monitor status``.
    """
    try:
        value = load()
    except ConfigError as exc:
        if name not in rt.last_good:
            raise
        log.error("%s: %s; keeping the last good %s", name, exc, name)
        store.record_error(db, f"rules:{name}", "", "ConfigError", f"{exc}; the last good {name} stay in use")
        return cast(T, rt.last_good[name])
    rt.last_good[name] = value
    return value


def current_theses(rt: Runtime, db: store.sqlite_utils.Database) -> list[Thesis]:
    """The theses as ``theses_dir`` holds them now, or the last good ones when an edit broke them."""
    theses_dir = rt.config.path(rt.config.monitor.theses_dir)
    return with_last_good(rt, db, "theses", lambda: load_theses(theses_dir))


def job_score(rt: Runtime) -> ScoreResult:
    """Scorecards and alerts for every thesis and company, from the new disclosures and market data."""
    def work(db: store.sqlite_utils.Database) -> ScoreResult:
        rules_dir = rt.config.path(rt.config.monitor.rules_dir)
        reader = with_last_good(rt, db, "ledger rules", lambda: LedgerReader.from_dir(rules_dir))
        result = score_pending(db, current_theses(rt, db), queue_for(list(rt.config.notify.channels)), reader=reader,
                               notify_history=rt.notify_history or rt.config.notify.push_history)
        if result.events:
            log.info("score: %d events, %d scorecard changes, %d alerts", result.events, result.scorecards,
                     result.alerts)
        return result

    return _stage(rt, "score", ScoreResult, work)


def job_deliver(rt: Runtime, kinds: tuple[str, ...] = KINDS) -> DeliveryResult:
    """Report sources failing N times in a row, then send what the outbox holds (of ``kinds``) to each channel."""
    from monitor.notify.channels import build_channels, close_channels, delivery_settings
    from monitor.notify.outbox import deliver_pending
    from monitor.notify.source_alerts import raise_source_alerts

    def work(db: store.sqlite_utils.Database) -> DeliveryResult:
        raise_source_alerts(db, rt.config.notify.source_failure_threshold, list(rt.config.notify.channels))
        channels = build_channels(rt.config)
        try:
            result = deliver_pending(db, channels, delivery_settings(rt.config), digests=_digest_builder(rt, db),
                                     kinds=kinds)
        finally:
            close_channels(channels)
        if result.sent or result.errors:
            log.info("deliver: %d messages (%d alerts) sent, %d retrying, %d dead", result.sent, result.alerts_sent,
                     result.retrying, result.dead)
        return result

    return _stage(rt, "deliver", DeliveryResult, work)


def _digest_builder(rt: Runtime, db: store.sqlite_utils.Database) -> Callable[[str, str], Message]:
    """Builds a queued digest's message for a channel when the outbox sends it (rendered once per pass)."""
    from monitor.notify.digest import iso_week_bounds
    from monitor.notify.weekly import channel_message, render_week

    rendered: dict[str, Any] = {}

    def build(week: str, channel: str) -> Message:
        if week not in rendered:
            rendered[week] = render_week(db, current_theses(rt, db), iso_week_bounds(week)[1],
                                         rt.config.path(rt.config.notify.digest_dir), rt.config.market_lens)
        return channel_message(*rendered[week], channel)

    return build


def job_digest(rt: Runtime) -> str | None:
    """Queue the digest of the last scheduled moment in the outbox, once; return its week, or None.

    Run at the scheduled minute and at every daemon start: a week is due when a daemon was
    started before its moment (the monitor was meant to be running then) and it is not queued
    yet, so a daemon that was down at that minute catches up, and a restart sends nothing twice.
    The outbox then sends it with retries and dead letters, as it does alerts.
    """
    from monitor.notify.digest import default_week_end, week_label
    from monitor.notify.outbox import digest_weeks, enqueue_digest
    from monitor.notify.weekly import last_digest_moment, render_week

    now = datetime.now(UTC)
    moment = last_digest_moment(rt.config.notify, now)
    week_end = default_week_end(moment.date())
    week = week_label(week_end)

    def work(db: store.sqlite_utils.Database) -> str | None:
        if week in digest_weeks(db) or not daemon_started_before(db, moment):
            return None
        files = render_week(db, current_theses(rt, db), week_end, rt.config.path(rt.config.notify.digest_dir),
                            rt.config.market_lens)[1]
        enqueue_digest(db, week, list(rt.config.notify.channels), now.isoformat(timespec="seconds"))
        log.info("digest %s written to %s and queued for %s", week, files.html_path,
                 ", ".join(rt.config.notify.channels))
        return week

    return _stage(rt, "digest", lambda **_: None, work)


def send_digest(rt: Runtime, week: str) -> dict[str, str]:
    """``monitor digest --send``: queue the week's digest (again) for every channel and send it now.

    It goes through the outbox like the scheduled digest, so a send that fails is not lost: the
    daemon's delivery job retries it with backoff and dead-letters it after the last attempt.
    Returns where it stands per channel.
    """
    from monitor.notify.outbox import digest_delivery, enqueue_digest

    db = store.open_db(rt.db_path)
    try:
        enqueue_digest(db, week, list(rt.config.notify.channels), datetime.now(UTC).isoformat(timespec="seconds"),
                       again=True)
        job_deliver(rt, kinds=("digest",))
        return digest_delivery(db, week)
    finally:
        db.close()


def register_companies(rt: Runtime) -> None:
    db = store.open_db(rt.db_path)
    try:
        for company in rt.companies:
            store.upsert_company(db, company.ticker, company.cik, company.name)
    finally:
        db.close()


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Runtime], Union[list[PollResult], ExtractResult, ScoreResult, DeliveryResult]]
    every_seconds: float


def fetch_jobs(rt: Runtime) -> list[Job]:
    """One job per source kind; offline the replay stands in for all of them."""
    schedule = rt.config.schedule
    if rt.offline:
        return [
            Job("replay", job_replay, schedule.feeds_poll_minutes * 60),
            Job("market-replay", job_market_replay, schedule.market_hours * 3600),
        ]
    return [
        Job("edgar-latest", job_edgar_latest, schedule.edgar_poll_minutes * 60),
        Job("edgar-reconcile", job_reconcile, schedule.reconcile_hours * 3600),
        Job("feeds", job_feeds, schedule.feeds_poll_minutes * 60),
        Job("tickers", job_refresh_tickers, schedule.tickers_refresh_hours * 3600),
        Job("market", job_market, schedule.market_hours * 3600),
    ]


def scheduled_jobs(rt: Runtime) -> list[Job]:
    """The fetch jobs, then the extraction stage (online and offline alike)."""
    every = rt.config.schedule.extract_minutes * 60
    jobs = [*fetch_jobs(rt), Job("extract", job_extract, every), Job("score", job_score, every)]
    if rt.config.notify.channels:
        jobs.append(Job("deliver", job_deliver, rt.config.notify.deliver_seconds))
    return jobs


@dataclass
class RunSummary:
    """What ``run_once`` did: one PollResult per fetch, and the extraction pass after them."""

    polls: list[PollResult]
    extract: ExtractResult
    score: ScoreResult

    def failed_stages(self) -> list[str]:
        """The stages that failed as a whole (not a source or a document): a reason to exit non-zero."""
        return [name for name, result in (("extract", self.extract), ("score", self.score)) if result.aborted]


def run_once(rt: Runtime, on_job: Callable[[str], None] | None = None) -> RunSummary:
    """Every fetch job once, in order, then the extraction stage; return what they did."""
    register_companies(rt)
    record_start(rt.db_path, "once", rt.offline)
    polls: list[PollResult] = []
    for job in fetch_jobs(rt):
        if on_job:
            on_job(job.name)
        polls.extend(cast(list[PollResult], job.run(rt)))
    if on_job:
        on_job("extract")
    extracted = job_extract(rt)
    if on_job:
        on_job("score")
    return RunSummary(polls, extracted, job_score(rt))


def ensure_companies(config: Config) -> None:
    if not config.companies:
        raise ConfigError("companies: no companies to watch; add [[companies]] ticker = \"...\" to the config")
