"""A real webhook receiver on 127.0.0.1 for delivery tests: scripted answers, recorded POSTs.

``FixtureServer`` (tests/servers.py) plays sources and only answers GET; this
one plays the other end of a channel: Slack's incoming webhooks, or any
receiver or proxy in front of one. Every request is recorded as it arrived
(``requests``, raw deliveries, retries and duplicates included); a request
the receiver *accepted* (2xx) is also recorded once per ``X-Idempotency-Key``
(``unique_keys()``, ``accepted()``), as a receiver that honours the key would
process it. Answers are scripted in order and the last one does not repeat:
once the script is used up every request gets 200 ``ok``.

    with WebhookReceiver() as hook:
        hook.script(Answer(429, retry_after="7"), 500)   # then 200 ok
        ... post to hook.url + "/services/T000/B000/xyz" ...
        assert hook.unique_keys() == ["k1"]
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import LocalHTTPServer

IDEMPOTENCY_HEADER = "X-Idempotency-Key"

# What Slack's incoming webhooks put in the body of each status.
_BODIES = {200: b"ok", 400: b"invalid_payload", 403: b"invalid_token", 404: b"no_service",
           410: b"channel_is_archived", 429: b"rate_limited", 500: b"rollup_error",
           503: b"service_unavailable"}


@dataclass(frozen=True)
class Answer:
    """One scripted answer. ``delay`` stalls before the status line (a hung receiver)."""

    status: int = 200
    body: bytes | None = None  # None: Slack's usual body for the status
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None  # sent as Retry-After; a bare 429 gets "1"
    delay: float = 0.0

    def header_items(self) -> list[tuple[str, str]]:
        items = list(self.headers.items())
        retry_after = self.retry_after
        if retry_after is None and self.status == 429:
            retry_after = "1"
        if retry_after is not None:
            items.append(("Retry-After", retry_after))
        return items

    def payload(self) -> bytes:
        return self.body if self.body is not None else _BODIES.get(self.status, b"error")


@dataclass
class Delivery:
    """One request as the receiver saw it, recorded on arrival (before any scripted stall)."""

    time: float
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int = 0  # what the receiver answered; 0 while stalled, or when it never answered

    @property
    def key(self) -> str:
        return self.headers.get(IDEMPOTENCY_HEADER.lower(), "")

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, *, dedupe: bool = True) -> None:
        self.dedupe = dedupe
        self.requests: list[Delivery] = []  # every request, in arrival order
        self._accepted: dict[str, Delivery] = {}  # first accepted delivery per idempotency key
        self._unkeyed: list[Delivery] = []  # accepted deliveries without a key (never deduplicated)
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()  # wakes stalled handlers at exit
        self.httpd = LocalHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def script(self, *answers: int | Answer) -> None:
        """Queue answers, in order, after any still queued: a status code or an Answer."""
        with self._lock:
            self._script.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def unique_keys(self) -> list[str]:
        """Idempotency keys of accepted deliveries, each once, in the order first accepted."""
        with self._lock:
            return list(self._accepted)

    def accepted(self) -> list[Delivery]:
        """Accepted deliveries as a deduplicating receiver processes them: one per key."""
        with self._lock:
            return sorted([*self._accepted.values(), *self._unkeyed], key=lambda d: d.time)

    def _next_answer(self) -> Answer:
        with self._lock:
            return self._script.popleft() if self._script else Answer(200)

    def _arrived(self, delivery: Delivery) -> None:
        with self._lock:
            self.requests.append(delivery)

    def _answered(self, delivery: Delivery, status: int) -> None:
        with self._lock:
            delivery.status = status
            if not 200 <= status < 300:
                return
            if not delivery.key or not self.dedupe:
                self._unkeyed.append(delivery)
            else:
                self._accepted.setdefault(delivery.key, delivery)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self) -> None:
                arrived = time.monotonic()
                body = self._read_body()
                headers = {name.lower(): value for name, value in self.headers.items()}
                delivery = Delivery(arrived, self.command, self.path, headers, body)
                receiver._arrived(delivery)
                answer = receiver._next_answer()
                if answer.delay and receiver._closing.wait(answer.delay):
                    self.close_connection = True  # shutting down: never answer
                    return
                receiver._answered(delivery, answer.status)
                payload = answer.payload()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.header_items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_POST = do_PUT = _answer  # noqa: N815 (http.server's naming)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
