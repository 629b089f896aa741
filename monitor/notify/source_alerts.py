"""A source that keeps failing is reported once, after N consecutive failures, not on every poll."""

from __future__ import annotations

import json

import sqlite_utils

from monitor import store
from monitor.notify.outbox import enqueue
from monitor.score.engine import alert_key

SYSTEM = "system"


def raise_source_alerts(db: sqlite_utils.Database, threshold: int, channels: list[str]) -> int:
    """One alert per failure streak of each source that reached ``threshold`` failures in a row."""
    raised = 0
    rows = db.execute("select name, consecutive_failures, last_error, last_success_at, last_attempt_at "
                      "from sources where consecutive_failures >= ?", [threshold]).fetchall()
    for name, failures, error, last_success, last_attempt in rows:
        key = alert_key(SYSTEM, name, f"failing-since:{last_success or 'never'}")
        now = store.utcnow()
        with store.transaction(db, "alerts"):
            if db.execute("select 1 from alerts where key = ?", [key]).fetchone():
                continue
            alert_id = db["alerts"].insert({
                "key": key, "thesis": SYSTEM, "ticker": "(sources)", "pillar": "source", "event": f"source:{name}",
                "as_of": (last_attempt or now)[:10], "severity": "warning", "direction": "negative",
                "title": f"Source {name} has failed {failures} polls in a row",
                "before": 0.0, "after": float(failures),
                "reasons": json.dumps([f"last error: {error}", f"last success: {last_success or 'never'}"]),
                "changes": "[]", "evidence": "[]", "created_at": now,
            }).last_pk
            enqueue(db, alert_id, "(sources)", channels, now)
            raised += 1
    return raised
