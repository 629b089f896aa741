"""The long-running daemon: APScheduler 3.x, one interval job per source kind.

Jobs run in a small thread pool; ``coalesce`` and ``max_instances=1`` mean a
slow poll is never run twice at once nor replayed many times after a pause.
SIGTERM and SIGINT stop the scheduler and wait for running jobs, so a poll is
never cut between fetch and store by a clean stop (and a kill is survived by
the store's transactions); a job polling many sources starts no further one
once the stop is asked, and every request ends by ``http.total_timeout``.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.pipeline import Runtime, job_digest, register_companies, scheduled_jobs
from monitor.runs import record_start

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def build_scheduler(rt: Runtime) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=4)}, job_defaults=JOB_DEFAULTS, timezone="UTC"
    )
    for job in scheduled_jobs(rt):
        scheduler.add_job(
            job.run, IntervalTrigger(seconds=job.every_seconds), args=[rt], id=job.name, name=job.name,
            next_run_time=datetime.now().astimezone(),
        )
    notify = rt.config.notify
    if notify.channels:
        hour, minute = notify.digest_clock()
        scheduler.add_job(job_digest, CronTrigger(day_of_week=notify.digest_day_of_week, hour=hour, minute=minute,
                                                  timezone=notify.digest_timezone),
                          args=[rt], id="digest", name="weekly digest")
        # At start too: a week whose digest moment passed while the daemon was down is queued now.
        scheduler.add_job(job_digest, args=[rt], id="digest-catch-up", name="missed weekly digest")
    return scheduler


def log_job_event(event: JobEvent) -> None:
    """One log line per job start and end (debug), and a warning when a job overruns its interval.

    Operators (and the crash harness) read from these lines which stage was running when the
    process stopped; APScheduler's own loggers are kept at WARNING because they are chattier.
    """
    if event.code == EVENT_JOB_SUBMITTED:
        log.debug("job %s started", event.job_id)
    elif event.code == EVENT_JOB_EXECUTED:
        log.debug("job %s finished", event.job_id)
    elif event.code == EVENT_JOB_ERROR:
        log.error("job %s failed", event.job_id)
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("job %s is still running from its last turn; this turn is skipped", event.job_id)


def run_daemon(rt: Runtime, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), then shut down cleanly."""
    stop = stop or threading.Event()
    register_companies(rt)
    record_start(rt.db_path, "daemon", rt.offline)
    scheduler = build_scheduler(rt)

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s: stopping after running jobs finish", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    scheduler.add_listener(log_job_event, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
                           | EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    log.info("daemon started (%s) with jobs: %s", "offline replay" if rt.offline else "online",
             ", ".join(job.id for job in scheduler.get_jobs()))
    try:
        stop.wait()
    finally:
        rt.stopping.set()  # jobs start no further sources; running requests end by their deadlines
        scheduler.shutdown(wait=True)
        rt.close()
        log.info("daemon stopped")
