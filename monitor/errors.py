"""One exception tree for the whole monitor, so callers catch one base class.

    MonitorError
    ├── ConfigError            bad or missing configuration (start-up errors)
    ├── FetchError             a source could not be fetched (url + cause)
    │   ├── RateLimited        the server asked us to slow down (429 / SEC threshold page)
    │   ├── SourceTimeout      connect/read/total deadline passed
    │   ├── BodyTooLarge       the body exceeded the configured maximum (decoded)
    │   ├── UnsupportedEncoding  stacked or unknown Content-Encoding: never decoded, never retried
    │   ├── NotFound           404/410: retrying will not help
    │   └── RefusedURL         a link or redirect we will not follow (file://, another site or port,
    │                          a private address)
    ├── ParseError             bytes arrived but are not what the source promised
    ├── StoreError             the database refused a write
    ├── NoData                 a computation lacks the data it needs (no price series, too few returns)
    └── DeliveryError          a channel (Slack, e-mail) did not take a message

Third-party exceptions are converted at the edge with the cause kept
(``raise FetchError(url, str(exc)) from exc``) so the daemon logs one clear line
per failure and keeps running.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the monitor raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is missing, malformed or inconsistent."""


class FetchError(MonitorError):
    """A request to a source failed; carries the URL and a human cause."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause


class RateLimited(FetchError):
    """The server told us to back off (HTTP 429 or SEC's threshold page)."""


class SourceTimeout(FetchError):
    """The server did not answer (or finish answering) within the deadline."""


class BodyTooLarge(FetchError):
    """The body is larger than ``http.max_body_bytes``; we stop reading it."""


class UnsupportedEncoding(FetchError):
    """The body is sent with stacked or unknown content codings, which we refuse to decode."""


class NotFound(FetchError):
    """The server says the resource does not exist; never retried."""


class RefusedURL(FetchError):
    """A URL we refuse to follow: a file:// link inside a feed, a redirect to another site or port,
    a host that resolves to a private address."""


class ParseError(MonitorError):
    """A payload could not be parsed; carries where it came from and why."""

    def __init__(self, source: str, cause: str) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.cause = cause


class RuleTimeout(MonitorError):
    """A rule's cue ran past its time budget on a text (catastrophic backtracking): the text is not read."""


class StoreError(MonitorError):
    """A database write could not be completed."""


class NoData(MonitorError):
    """The store has not the data a computation needs: a price series, or enough overlapping days."""


class DeliveryError(MonitorError):
    """A channel did not accept a message; ``retry_after`` (seconds) when it said when to retry."""

    def __init__(self, channel: str, cause: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(f"{channel}: {cause}")
        self.channel = channel
        self.cause = cause
        self.retry_after = retry_after
        self.permanent = permanent
