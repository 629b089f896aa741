"""HTTP-behaviour targets for bench/fuzz.py: what a hostile server can do to ``HttpClient.get``.

Each target reads its input with atheris' FuzzedDataProvider, scripts a real local server
(tests/servers.py, on 127.0.0.1) to answer that way, and asks the client once:

* ``http_encoding``: Content-Encoding headers (stacked, unknown, garbage) over bodies encoded zero,
  one or two times, against a small ``max_body_bytes``;
* ``http_redirects``: chains of up to 7 hops whose Location is relative, absolute, on another port,
  to localhost, the metadata address, a file: URL or fuzzed text, with or without ``linked_from``;
* ``http_timing``: a stall before answering and header lines and body pieces that dribble, against a
  short total deadline;
* ``http_retry_after``: 429 and 503 with fuzzed Retry-After values, then an answer.

The contract, as for the parsers: ``get`` returns, or raises a MonitorError naming the URL asked for;
and no wait between attempts is longer than ``backoff_max_seconds``, whatever Retry-After says.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Callable

import atheris

from monitor.config import HttpSettings
from monitor.fetch.http import HttpClient
from monitor.fetch.limiter import RateLimiter
from monitor.fetch.links import LinkPolicy
from tests.servers import FixtureServer, Reply

USER_AGENT = "Catalyst Monitor Fuzz fuzz@example.com"
SERVER = FixtureServer().__enter__()  # lives as long as the fuzzing process
MAX_WAIT = 0.5  # backoff_max_seconds: the longest wait between attempts the client may choose
WAITS: list[float] = []
_PATHS = itertools.count()
_CODINGS = ["gzip", "deflate", "x-gzip", "identity", "br", "zstd", "gzip, gzip", "gzip, identity", "deflate, gzip",
            "GZIP", " gzip ", ",", "compress", ""]


def _client(**settings: float) -> HttpClient:
    base = {"connect_timeout": 0.2, "read_timeout": 0.2, "total_timeout": 0.3, "max_body_bytes": 65_536,
            "max_retries": 1, "backoff_base_seconds": 0.0, "backoff_max_seconds": MAX_WAIT,
            "other_hosts_per_second": 100_000.0}
    return HttpClient(HttpSettings(**{**base, **settings}), USER_AGENT, sec_hosts=[],  # type: ignore[arg-type]
                      sec_limiter=RateLimiter(100_000), link_policy=LinkPolicy(["127.0.0.1"]),
                      sleep=WAITS.append)


CLIENT = _client()
QUICK = _client(total_timeout=0.1, max_retries=0)


def _path() -> str:
    return f"/fuzz/{next(_PATHS)}"


def _text(fdp: atheris.FuzzedDataProvider, size: int) -> str:
    """Printable ASCII: what http.server can put in a header line."""
    return "".join(c for c in fdp.ConsumeUnicodeNoSurrogates(size) if 32 <= ord(c) < 127)


def _encoded(body: bytes, layers: int, deflate: bool) -> bytes:
    for _ in range(layers):
        body = zlib.compress(body) if deflate else gzip.compress(body)
    return body


def _ask(path: str, linked_from: str = "", client: HttpClient = CLIENT) -> str:
    """GET the scripted path; its URL is what an error must name."""
    url = SERVER.url + path
    client.get(url, linked_from=linked_from)
    return url


def http_encoding(data: bytes) -> str:
    fdp = atheris.FuzzedDataProvider(data)
    coding = fdp.PickValueInList(_CODINGS) if fdp.ConsumeBool() else _text(fdp, 20)
    layers = fdp.ConsumeIntInRange(0, 2)
    size = fdp.ConsumeIntInRange(0, 300_000)
    body = _encoded(fdp.ConsumeBytes(200) * max(1, size // 200), layers, fdp.ConsumeBool())
    path = _path()
    SERVER.route(path, Reply(200, body, {"Content-Type": "text/html", "Content-Encoding": coding}))
    return _ask(path)


def _location(fdp: atheris.FuzzedDataProvider, next_path: str) -> str:
    port = SERVER.httpd.server_address[1]
    choices: list[Callable[[], str]] = [
        lambda: next_path, lambda: SERVER.url + next_path, lambda: f"http://localhost:{port}{next_path}",
        lambda: f"http://127.0.0.1:1{next_path}", lambda: "http://169.254.169.254/latest/meta-data/",
        lambda: f"http://[::1]:{port}{next_path}", lambda: "file:///etc/passwd", lambda: _text(fdp, 40),
        lambda: "", lambda: f"https://127.0.0.1:{port}{next_path}",
    ]
    return fdp.PickValueInList(choices)()


def http_redirects(data: bytes) -> str:
    fdp = atheris.FuzzedDataProvider(data)
    paths = [_path() for _ in range(fdp.ConsumeIntInRange(1, 7))]
    for here, there in zip(paths, paths[1:] + [paths[0]]):
        status = fdp.PickValueInList([301, 302, 303, 307, 308, 200, 304, 404, 500])
        SERVER.route(here, Reply(status, b"<p>moved</p>", {"Location": _location(fdp, there), "Content-Type": "text/html"}))
    linked_from = SERVER.url + "/feed.rss" if fdp.ConsumeBool() else ""
    return _ask(paths[0], linked_from)


def http_timing(data: bytes) -> str:
    fdp = atheris.FuzzedDataProvider(data)
    headers = {f"X-Pad-{i}": _text(fdp, 8) for i in range(fdp.ConsumeIntInRange(0, 12))}
    body = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4096))
    reply = Reply(200, body, {"Content-Type": "text/plain", **headers}, delay=fdp.ConsumeIntInRange(0, 150) / 1000,
                  drip=fdp.ConsumeIntInRange(0, 10) / 1000)
    path = _path()
    SERVER.route(path, reply)
    return _ask(path, client=QUICK)


def http_retry_after(data: bytes) -> str:
    fdp = atheris.FuzzedDataProvider(data)
    value = fdp.PickValueInList(["99999999999999", "-1", "0", "1e9", "Fri, 31 Dec 9999 23:59:59 GMT",
                                 "Mon, 01 Jan 1900 00:00:00 GMT", "²", "9" * 400]) if fdp.ConsumeBool() else _text(fdp, 40)
    first = Reply(fdp.PickValueInList([429, 503, 500]), b"slow down", {"Retry-After": value})
    path = _path()
    SERVER.route(path, first, Reply(200, b"ok", {"Content-Type": "text/plain"}))
    del WAITS[:]
    try:
        return _ask(path)
    finally:
        assert all(0 <= wait <= MAX_WAIT for wait in WAITS), f"Retry-After {value!r} made the client wait {WAITS}"


# name → (run: bytes → the URL its errors must name, seed inputs)
HTTP_TARGETS: list[tuple[str, Callable[[bytes], object], list[bytes]]] = [
    ("http_encoding", http_encoding, [bytes(range(256)), b"\x01\x00" * 64]),
    ("http_redirects", http_redirects, [bytes(range(0, 256, 3)), b"\x03" + b"\x00\x01" * 40]),
    ("http_timing", http_timing, [bytes(range(256)), b"\x05" * 100]),
    ("http_retry_after", http_retry_after, [b"\x01" * 32, bytes(range(64))]),
]
