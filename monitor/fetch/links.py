"""Where a URL found in a document, or a redirect a stranger sent, may lead.

A feed item's link and every ``Location`` a server answers with are written by
someone else. Followed blindly they reach what only this machine can reach: a
cloud metadata service (169.254.169.254), an admin port on localhost, the LAN.
Two checks guard them:

* ``check_link`` (pure): http(s) only, on the document's site, on the same
  scheme and port as the document (http on 80 and https on 443 count as the
  same web server: the one change allowed);
* ``LinkPolicy.address_for`` (at connect time, so a DNS answer cannot change
  between the check and the connection): every address the host resolves to
  must be public, unless the policy was built with an explicit allowance
  (an intranet mirror; the tests' 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

from monitor.errors import RefusedURL

_SERVICE_LABELS = ("www.", "ir.", "investors.", "investor.", "news.", "feeds.", "rss.", "press.")
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def check_link(origin: str, link: str) -> None:
    """Refuse ``link`` unless it is http(s), on ``origin``'s site, scheme and port.

    The site is the origin's host without a leading www./ir./investors./news./feeds.
    label; a link must be on that host or below it. Without a public-suffix list
    this is deliberately strict: ir.company.com may link to www.company.com, but
    company.co.uk may not link to attacker.co.uk. The port is compared too: a
    link to the same host on another port reaches another service.
    """
    try:
        parts, base = urlsplit(link), urlsplit(origin)
        host = (parts.hostname or "").lower().rstrip(".")
        site = _site(base.hostname or "")
        where, home = _scheme_port(parts), _scheme_port(base)
    except ValueError as exc:
        raise RefusedURL(link, f"malformed feed link: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise RefusedURL(link, f"feed link scheme {parts.scheme or '(none)'!r} is not http(s)")
    if host != site and not host.endswith("." + site):
        raise RefusedURL(link, f"feed link leaves the feed's site {site}")
    if where != home and not (_default_port(where) and _default_port(home)):
        raise RefusedURL(link, f"feed link goes to {where[0]} port {where[1]}, not the feed's {home[0]} port {home[1]}")


def _scheme_port(parts: SplitResult) -> tuple[str, int]:
    """(scheme, port) with the scheme's default port filled in; ValueError for a port out of range."""
    return parts.scheme, parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def _default_port(scheme_port: tuple[str, int]) -> bool:
    return _DEFAULT_PORTS.get(scheme_port[0]) == scheme_port[1]


def _site(host: str) -> str:
    host = host.lower().rstrip(".")
    for label in _SERVICE_LABELS:
        if host.startswith(label) and host.count(".") >= 2:
            return host[len(label):]
    return host


class LinkPolicy:
    """Which addresses a connection for an untrusted URL may reach: public ones, plus ``allow_private``.

    ``allow_private`` lists addresses or networks ("127.0.0.1", "10.1.0.0/16") that are let through
    although not public; it is empty unless a caller says otherwise, and nothing else widens it.
    """

    def __init__(self, allow_private: Iterable[str] = ()) -> None:
        self.allow_private = tuple(ipaddress.ip_network(entry) for entry in allow_private)

    def address_for(self, host: str, port: int) -> str:
        """The address to connect to for ``host``; RefusedURL when any address it resolves to is off limits.

        Every address is checked, not only the first: a name answering with one public and one
        private address must not get a second try at the private one.
        """
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise RefusedURL(f"{host}:{port}", f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        for address in addresses:
            if not self._allowed(address):
                raise RefusedURL(f"{host}:{port}", f"{host} resolves to {address}, which is not a public address "
                                                   "(loopback, private, link-local or metadata)")
        return str(addresses[0])

    def _allowed(self, address: IPAddress) -> bool:
        mapped = getattr(address, "ipv4_mapped", None) or address  # ::ffff:127.0.0.1 is 127.0.0.1
        return mapped.is_global or any(mapped in network for network in self.allow_private)
