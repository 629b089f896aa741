"""Real HTTP servers on 127.0.0.1 for tests: scripted answers, recorded requests.

A route maps a path (with or without its query string) to a list of Reply
objects served in turn; the last one repeats. Regex routes serve families of
paths (every filing index, say). Every request is recorded with its arrival
time and headers so tests can assert on what the server actually saw.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable


class LocalHTTPServer(ThreadingHTTPServer):
    """A threading server that takes a client dropping its connection (a killed process) in silence."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to stall before answering
    drip: float = 0.0  # seconds between header lines and between body pieces: a server that dribbles
    etag: str = ""  # when set, answer 304 to a matching If-None-Match

    @classmethod
    def file(cls, path: Path, content_type: str, **kwargs: object) -> "Reply":
        return cls(body=path.read_bytes(), headers={"Content-Type": content_type}, **kwargs)  # type: ignore[arg-type]


@dataclass
class Seen:
    time: float
    path: str
    headers: dict[str, str]


class FixtureServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.patterns: list[tuple[re.Pattern[str], Callable[[re.Match[str]], Reply]]] = []
        self.requests: list[Seen] = []
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        handler = self._handler()
        self.httpd = LocalHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def route(self, path: str, *replies: Reply) -> None:
        self.routes[path] = list(replies)

    def route_pattern(self, pattern: str, make: Callable[[re.Match[str]], Reply]) -> None:
        self.patterns.append((re.compile(pattern), make))

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def _reply_for(self, path: str) -> Reply:
        with self._lock:
            for key in (path, path.split("?")[0]):
                if key in self.routes:
                    replies = self.routes[key]
                    n = self._served.get(key, 0)
                    self._served[key] = n + 1
                    return replies[min(n, len(replies) - 1)]
        for pattern, make in self.patterns:
            match = pattern.search(path)
            if match:
                return make(match)
        return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with server._lock:
                    server.requests.append(Seen(time.monotonic(), self.path, dict(self.headers)))
                reply = server._reply_for(self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.etag and self.headers.get("If-None-Match") == reply.etag:
                    self.send_response(304)
                    self.send_header("ETag", reply.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    self._answer(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _answer(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self._dribble(reply.drip)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                    self._dribble(reply.drip)
                if reply.etag:
                    self.send_header("ETag", reply.etag)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                pieces = 16 if reply.drip else 1
                step = max(1, -(-len(reply.body) // pieces))
                for start in range(0, len(reply.body), step):
                    self.wfile.write(reply.body[start:start + step])
                    self._dribble(reply.drip)

            def _dribble(self, seconds: float) -> None:
                """Send what is buffered and wait: each header line or body piece arrives on its own."""
                if seconds:
                    self.flush_headers()
                    self.wfile.flush()
                    time.sleep(seconds)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def __enter__(self) -> "FixtureServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
