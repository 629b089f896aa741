"""Real SMTP servers on 127.0.0.1 for tests (aiosmtpd), recording what they received.

``SMTPServer(mode=...)`` runs one aiosmtpd server in its own thread on a free
port of 127.0.0.1:

* ``"plain"``    no TLS at all;
* ``"starttls"`` TLS offered with STARTTLS and required before MAIL/AUTH (``require_starttls``);
* ``"ssl"``      implicit TLS from the first byte (SMTPS).

With ``auth=True`` the server offers AUTH (LOGIN and PLAIN, or only the ones
named in ``mechanisms``) and accepts exactly ``USER`` / ``PASSWORD`` through
aiosmtpd's ``authenticator`` hook; every attempt is recorded in ``auth_attempts``.
Every accepted message is recorded in ``messages`` with its envelope, parsed
with ``email.message_from_bytes(..., policy=email.policy.default)``.

``reply_rcpt`` / ``reply_data`` script an SMTP answer (``"550 5.1.1 No such user"``,
``"451 4.3.0 Try later"``) for RCPT or DATA, so tests can play a refusing server.

TLS certificates come from a ``trustme`` CA (``TestCA``): the server gets a
certificate for 127.0.0.1 and localhost, the client trusts the CA through an
``ssl.SSLContext`` (``client_context()``) or a PEM file (``write_ca()``).
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "alerts@catalyst.test"
PASSWORD = "s3cret-Pa55word-never-logged"

Mode = Literal["plain", "starttls", "ssl"]


class TestCA:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context

    def write_ca(self, path: Path) -> Path:
        self.ca.cert_pem.write_to_path(str(path))
        return path


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    tls: bool  # the session was encrypted (STARTTLS or SMTPS) when DATA arrived
    authenticated: bool


@dataclass(frozen=True)
class AuthAttempt:
    mechanism: str
    login: str
    success: bool


class _Handler:
    def __init__(self, server: "SMTPServer") -> None:
        self.server = server

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if self.server.reply_rcpt:
            return self.server.reply_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.reply_data:
            return self.server.reply_data
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        # Under STARTTLS the transport is the TLS one from the upgrade on; under SMTPS it always was.
        tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        with self.server.lock:
            self.server.messages.append(Received(
                mail_from=envelope.mail_from or "", rcpt_tos=tuple(envelope.rcpt_tos), raw=raw,
                message=parsed, tls=tls, authenticated=bool(session.authenticated),
            ))
            number = len(self.server.messages)
        return f"250 2.0.0 Ok: queued as TEST{number:04d}"


class _Controller(Controller):
    """aiosmtpd's Controller on port 0: the real port is read back before the start-up probe."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SMTPServer:
    def __init__(self, mode: Mode = "plain", *, auth: bool = False, ca: TestCA | None = None,
                 mechanisms: tuple[str, ...] = ("LOGIN", "PLAIN"), reply_rcpt: str = "",
                 reply_data: str = "") -> None:
        if mode != "plain" and ca is None:
            raise ValueError(f"mode {mode!r} needs a TestCA")
        self.mode = mode
        self.messages: list[Received] = []
        self.auth_attempts: list[AuthAttempt] = []
        self.reply_rcpt = reply_rcpt
        self.reply_data = reply_data
        self.lock = threading.Lock()
        smtp_kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0, "ready_timeout": 5.0}
        if mode == "starttls":
            assert ca is not None
            smtp_kwargs.update(tls_context=ca.server_context(), require_starttls=True)
        elif mode == "ssl":
            assert ca is not None
            smtp_kwargs.update(ssl_context=ca.server_context())
        if auth:
            excluded = [m for m in ("LOGIN", "PLAIN") if m not in mechanisms]
            # aiosmtpd only knows about STARTTLS: under implicit TLS (SMTPS) the whole session is
            # encrypted but it would still refuse AUTH if told to require TLS for it.
            smtp_kwargs.update(authenticator=self._authenticate, auth_require_tls=mode == "starttls",
                               auth_exclude_mechanism=excluded)
        self.controller = _Controller(_Handler(self), **smtp_kwargs)
        self._started = False

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() \
            and auth_data.password == PASSWORD.encode()
        login = auth_data.login.decode(errors="replace") if isinstance(auth_data, LoginPassword) else ""
        with self.lock:
            self.auth_attempts.append(AuthAttempt(mechanism, login, ok))
        return AuthResult(success=ok, handled=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> "SMTPServer":
        self.controller.start()
        self._started = True
        return self

    def close(self) -> None:
        if self._started:
            self._started = False
            self.controller.stop()

    def __enter__(self) -> "SMTPServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
