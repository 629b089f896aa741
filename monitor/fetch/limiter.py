"""A thread-safe sliding-window rate limiter with a process-wide pause.

SEC's fair-access rule is "no more than 10 requests per second" in total, so
every job shares one limiter for SEC hosts. A sliding window (rather than a
token bucket) guarantees that *no* one-second window holds more than the limit,
which is what SEC measures. When SEC answers with its "Request Rate Threshold
Exceeded" page, every SEC request pauses for ten minutes: retrying early only
renews the block.

A fractional rate is kept exactly: 2.5/s is 5 requests per 2 s, and at most
3 in any one second (the whole number above the rate), so the average is the
rate asked for and a burst stays within one second's share.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from fractions import Fraction
from typing import Callable


class RateLimiter:
    def __init__(
        self,
        max_requests: int,
        per_seconds: float = 1.0,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.1,
    ) -> None:
        """``max_requests`` per ``per_seconds`` and, when ``burst`` is given, at most that many in one second."""
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        # margin absorbs jitter between sender and receiver (10 per 1.1 s)
        self.limits = [(max_requests, per_seconds + margin)] + ([(burst, 1.0 + margin)] if burst else [])
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def per_second(cls, rate: float, **kwargs: object) -> "RateLimiter":
        """A limiter for a rate such as 2.5/s: whole requests over the shortest window that makes the rate
        exact (5 per 2 s), never more than ``ceil(rate)`` in one second."""
        if rate < 1:
            return cls(1, 1.0 / rate, **kwargs)  # type: ignore[arg-type]
        exact = Fraction(rate).limit_denominator(100)
        if exact.denominator == 1:
            return cls(exact.numerator, 1.0, **kwargs)  # type: ignore[arg-type]
        return cls(exact.numerator, float(exact.denominator), burst=math.ceil(rate), **kwargs)  # type: ignore[arg-type]

    def acquire(self) -> None:
        """Block until one more request fits in every window, then claim it."""
        while True:
            with self._lock:
                now = self._clock()
                wait = max(self._paused_until - now, self._wait(now))
                if wait <= 0:
                    self._sent.append(now)
                    return
            self._sleep(max(wait, 0.001))

    def _wait(self, now: float) -> float:
        """Seconds until one more request fits every window (0 or less: it fits now)."""
        longest = max(window for _, window in self.limits)
        while self._sent and now - self._sent[0] >= longest:
            self._sent.popleft()
        wait = 0.0
        for count, window in self.limits:
            recent = [t for t in self._sent if now - t < window]
            if len(recent) >= count:
                wait = max(wait, window - (now - recent[-count]))
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every caller of this limiter for ``seconds`` from now."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def paused_for(self) -> float:
        with self._lock:
            return max(0.0, self._paused_until - self._clock())
