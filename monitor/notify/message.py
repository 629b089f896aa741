"""What a channel delivers: one message built from one or more stored alerts.

Channels (Slack, e-mail) render a Message their own way; the outbox decides
which alerts go together (a company's alerts within the batch window) and
gives the message a stable idempotency key, so a retry after a crash carries
the same key to the channel (Slack receivers that honour ``X-Idempotency-Key``,
e-mail's ``Message-ID``) and a duplicate can be recognised downstream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["alert", "test", "source", "digest"]


@dataclass(frozen=True)
class Message:
    key: str  # idempotency key: the same alerts always give the same key
    kind: Kind
    subject: str  # one line: company · thesis · direction · severity (for alerts)
    alerts: tuple[dict[str, Any], ...] = ()  # rows as monitor.score.stage.list_alerts returns them
    text: str = ""  # plain text for kinds without alerts (test, source failure)
    attachments: tuple["Attachment", ...] = field(default_factory=tuple)  # digest charts

    @property
    def severity(self) -> str:
        order = ("info", "medium", "warning", "high")
        return max((a.get("severity", "info") for a in self.alerts), key=order.index, default="info")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. image/png
    data: bytes
    content_id: str  # for inline HTML (<img src="cid:...">)


@dataclass(frozen=True)
class Receipt:
    """What the provider answered, kept in the outbox for `monitor alerts`."""

    channel: str
    status: str  # e.g. "200 ok", "250 2.0.0 Ok: queued"
    detail: str = ""


def message_key(alert_keys: list[str], channel: str) -> str:
    joined = "|".join(sorted(alert_keys)) + "|" + channel
    return hashlib.sha256(joined.encode()).hexdigest()[:32]


def alert_subject(alerts: list[dict[str, Any]]) -> str:
    """Headline: company, thesis, direction, severity of the most severe alert, and how many."""
    order = ("info", "medium", "warning", "high")
    lead = max(alerts, key=lambda a: (order.index(a["severity"]), a["id"]))
    more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    return f"[{lead['severity'].upper()}] {lead['ticker']} · {lead['thesis']} · {lead['direction']}: " \
           f"{lead['title'].split(' · ', 1)[-1]}{more}"
