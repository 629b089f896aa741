"""httpx transports whose connections keep one deadline per exchange and, when asked, a link policy.

Why below httpx: httpx's timeouts apply to each socket operation, so a server
that sends a header byte every second is never timed out. Here every connect,
read, write and TLS handshake is given at most what is left of the exchange's
deadline (``deadline()``), so connect + headers + body together cannot outlast
``http.total_timeout``. And the address check of ``LinkPolicy`` runs where the
socket is opened, on the address actually connected to.
"""

from __future__ import annotations

import math
import ssl
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

from monitor.fetch.links import LinkPolicy

_DEADLINE: ContextVar[float] = ContextVar("http_deadline", default=math.inf)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every connection operation in this block (this thread) ends ``seconds`` from now at the latest."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def deadline_passed() -> bool:
    return time.monotonic() >= _DEADLINE.get()


def _left(timeout: float | None, expired: type[Exception]) -> float:
    """``timeout`` cut to what is left of the deadline; ``expired`` when nothing is left."""
    left = _DEADLINE.get() - time.monotonic()
    if left <= 0:
        raise expired("the exchange's total deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """TCP connections under the deadline; with a policy, only to the addresses it allows."""

    def __init__(self, policy: LinkPolicy | None) -> None:
        self._policy = policy

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.NetworkStream:
        address = self._policy.address_for(host, port) if self._policy else host
        stream = super().connect_tcp(address, port, _left(timeout, httpcore.ConnectTimeout), local_address,
                                     socket_options)
        return _DeadlineStream(stream)


def guarded_transport(policy: LinkPolicy | None = None) -> httpx.HTTPTransport:
    """An HTTPTransport on the guarded backend (httpx has no public parameter for the backend)."""
    transport = httpx.HTTPTransport()
    transport._pool._network_backend = _GuardedBackend(policy)  # httpcore==1.0.9, pinned for this
    return transport
