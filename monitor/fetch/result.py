"""What one run of a fetch job did, as plain data for logs, status, tests and benches."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PollResult:
    source: str
    requests: int = 0
    documents_added: int = 0
    filings_seen: int = 0
    errors: list[str] = field(default_factory=list)
