"""What one market fetch or replay did: a PollResult that counts observations, not documents."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.fetch.result import PollResult


@dataclass
class MarketPoll(PollResult):
    observations: int = 0  # observations the payloads held (after one-per-day merging)
    changed: int = 0  # stored rows added or given a revised value
