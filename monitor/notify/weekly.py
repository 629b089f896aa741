"""The weekly digest as a job: build, write the files, and (when asked) send to every channel.

E-mail gets the full digest (HTML with inline charts, and text); Slack, whose
messages are capped, gets the one-line-per-company summary. The message key is
``digest-YYYY-Www`` on every run, so a resent digest keeps its Message-ID.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlite_utils

from monitor.errors import DeliveryError
from monitor.notify.channel import Channel
from monitor.notify.digest import DigestFiles, build_digest, digest_message, render_digest, summary_text
from monitor.notify.message import Message
from monitor.score.thesis import Thesis

log = logging.getLogger(__name__)


@dataclass
class DigestRun:
    week: str
    files: DigestFiles
    sent: dict[str, str] = field(default_factory=dict)  # channel → receipt or error


def weekly_digest(db: sqlite_utils.Database, theses: list[Thesis], week_end: date, out_dir: Path,
                  channels: dict[str, Channel] | None = None) -> DigestRun:
    digest = build_digest(db, theses, week_end)
    files = render_digest(digest, out_dir)
    run = DigestRun(digest.week, files)
    full = digest_message(digest, files)
    for name, channel in (channels or {}).items():
        message = full if name == "email" else Message(key=full.key, kind="digest", subject=full.subject,
                                                       text=summary_text(digest))
        try:
            run.sent[name] = channel.send(message).status
        except DeliveryError as exc:
            run.sent[name] = f"failed: {exc}"
            log.error("digest %s: %s", digest.week, exc)
    return run
