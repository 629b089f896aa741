"""HTTP for every source: one client, explicit timeouts, fair access, bounded bodies.

Why one client: SEC counts requests from all our jobs together, so the SEC
limiter must be shared by whatever thread asks. The client is thread-safe
(httpx.Client is), retries transient failures with exponential backoff that
honours Retry-After, never retries a 4xx other than 429, and turns every
failure into one of ``monitor.errors``. What a stranger's server controls is
bounded here:

* the body: decoded here, not by httpx, so ``max_body_bytes`` caps the
  *decoded* bytes as they stream (a gzip bomb stops at the cap); one gzip or
  deflate layer is decoded, stacked or unknown encodings are refused;
* the time: one deadline (``total_timeout``) covers connect, headers, body
  and every redirect hop of an attempt (``transport.deadline``);
* redirects: followed here, one hop at a time, each taking a token of its
  host's limiter (every SEC hop counts towards SEC's 10 requests/s). A URL
  taken from a document (``linked_from``) must pass ``check_link`` at every
  hop and connects only to public addresses; a configured URL whose redirect
  leaves its own scheme, host and port is treated the same from that hop on.
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from monitor.config import HttpSettings
from monitor.errors import (
    BodyTooLarge,
    FetchError,
    NotFound,
    RateLimited,
    RefusedURL,
    SourceTimeout,
    UnsupportedEncoding,
)
from monitor.fetch.limiter import RateLimiter
from monitor.fetch.links import LinkPolicy, check_link
from monitor.fetch.transport import deadline, deadline_passed, guarded_transport

SEC_THRESHOLD_MARKER = b"Request Rate Threshold Exceeded"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
_ZLIB_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib's window bits for each coding's framing
_NOT_RETRIED = (BodyTooLarge, RefusedURL, UnsupportedEncoding)  # the same answer would come again


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
        link_policy: LinkPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sec_hosts = {host.lower() for host in sec_hosts}
        self.sec_limiter = sec_limiter
        self.sec_pause_seconds = sec_pause_seconds
        self._sleep = sleep
        self._other_limiters: dict[str, RateLimiter] = {}
        self._limiters_lock = threading.Lock()
        self._counts = threading.local()
        # Two pools: connections for configured URLs, and connections for untrusted ones, which only
        # ever reach addresses ``link_policy`` allows (a pooled connection is never shared between them).
        self._client = self._httpx_client(user_agent, None)
        self._untrusted = self._httpx_client(user_agent, link_policy or LinkPolicy())

    def _httpx_client(self, user_agent: str, policy: LinkPolicy | None) -> httpx.Client:
        """trust_env off: a proxy from the environment would bypass the deadline and the address checks."""
        settings = self.settings
        return httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(connect=settings.connect_timeout, read=settings.read_timeout,
                                  write=settings.read_timeout, pool=settings.total_timeout),
            transport=guarded_transport(policy),
            trust_env=False,
        )

    def close(self) -> None:
        self._client.close()
        self._untrusted.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def requests_sent(self) -> int:
        """Requests (redirect hops included) sent by the calling thread: a poll's own count, even when
        jobs and feeds run in parallel, and no counter shared between threads."""
        return getattr(self._counts, "sent", 0)

    def is_sec(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.netloc.lower() in self.sec_hosts or (parts.hostname or "").lower() in self.sec_hosts

    def get(self, url: str, *, etag: str = "", last_modified: str = "",
            expected: frozenset[int] = frozenset(), linked_from: str = "") -> Response:
        """GET ``url``; a 304, or any status in ``expected``, comes back as a Response.

        ``expected`` lets a caller treat a status as an answer rather than a failure
        (SEC's latest-filings feed answers 503 past its last page; that is its end).
        ``linked_from`` is the document ``url`` was found in: the URL and every redirect
        hop must then pass ``check_link`` against it and reach only public addresses.
        """
        if linked_from:
            check_link(linked_from, url)
        _check_scheme(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            last_try = attempt == attempts - 1
            try:
                with deadline(self.settings.total_timeout):
                    response = self._follow(url, headers, linked_from)
            except (SourceTimeout, FetchError) as exc:
                if isinstance(exc, _NOT_RETRIED) or last_try:
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
            if status in REDIRECTS:
                raise FetchError(url, f"HTTP {status} without a Location to follow")
            raise FetchError(url, f"HTTP {status}")
        raise FetchError(url, "no attempt made")  # unreachable: the loop returns or raises

    def _follow(self, url: str, headers: dict[str, str], linked_from: str) -> Response:
        """One attempt: the request and its redirects, each hop checked and rate-limited on its own."""
        hop, untrusted = url, bool(linked_from)
        for _ in range(MAX_REDIRECTS + 1):
            self._limiter_for(hop).acquire()
            try:
                response = self._get_once(hop, headers, self._untrusted if untrusted else self._client)
            except FetchError as exc:  # named after the URL asked for, which the caller knows
                if hop == url:
                    raise
                raise type(exc)(url, f"redirect to {hop}: {exc.cause}") from exc
            location = response.headers.get("location", "") if response.status in REDIRECTS else ""
            if not location:
                return response
            hop = self._next_hop(url, hop, location, linked_from)
            untrusted = untrusted or _origin(hop) != _origin(url)
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects")

    @staticmethod
    def _next_hop(url: str, hop: str, location: str, linked_from: str) -> str:
        """Where a redirect points, refused (naming the URL asked for) when the policy forbids it."""
        try:
            target = urljoin(hop, location.strip())
            if linked_from:
                check_link(linked_from, target)
            _check_scheme(target)
        except RefusedURL as exc:
            raise RefusedURL(url, f"redirect to {exc.url}: {exc.cause}") from None
        except ValueError as exc:
            raise RefusedURL(url, f"redirect to an invalid URL {location!r}: {exc}") from None
        return target

    def _get_once(self, url: str, headers: dict[str, str], client: httpx.Client) -> Response:
        self._counts.sent = self.requests_sent + 1
        try:
            with client.stream("GET", url, headers=headers) as stream:
                response_headers = {k.lower(): v for k, v in stream.headers.items()}
                content = b"" if stream.status_code in REDIRECTS else self._body(url, stream, response_headers)
                return Response(url=str(stream.url), status=stream.status_code, content=content,
                                headers=response_headers)
        except httpx.TimeoutException as exc:
            if deadline_passed():
                raise SourceTimeout(url, f"timed out: no complete answer (connect, headers and body) within "
                                         f"{self.settings.total_timeout}s") from exc
            raise SourceTimeout(url, f"timed out ({type(exc).__name__})") from exc
        except RefusedURL as exc:  # raised by the link policy where the connection is opened
            raise RefusedURL(url, exc.cause) from None
        except httpx.HTTPError as exc:
            raise FetchError(url, f"{type(exc).__name__}: {exc}") from exc
        except (httpx.InvalidURL, UnicodeError) as exc:  # a link from a feed: control characters, bad IDNA label
            raise RefusedURL(url, f"invalid URL: {exc}") from exc

    def _body(self, url: str, stream: httpx.Response, headers: dict[str, str]) -> bytes:
        """The decoded body, stopped as soon as the raw or the decoded bytes pass ``max_body_bytes``."""
        limit = self.settings.max_body_bytes
        encoding = headers.get("content-encoding", "")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit and not encoding:
            raise BodyTooLarge(url, f"body of {declared} bytes exceeds the limit of {limit} bytes")
        decoded = bytearray()
        for piece in _decoded(url, encoding, _capped(url, stream.iter_raw(), limit), limit):
            decoded += piece
            if len(decoded) > limit:
                raise BodyTooLarge(url, f"body exceeds the limit of {limit} bytes (decoded)")
        return bytes(decoded)

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
        if value.isascii() and value.isdigit():  # "²" and "١٢" are digits to str.isdigit, not to HTTP
            seconds = float(value)
        else:
            try:
                seconds = parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError, OverflowError):
                return None
        return min(max(seconds, 0.0), self.settings.backoff_max_seconds)


def _check_scheme(url: str) -> None:
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:  # "http://[::1": a broken link from a feed
        raise RefusedURL(url, f"invalid URL: {exc}") from None
    if scheme not in ("http", "https"):
        raise RefusedURL(url, "only http and https URLs are fetched")


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as a browser's same-origin rule compares them."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _capped(url: str, chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The raw chunks, stopped past ``limit`` bytes (an encoded body is bounded too)."""
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(url, f"body exceeds the limit of {limit} bytes")
        yield chunk


def _decoded(url: str, content_encoding: str, chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The body decoded chunk by chunk, each chunk's output capped at ``limit + 1`` bytes.

    zlib's ``max_length`` stops inflating as soon as the cap is reached, so a bomb costs at most
    ``limit`` bytes of memory, however small its input. One layer of gzip or deflate is decoded;
    we ask for no more ("Accept-Encoding: gzip, deflate"), so anything else is refused.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if not codings:
        yield from chunks
        return
    if len(codings) > 1:
        raise UnsupportedEncoding(url, f"stacked content encodings {content_encoding!r} are refused")
    if codings[0] not in _ZLIB_WBITS:
        raise UnsupportedEncoding(url, f"content encoding {codings[0]!r} is not supported")
    inflater = zlib.decompressobj(_ZLIB_WBITS[codings[0]])
    try:
        for chunk in chunks:
            yield inflater.decompress(chunk, limit + 1)
        yield inflater.flush()
    except zlib.error as exc:
        raise FetchError(url, f"corrupt {codings[0]} body: {exc}") from None
