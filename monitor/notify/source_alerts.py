"""Sources in trouble are reported once, not on every poll.

Two kinds of trouble: a source failing N polls in a row (once per failure streak), and a feed or
newsroom that answers but has listed nothing new for longer than its rhythm allows (once per newest
item: a dead feed can keep answering 200 with the same old items).
"""

from __future__ import annotations

import json

import sqlite_utils

from datetime import UTC, datetime

from monitor import store
from monitor.fetch.rhythm import is_quiet, quiet_window
from monitor.notify.outbox import enqueue
from monitor.score.engine import alert_key

SYSTEM = "system"


def raise_source_alerts(db: sqlite_utils.Database, threshold: int, channels: list[str],
                        now: datetime | None = None) -> int:
    """One alert per failure streak of each source that reached ``threshold`` failures in a row, and one
    per quiet spell of each listing (keyed by its newest item, so a feed that wakes and dies again is
    reported again)."""
    raised = 0
    rows = db.execute("select name, consecutive_failures, last_error, last_success_at, last_attempt_at "
                      "from sources where consecutive_failures >= ?", [threshold]).fetchall()
    for name, failures, error, last_success, last_attempt in rows:
        raised += _raise(db, channels, name, f"failing-since:{last_success or 'never'}", last_attempt,
                         f"Source {name} has failed {failures} polls in a row", float(failures),
                         [f"last error: {error}", f"last success: {last_success or 'never'}"])
    checked = now or datetime.now(UTC)
    rows = db.execute("select name, newest_item_at, median_gap_days, last_success_at from sources "
                      "where newest_item_at is not null").fetchall()
    for name, newest, gap, last_success in rows:
        if not is_quiet(newest, gap, checked):
            continue
        gap_text = f"median gap {gap:g} days" if gap is not None else "one dated item"
        window = quiet_window(gap).days
        raised += _raise(db, channels, name, f"quiet-since:{newest}", last_success,
                         f"Source {name} answers but lists nothing newer than {newest[:10]}",
                         float(window), [f"newest item {newest}; {gap_text}; quiet after {window} days",
                                         "the company may have moved its feed or newsroom page"])
    return raised


def _raise(db: sqlite_utils.Database, channels: list[str], name: str, spell: str, as_of: str | None,
           title: str, after: float, reasons: list[str]) -> int:
    """Store and queue the alert for this spell of trouble unless it was raised before; 1 if raised."""
    key = alert_key(SYSTEM, name, spell)
    now = store.utcnow()
    with store.transaction(db, "alerts"):
        if db.execute("select 1 from alerts where key = ?", [key]).fetchone():
            return 0
        alert_id = db["alerts"].insert({
            "key": key, "thesis": SYSTEM, "ticker": "(sources)", "pillar": "source", "event": f"source:{name}",
            "as_of": (as_of or now)[:10], "severity": "warning", "direction": "negative",
            "title": title, "before": 0.0, "after": after,
            "reasons": json.dumps(reasons), "changes": "[]", "evidence": "[]", "created_at": now,
        }).last_pk
        enqueue(db, alert_id, "(sources)", channels, now)
    return 1
