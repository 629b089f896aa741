"""Starts of ``monitor run``, so health knows what is supposed to be polled and since when.

The sources table says when each source last succeeded, but not whether it is
*meant* to be polled (offline runs poll the replay, online runs the SEC and the
feeds), nor how long a daemon has had to poll it; one row per start answers both.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlite_utils

from monitor import store

RunKind = Literal["daemon", "once"]


def record_start(db_path: Path, kind: RunKind, offline: bool) -> None:
    """Note that a daemon (or a ``--once`` run) starts now, online or offline."""
    db = store.open_db(db_path)
    try:
        with store.transaction(db, "runs"):
            db["runs"].insert({"kind": kind, "mode": "offline" if offline else "online",
                               "started_at": store.utcnow(), "pid": os.getpid()})
    finally:
        db.close()


def daemon_started_before(db: sqlite_utils.Database, moment: datetime) -> bool:
    """Whether a daemon was started before ``moment``: the monitor was meant to be running then."""
    if "runs" not in db.table_names():
        return False
    stamp = moment.astimezone(UTC).isoformat(timespec="seconds")
    return db.execute("select 1 from runs where kind = 'daemon' and started_at < ? limit 1", [stamp]).fetchone() is not None


def current_run(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The run health should judge: the latest daemon start if that process is still alive (a manual
    ``--once`` beside a running daemon does not replace it), else the latest start of any kind, or
    None when nothing ever ran against this store."""
    daemon = _latest(db, "where kind = 'daemon'")
    return daemon if daemon and _alive(daemon["pid"]) else _latest(db)


def _latest(db: sqlite_utils.Database, where: str = "") -> dict[str, Any] | None:
    if "runs" not in db.table_names():
        return None
    row = db.execute(f"select kind, mode, started_at, pid from runs {where} order by id desc limit 1").fetchone()
    return dict(zip(("kind", "mode", "started_at", "pid"), row)) if row else None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
