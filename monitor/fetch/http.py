"""HTTP for every source: one client, explicit timeouts, fair access, bounded bodies.

Why one client: SEC counts requests from all our jobs together, so the SEC
limiter must be shared by whatever thread asks. The client is thread-safe
(httpx.Client is), retries transient failures with exponential backoff that
honours Retry-After, never retries a 4xx other than 429, stops reading a body
past ``max_body_bytes`` (measured after decompression, so a gzip bomb is cut
short too), and turns every failure into one of ``monitor.errors``.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable
from urllib.parse import urlsplit

import httpx

from monitor.config import HttpSettings
from monitor.errors import BodyTooLarge, FetchError, NotFound, RateLimited, RefusedURL, SourceTimeout
from monitor.fetch.limiter import RateLimiter

SEC_THRESHOLD_MARKER = b"Request Rate Threshold Exceeded"


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def etag(self) -> str:
        return self.headers.get("etag", "")

    @property
    def last_modified(self) -> str:
        return self.headers.get("last-modified", "")


class HttpClient:
    """GET with rate limits per host group, retries, conditional requests and size caps."""

    def __init__(
        self,
        settings: HttpSettings,
        user_agent: str,
        *,
        sec_hosts: list[str],
        sec_limiter: RateLimiter,
        sec_pause_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sec_hosts = {host.lower() for host in sec_hosts}
        self.sec_limiter = sec_limiter
        self.sec_pause_seconds = sec_pause_seconds
        self._sleep = sleep
        self._other_limiters: dict[str, RateLimiter] = {}
        self._limiters_lock = threading.Lock()
        self.requests_sent = 0
        self._client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=settings.total_timeout,
            ),
            follow_redirects=True,
            max_redirects=5,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def is_sec(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.netloc.lower() in self.sec_hosts or (parts.hostname or "").lower() in self.sec_hosts

    def get(self, url: str, *, etag: str = "", last_modified: str = "",
            expected: frozenset[int] = frozenset()) -> Response:
        """GET ``url``; a 304, or any status in ``expected``, comes back as a Response.

        ``expected`` lets a caller treat a status as an answer rather than a failure
        (SEC's latest-filings feed answers 503 past its last page; that is its end).
        """
        try:
            scheme = urlsplit(url).scheme
        except ValueError as exc:  # "http://[::1": a broken link from a feed
            raise RefusedURL(url, f"invalid URL: {exc}") from None
        if scheme not in ("http", "https"):
            raise RefusedURL(url, "only http and https URLs are fetched")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        limiter = self._limiter_for(url)
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            last_try = attempt == attempts - 1
            limiter.acquire()
            try:
                response = self._get_once(url, headers)
            except (SourceTimeout, FetchError) as exc:
                if isinstance(exc, (BodyTooLarge, RefusedURL)) or last_try:
                    raise
                self._sleep(self._backoff(attempt))
                continue
            status = response.status
            if status == 304 or 200 <= status < 300 or status in expected:
                return response
            if status in (404, 410):
                raise NotFound(url, f"HTTP {status}")
            if status in (403, 429) and self.is_sec(url) and SEC_THRESHOLD_MARKER in response.content:
                # SEC's block is renewed by every retry: stop all SEC traffic for the pause.
                self.sec_limiter.pause(self.sec_pause_seconds)
                raise RateLimited(url, f"HTTP {status} SEC request rate threshold exceeded; "
                                       f"all SEC requests paused {self.sec_pause_seconds:.0f}s")
            if status == 429 or status >= 500:
                if last_try:
                    error = RateLimited if status == 429 else FetchError
                    raise error(url, f"HTTP {status} after {attempts} attempts")
                self._sleep(self._retry_after(response) or self._backoff(attempt))
                continue
            raise FetchError(url, f"HTTP {status}")
        raise FetchError(url, "no attempt made")  # unreachable: the loop returns or raises

    def _get_once(self, url: str, headers: dict[str, str]) -> Response:
        deadline = time.monotonic() + self.settings.total_timeout
        limit = self.settings.max_body_bytes
        self.requests_sent += 1
        try:
            with self._client.stream("GET", url, headers=headers) as stream:
                declared = stream.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit and stream.headers.get("content-encoding") is None:
                    raise BodyTooLarge(url, f"body of {declared} bytes exceeds the limit of {limit} bytes")
                chunks: list[bytes] = []
                size = 0
                for chunk in stream.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge(url, f"body exceeds the limit of {limit} bytes")
                    if time.monotonic() > deadline:
                        raise SourceTimeout(url, f"body not complete within {self.settings.total_timeout}s")
                    chunks.append(chunk)
                return Response(
                    url=str(stream.url),
                    status=stream.status_code,
                    content=b"".join(chunks),
                    headers={k.lower(): v for k, v in stream.headers.items()},
                )
        except httpx.TimeoutException as exc:
            raise SourceTimeout(url, f"timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
        except (httpx.InvalidURL, UnicodeError) as exc:  # a link from a feed: control characters, bad IDNA label
            raise RefusedURL(url, f"invalid URL: {exc}") from exc

    def _limiter_for(self, url: str) -> RateLimiter:
        if self.is_sec(url):
            return self.sec_limiter
        host = urlsplit(url).netloc.lower()
        with self._limiters_lock:
            if host not in self._other_limiters:
                self._other_limiters[host] = RateLimiter.per_second(self.settings.other_hosts_per_second)
            return self._other_limiters[host]

    def _backoff(self, attempt: int) -> float:
        base = self.settings.backoff_base_seconds * (2**attempt)
        return min(self.settings.backoff_max_seconds, base * (1 + random.random() * 0.25))

    def _retry_after(self, response: Response) -> float | None:
        value = response.headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.isdigit():
            seconds = float(value)
        else:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                return None
        return min(max(seconds, 0.0), self.settings.backoff_max_seconds)
