"""E-mail channel: a Message as multipart text + HTML over SMTP (STARTTLS, implicit TLS or plain).

The message is rendered by two jinja2 templates (``templates/alert.txt.j2`` and
``templates/alert.html.j2``) from one view of the message built here, so the
text and HTML parts always say the same thing; ``render_text`` and
``render_html`` are pure and generic enough for the weekly digest. In the HTML
part every piece of untrusted text (titles, reasons, cited sentences) goes
through jinja2's autoescape, and a source URL becomes a link only when it is
http(s).

``Message-ID`` is derived from the message key, so a message resent after a
crash carries the same id and the receiving side can recognise the copy.

Failures become ``DeliveryError``: a refused login, refused recipients and
other 5xx answers are permanent (the same message would be refused again);
connection errors, TLS failures, timeouts, disconnects and 4xx answers are
retryable. The password is never logged, never in ``repr`` and never in an
error's text (it is scrubbed from anything a server says back).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jinja2

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.message import Attachment, Message, Receipt
from monitor.notify.templating import environment

log = logging.getLogger(__name__)

Security = Literal["starttls", "ssl", "none"]
MESSAGE_ID_DOMAIN = "catalyst-monitor"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_CONTENT_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+")
_SEVERITY_COLOURS = {"high": "#b00020", "warning": "#c05600", "medium": "#8a6d00", "info": "#4a4a4a"}


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailSettings:
    """Where and how to send. ``password`` is read by the caller from the environment."""

    host: str
    port: int = 587
    security: Security = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    recipients: Sequence[str] = ()
    timeout: float = 20.0  # seconds, per connect / read / write
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    ca_file: str | Path | None = None  # a PEM bundle to trust instead of the system's
    local_hostname: str | None = None  # EHLO name; None: this machine's FQDN

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if self.security not in ("starttls", "ssl", "none"):
            raise ConfigError(f"email: security must be starttls, ssl or none, not {self.security!r}")
        if not self.host or _CONTROL.search(self.host):
            raise ConfigError("email: host is empty or malformed")
        if not 0 < int(self.port) < 65536:
            raise ConfigError(f"email: port {self.port} is out of range")
        if not self.timeout > 0:
            raise ConfigError(f"email: timeout must be positive, not {self.timeout}")
        _address(self.sender, "sender")
        if not self.recipients:
            raise ConfigError("email: no recipients")
        for recipient in self.recipients:
            _address(recipient, "recipient")
        if self.username and not self.password:
            raise ConfigError("email: a username is set but the password is empty "
                              "(is its environment variable set?)")
        if self.username and self.security == "none" and not _loopback(self.host):
            raise ConfigError(f"email: refusing to send the password unencrypted to {self.host} "
                              "(use security = starttls or ssl)")

    @property
    def envelope_sender(self) -> str:
        return getaddresses([self.sender])[0][1]

    @property
    def envelope_recipients(self) -> list[str]:
        return [address for _, address in getaddresses(list(self.recipients))]


def _address(value: str, what: str) -> None:
    parsed = getaddresses([value]) if value else []
    if not value or _CONTROL.search(value) or len(parsed) != 1 or "@" not in parsed[0][1]:
        raise ConfigError(f"email: {what} {value!r} is not one e-mail address")


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- rendering --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return environment({"num": _number})


def render_text(message: Message) -> str:
    """The plain-text body: headline, what changed, why, cited sentences with source and date."""
    return _environment().get_template("alert.txt.j2").render(_view(message))


def render_html(message: Message) -> str:
    """The HTML body (every untrusted string escaped); inline images by ``cid:`` for image attachments."""
    return _environment().get_template("alert.html.j2").render(_view(message))


def _view(message: Message) -> dict[str, Any]:
    """What both templates show, cleaned once: one line per untrusted string, links only for http(s)."""
    shows_alerts = message.kind not in ("test", "source")
    return {
        "kind": message.kind,
        "subject": _line(message.subject),
        "text": message.text.strip() if message.text else "",
        "alerts": [_alert_view(alert) for alert in message.alerts] if shows_alerts else [],
        "images": [{"cid": _content_id(a), "filename": _line(a.filename)}
                   for a in message.attachments if a.content_type.lower().startswith("image/")],
    }


def _alert_view(alert: dict[str, Any]) -> dict[str, Any]:
    severity = _line(alert["severity"]).lower()
    changes = [{
        "name": _line(change.get("name") or change.get("pillar", "")),
        "before": change.get("before"), "after": change.get("after"),
        "direction": _line(change.get("direction", "")), "severity": _line(change.get("severity", "")),
    } for change in alert.get("changes") or ()]
    if not changes and alert.get("before") != alert.get("after"):
        changes = [{"name": _line(alert.get("pillar", "")), "before": alert.get("before"),
                    "after": alert.get("after"), "direction": _line(alert["direction"]),
                    "severity": severity}]
    return {
        "company": _line(alert.get("company") or alert["ticker"]),
        "ticker": _line(alert["ticker"]),
        "thesis": _line(alert["thesis"]),
        "direction": _line(alert["direction"]).lower(),
        "severity": severity,
        "colour": _SEVERITY_COLOURS.get(severity, "#4a4a4a"),
        "title": _line(alert["title"]),
        "as_of": _line(alert.get("as_of") or ""),
        "changes": changes,
        "reasons": [_line(reason) for reason in alert.get("reasons") or ()],
        "evidence": [{
            "sentence": _line(item.get("sentence", "")),
            "filing": _line(item.get("filing", "")),
            "url": _line(item.get("url", "")),
            "href": _http_url(item.get("url", "")),
            "date": "" if str(item.get("date", "")).startswith("0001-") else _line(item.get("date", "")),
        } for item in alert.get("evidence") or ()],
    }


def _line(value: Any) -> str:
    """Untrusted text on one line: control characters and line breaks become single spaces."""
    return " ".join(_CONTROL.sub(" ", str(value)).split())


def _http_url(url: Any) -> str | None:
    text = str(url or "").strip()
    if not text or _CONTROL.search(text) or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def _number(value: Any) -> str:
    if isinstance(value, (int, float)):
        text = f"{value:.1f}"
        return text[:-2] if text.endswith(".0") else text
    return _line(value) if value is not None else "–"


def _content_id(attachment: Attachment) -> str:
    cid = attachment.content_id.strip().strip("<>")
    if not _CONTENT_ID.fullmatch(cid):
        raise ValueError(f"{attachment.filename!r}: malformed content id {attachment.content_id!r}")
    return cid


# --- the message ------------------------------------------------------------------------------


def message_id(key: str) -> str:
    """``<key@catalyst-monitor>``: the same key always gives the same id (hashed when not a dot-atom)."""
    atom = bool(_DOT_ATOM.fullmatch(key)) and ".." not in key and not key.startswith(".") \
        and not key.endswith(".")
    local = key if atom else hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{local}@{MESSAGE_ID_DOMAIN}>"


def build_message(message: Message, settings: EmailSettings) -> EmailMessage:
    """multipart/alternative (text, HTML); image attachments inline in a multipart/related with the HTML."""
    mail = EmailMessage()
    mail["From"] = settings.sender
    mail["To"] = ", ".join(settings.recipients)
    mail["Subject"] = _line(message.subject) or "(no subject)"
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = message_id(message.key)
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the monitor
    mail.set_content(render_text(message), subtype="plain", charset="utf-8")
    digest_html = _digest_html(message)
    mail.add_alternative(digest_html or render_html(message), subtype="html", charset="utf-8")
    html_part = mail.get_payload()[1]
    for attachment in message.attachments:
        if digest_html and attachment.content_type == "text/html":
            continue  # the digest's HTML (with cid: images) is the HTML alternative itself
        maintype, _, subtype = attachment.content_type.lower().partition("/")
        if not subtype:
            raise ValueError(f"attachment {attachment.filename!r}: content type {attachment.content_type!r}")
        if maintype == "image":
            html_part.add_related(attachment.data, maintype, subtype, cid=f"<{_content_id(attachment)}>",
                                  disposition="inline", filename=_line(attachment.filename))
        else:
            mail.add_attachment(attachment.data, maintype, subtype, filename=_line(attachment.filename))
    return mail


def _digest_html(message: Message) -> str | None:
    """The weekly digest carries its own HTML (images as cid: references) as an attachment."""
    if message.kind != "digest":
        return None
    from monitor.notify.digest import digest_html

    return digest_html(message)


# --- SMTP -------------------------------------------------------------------------------------


class _KeepsDataReply:
    """smtplib's sendmail drops the server's answer to DATA (the queue id); keep it for the receipt."""

    data_reply: tuple[int, bytes] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        reply = super().data(msg)  # type: ignore[misc]
        self.data_reply = reply
        return reply


class _SMTP(_KeepsDataReply, smtplib.SMTP):
    pass


class _SMTPSSL(_KeepsDataReply, smtplib.SMTP_SSL):
    pass


class EmailChannel:
    """The Channel for e-mail: one SMTP session per message."""

    name = "email"

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        self._context: ssl.SSLContext | None = None
        if settings.security != "none":
            if settings.ssl_context is not None:
                self._context = settings.ssl_context
            else:
                try:
                    self._context = ssl.create_default_context(cafile=settings.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(f"email: cannot load CA file {settings.ca_file}: {exc}") from exc

    def __repr__(self) -> str:
        return f"EmailChannel({self.settings!r})"

    def send(self, message: Message) -> Receipt:
        try:
            mail = build_message(message, self.settings)
        except (jinja2.TemplateError, KeyError, TypeError, ValueError) as exc:
            raise DeliveryError(self.name, f"cannot build message {message.key}: "
                                           f"{type(exc).__name__}: {self._scrub(str(exc))}",
                                permanent=True) from exc
        return self._deliver(mail)

    def _deliver(self, mail: EmailMessage) -> Receipt:
        s = self.settings
        where = f"{s.host}:{s.port}"
        client: Any = None
        step = "connect"
        delivered = False
        try:
            if s.security == "ssl":
                client = _SMTPSSL(s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout,
                                  context=self._context)
            else:
                client = _SMTP(s.host, s.port, local_hostname=s.local_hostname, timeout=s.timeout)
            step = "EHLO"
            client.ehlo()
            if s.security == "starttls":
                step = "STARTTLS"
                client.starttls(context=self._context)
                client.ehlo()
            if s.username:
                step = "login"
                client.login(s.username, s.password)
            step = "send"
            refused = client.send_message(mail, from_addr=s.envelope_sender, to_addrs=s.envelope_recipients)
            reply = client.data_reply
            delivered = True
        except (smtplib.SMTPException, OSError) as exc:
            error = self._error(exc, step, where)
            # The login step's exceptions carry what the server said about the credentials: not chained.
            raise error from (None if step == "login" else exc)
        finally:
            if client is not None:
                _close(client, polite=delivered)
        detail = f"message-id {mail['Message-ID']}"
        if refused:
            listing = ", ".join(f"{address} ({code})" for address, (code, _) in sorted(refused.items()))
            detail += f"; refused: {listing}"
            log.warning("email %s: some recipients refused: %s", mail["Message-ID"], listing)
        status = f"{reply[0]} {reply[1].decode('utf-8', 'replace')}" if reply else "sent"
        return Receipt(self.name, self._scrub(_line(status)), detail)

    def _error(self, exc: BaseException, step: str, where: str) -> DeliveryError:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            listing = ", ".join(f"{address}: {code} {_text(answer)}" for address, (code, answer)
                                in sorted(exc.recipients.items()))
            # Every recipient refused: permanent, unless each refusal was temporary (4xx, e.g. greylisting).
            permanent = not all(400 <= code < 500 for code in codes)
            return DeliveryError(self.name, self._scrub(f"{where}: recipients refused: {listing}"),
                                 permanent=permanent)
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            cause = f"{where}: {step} refused: {code} {_text(exc.smtp_error)}"
            if isinstance(exc, smtplib.SMTPAuthenticationError):
                cause = f"{where}: login as {self.settings.username} refused: {code} {_text(exc.smtp_error)}"
                # 454 is a temporary authentication failure; anything else means the credentials are wrong.
                return DeliveryError(self.name, self._scrub(cause), permanent=not 400 <= code < 500)
            return DeliveryError(self.name, self._scrub(cause), permanent=500 <= code < 600)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            # The server does not offer STARTTLS / AUTH / SMTPUTF8: the configuration does not match it.
            return DeliveryError(self.name, self._scrub(f"{where}: {step}: {exc}"), permanent=True)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return DeliveryError(self.name, self._scrub(f"{where}: {step}: server disconnected: {exc}"))
        if isinstance(exc, smtplib.SMTPException):
            # e.g. "No suitable authentication method found": retrying cannot help at login.
            return DeliveryError(self.name, self._scrub(f"{where}: {step}: {exc}"), permanent=step == "login")
        if isinstance(exc, TimeoutError):
            return DeliveryError(self.name, f"{where}: {step}: timed out after {self.settings.timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return DeliveryError(self.name, self._scrub(f"{where}: {step}: TLS failed: {exc}"))
        return DeliveryError(self.name, self._scrub(f"{where}: {step}: {type(exc).__name__}: {exc}"))

    def _scrub(self, text: str) -> str:
        """Remove the password, plain or as AUTH LOGIN / PLAIN send it in base64, from text we keep."""
        s = self.settings
        if not s.password:
            return text
        secrets = {s.password}
        for raw in (s.password, f"\0{s.username}\0{s.password}", f"{s.username}\0{s.username}\0{s.password}"):
            encoded = base64.b64encode(raw.encode()).decode()
            secrets.update({encoded, encoded.rstrip("=")})
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _text(answer: bytes | str) -> str:
    return _line(answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer)


def _close(client: smtplib.SMTP, polite: bool) -> None:
    """QUIT after a delivered message (a failing QUIT changes nothing: the server has it), then close."""
    try:
        if polite and client.sock is not None:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
