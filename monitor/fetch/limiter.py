"""A thread-safe sliding-window rate limiter with a process-wide pause.

SEC's fair-access rule is "no more than 10 requests per second" in total, so
every job shares one limiter for SEC hosts. A sliding window (rather than a
token bucket) guarantees that *no* one-second window holds more than the limit,
which is what SEC measures. When SEC answers with its "Request Rate Threshold
Exceeded" page, every SEC request pauses for ten minutes: retrying early only
renews the block.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class RateLimiter:
    def __init__(
        self,
        max_requests: int,
        per_seconds: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.1,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        self.max_requests = max_requests
        self.window = per_seconds + margin  # margin absorbs jitter between sender and receiver (10 per 1.1 s)
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def per_second(cls, rate: float, **kwargs: object) -> "RateLimiter":
        """A limiter for a fractional rate such as 2.5/s, as whole requests per window."""
        if rate >= 1:
            return cls(int(rate), 1.0, **kwargs)  # type: ignore[arg-type]
        return cls(1, 1.0 / rate, **kwargs)  # type: ignore[arg-type]

    def acquire(self) -> None:
        """Block until one more request fits in the window, then claim it."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0:
                    while self._sent and now - self._sent[0] >= self.window:
                        self._sent.popleft()
                    if len(self._sent) < self.max_requests:
                        self._sent.append(now)
                        return
                    wait = self.window - (now - self._sent[0])
            self._sleep(max(wait, 0.001))

    def pause(self, seconds: float) -> None:
        """Hold every caller of this limiter for ``seconds`` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self._clock())
