"""The weekly digest as a job: build, write the files, and queue it in the outbox for every channel.

E-mail gets the full digest (HTML with inline charts, and text); Slack, whose
messages are capped, gets the one-line-per-company summary. The message key is
``digest-YYYY-Www`` on every run, so a resent digest keeps its Message-ID.

The digest goes through the outbox like alerts (retries with backoff, dead
letters, ``monitor status``). The scheduled one is due once per scheduled
moment: the job queues the week of the last moment that has passed unless that
week is already queued, so a daemon that was down at that minute sends it when
it starts again. ``monitor digest --send`` queues the week again and delivers
it at once (``pipeline.send_digest``); a failed send waits in the outbox.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlite_utils

from monitor.config import MarketLensSettings, NotifySettings
from monitor.notify.digest import (
    Digest,
    DigestFiles,
    build_digest,
    default_week_end,
    digest_message,
    render_digest,
    summary_text,
)
from monitor.notify.message import Message
from monitor.score.thesis import Thesis

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def render_week(db: sqlite_utils.Database, theses: list[Thesis], week_end: date,
                out_dir: Path, market_lens: MarketLensSettings | None = None) -> tuple[Digest, DigestFiles]:
    """Build the digest of the week ending ``week_end`` and write its files (the same files every time)."""
    digest = build_digest(db, theses, week_end, market_lens=market_lens)
    return digest, render_digest(digest, out_dir)


def channel_message(digest: Digest, files: DigestFiles, channel: str) -> Message:
    """The full digest for e-mail; the short summary for chat channels."""
    full = digest_message(digest, files)
    if channel == "email":
        return full
    return Message(key=full.key, kind="digest", subject=full.subject, text=summary_text(digest))


def current_week_end(notify: NotifySettings, now: datetime) -> date:
    """The last completed week's Sunday in the digest's own time zone: Monday 08:00 in Auckland is still
    Sunday in UTC, and the machine's clock must not pick the week."""
    return default_week_end(now.astimezone(ZoneInfo(notify.digest_timezone)).date())


def last_digest_moment(notify: NotifySettings, now: datetime) -> datetime:
    """The latest scheduled digest moment (day, time, time zone of ``[notify]``) at or before ``now``."""
    zone = ZoneInfo(notify.digest_timezone)
    local = now.astimezone(zone)
    hour, minute = notify.digest_clock()
    for back in range(8):
        day = local.date() - timedelta(days=back)
        moment = datetime.combine(day, time(hour, minute), zone)
        if WEEKDAYS[day.weekday()] == notify.digest_day_of_week and moment <= local:
            return moment
    raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover

