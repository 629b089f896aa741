"""Slack: alerts to an incoming webhook as Block Kit messages.

Why httpx and not slack-sdk: an incoming webhook is one POST of JSON, and httpx
is already the monitor's one HTTP stack, with explicit timeouts (connect 5 s,
read 10 s here) and exceptions we already convert at the edge. slack-sdk's
WebhookClient would add a second stack on urllib with its own timeout model and
its own retry handlers, while retrying belongs to the outbox, which knows the
attempt count, honours Retry-After and keeps the same idempotency key.

``send`` makes exactly one request and never retries:

    200          Receipt("slack", "200 ok")
    429          DeliveryError(retry_after=Retry-After seconds, default 30)
    408, 5xx     DeliveryError (retryable; Retry-After passed on when given)
    timeouts,
    network      DeliveryError (retryable)
    other 4xx,   DeliveryError(permanent=True): a bad payload (400), a revoked or
    3xx          unknown webhook (403, 404, 410); retrying cannot help

Every request carries ``X-Idempotency-Key: <message key>``. Slack ignores it;
a relay or receiver in front of Slack can drop the copy the outbox resends
after a crash between send and settle.

The webhook URL is a secret (whoever holds it can post to the channel). It is
never logged and never put in an exception or a repr: errors name
"slack webhook (https://hooks.slack.com/…)". httpx logs every request URL at
INFO, so a logging filter on the ``httpx`` and ``httpcore`` loggers rewrites
the URLs of the webhooks in use (and any hooks.slack.com/services/… path) to
that form; httpx exceptions are not chained to the DeliveryError because they
carry the request, URL included.

Rendering (``render_blocks``, pure): a header (plain_text, ≤ 150 characters)
with the message subject, then per alert a section with the title and what
changed (each change's pillar name, before → after), a context line with why
(the reasons that fired), and a section quoting the cited sentences
(``>`` lines), each followed by ``<url|source>`` and its date. Test and
source-failure messages render their text in one section.

Text from filings, feeds and rules is untrusted. In every text object:

* ``&``, ``<``, ``>`` become ``&amp;``, ``&lt;``, ``&gt;`` (Slack decodes these
  three everywhere). This defuses ``<!channel>``, ``<!here>``, ``<@U123>``,
  ``<#C123>`` and disguised links ``<http://evil|click>``; all show as typed.
* mrkdwn text objects are sent with ``verbatim: true``: Slack then does no
  automatic parsing (plain URLs, #channel names, mentions) and only our own
  ``<url|label>`` links are links. Slack notifies a channel only for the
  ``<!channel>``/``<!here>`` form, which the escaping above neutralises; a
  plainly typed ``@channel``/``@here``/``@everyone`` also gets a word joiner
  after the ``@``, so it cannot ping even where automatic parsing applies
  (the top-level fallback ``text``).
* mrkdwn has no escape for ``*``, ``_``, ``~`` and the backtick; a zero-width
  space beside them is not reliable (whether Slack counts it as a word
  boundary is unspecified). In untrusted mrkdwn text they are replaced by
  look-alikes that are not markup (``∗`` U+2217, ``ˍ`` U+02CD, ``∼`` U+223C,
  ``ˋ`` U+02CB), as jsx-slack does: a quoted "[***]" reads the same, and no
  sentence, title, reason or id can bold, strike or code-format our text or
  close our own ``*bold*``. The header is plain_text, where nothing is markup
  and nothing pings, so it gets only the three entities.
* line breaks and control characters become spaces, so untrusted text cannot
  start a quote, a list item or a code block on a line of its own.

URLs become links only when they are http(s) with a host; ``|``, ``<``, ``>``,
spaces and control characters are percent-encoded and ``&`` is ``&amp;``.
Anything else (a market series name, ``javascript:…``) is shown as text.

Limits: a section's text ≤ 3,000 characters, the header ≤ 150, at most 50
blocks, and the text of the whole message (blocks and fallback) within
``TEXT_BUDGET`` (3,500, well under Slack's 4,000). Alerts are rendered most
severe first; each shows at most ``MAX_EVIDENCE`` quotes (then "… and N more:
<link>"), an alert that does not fit in full is rendered compact, and when
the next one does not fit at all the message ends with "… and N more alerts:
<link>", pointing to the configured base link or the first omitted source URL.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Iterable
from urllib.parse import quote, unquote, urlsplit

import httpx

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.message import Message, Receipt

log = logging.getLogger(__name__)

NAME = "slack"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # read/write/pool 10 s, connect 5 s
DEFAULT_RETRY_AFTER = 30.0
IDEMPOTENCY_HEADER = "X-Idempotency-Key"
MAX_RESPONSE_BYTES = 4096  # Slack answers "ok" or an error word; read no more than this

HEADER_MAX = 150
SECTION_MAX = 3000
MAX_BLOCKS = 50
TEXT_BUDGET = 3500
MAX_EVIDENCE = 3
MAX_URL = 300  # a longer (encoded) URL is shown as text, not linked
_FOOTER_RESERVE = 60 + MAX_URL  # room kept for the "… and N more alerts: <link>" line
_FALLBACK_MAX = 300

_SEVERITY_ORDER = ("info", "medium", "warning", "high")
_SEVERITY_ICON = {"high": ":red_circle:", "warning": ":large_orange_circle:",
                  "medium": ":large_yellow_circle:", "info": ":white_circle:"}

# mrkdwn formatting characters → look-alikes that are not markup.
_LOOKALIKES = str.maketrans({"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_BROADCAST = re.compile(r"@(?=(channel|here|everyone)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_SLACK_HOOK = re.compile(r"https?://hooks\.slack(?:-gov)?\.com/\S+", re.IGNORECASE)
_LOOPBACK_NAMES = {"localhost"}
_MIN_FRAGMENT = 6  # a shorter echoed piece of a secret path segment is not worth redacting (nor guessable)
_WORD = re.compile(rf"[A-Za-z0-9_-]{{{_MIN_FRAGMENT},}}")


# ---------------------------------------------------------------------------- escaping


def escape(text: object) -> str:
    """Untrusted text → mrkdwn that shows as typed (look-alikes for * _ ~ `), links and pings nothing."""
    return _BROADCAST.sub("@" + _WORD_JOINER, escape_plain(text)).translate(_LOOKALIKES)


def escape_plain(text: object) -> str:
    """Untrusted text → a plain_text object's text: one line, with Slack's three entities."""
    value = _CONTROL.sub(" ", str(text))
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: object, label: str) -> str:
    """``<url|label>`` for an http(s) URL; otherwise the escaped URL as text. ``label`` is trusted."""
    raw = str(url or "").strip()
    try:
        parts = urlsplit(raw)
    except ValueError:
        return fit(raw, 80)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return fit(raw, 80)
    target = quote(raw, safe="!#$%&'()*+,-./:;=?@[]_~").replace("&", "&amp;")  # | < > spaces → %XX
    if len(target) > MAX_URL:
        return fit(raw, 80)
    return f"<{target}|{label}>"


def _is_link(url: object) -> bool:
    return link(url, "x").startswith("<")


def fit(text: object, limit: int, *, trusted: bool = False, plain: bool = False) -> str:
    """Escape (unless ``trusted``) and cut to ``limit`` characters with "…", never inside an entity.

    ``plain`` escapes for a plain_text object (no markup there, so no look-alikes).
    """
    encode = (lambda t: t) if trusted else (escape_plain if plain else escape)
    raw = str(text) if trusted else _CONTROL.sub(" ", str(text)).strip()
    out = encode(raw)
    if len(out) <= limit:
        return out
    cut = max(0, limit - 1)
    while cut > 0:
        piece = raw[:cut].rstrip()
        if trusted:
            piece = re.sub(r"&[a-z]*$", "", piece)  # never end on half an entity
        out = encode(piece) + "…"
        if len(out) <= limit:
            return out
        cut -= max(1, len(out) - limit)
    return "…"[:limit]


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return fit(value, 20)
    if abs(value) >= 10 or float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------- rendering


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text[:SECTION_MAX])}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text[:SECTION_MAX])]}


def text_length(node: Any) -> int:
    """Characters of every ``text`` string in a payload (what the budget counts)."""
    if isinstance(node, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else text_length(v) for k, v in node.items())
    if isinstance(node, list):
        return sum(text_length(item) for item in node)
    return 0


_DETAIL = {  # per level: (changes shown, reasons shown, quotes shown, characters per quote, title)
    "full": (8, 6, MAX_EVIDENCE, 300, 200),
    "compact": (4, 2, 1, 160, 150),
    "minimal": (2, 1, 0, 0, 120),
}


def _alert_blocks(alert: dict[str, Any], level: str, base_link: str | None) -> list[dict[str, Any]]:
    n_changes, n_reasons, n_quotes, quote_len, title_len = _DETAIL[level]
    severity = str(alert.get("severity", "info"))
    icon = _SEVERITY_ICON.get(severity, ":white_circle:")
    lines = [f"{icon} *{fit(alert.get('title', ''), title_len) or '(untitled)'}*",
             " · ".join([fit(alert.get("ticker", ""), 12), fit(alert.get("thesis", ""), 60),
                         fit(alert.get("direction", ""), 20), fit(severity, 10),
                         fit(alert.get("as_of", ""), 10)])]
    changes = list(alert.get("changes") or [])
    if changes:
        lines.append("*What changed (before → after)*")
        for change in changes[:n_changes]:
            lines.append(f"• {fit(change.get('name') or change.get('pillar', ''), 80)}: "
                         f"{_number(change.get('before'))} → {_number(change.get('after'))}")
        if len(changes) > n_changes:
            lines.append(f"• … and {len(changes) - n_changes} more")
    elif "before" in alert and "after" in alert:
        lines.append("*What changed (before → after)*")
        lines.append(f"• {fit(alert.get('pillar', ''), 80)}: "
                     f"{_number(alert['before'])} → {_number(alert['after'])}")
    blocks = [_section("\n".join(lines))]

    reasons = [r for r in (alert.get("reasons") or []) if str(r).strip()]
    if not reasons:
        reasons = [r for c in changes for r in (c.get("reasons") or [])]
    if reasons:
        shown = "; ".join(fit(r, 160) for r in reasons[:n_reasons])
        more = f" (+{len(reasons) - n_reasons} more)" if len(reasons) > n_reasons else ""
        blocks.append(_context(f"*Why:* {shown}{more}"))

    evidence = [e for e in (alert.get("evidence") or []) if str(e.get("sentence", "")).strip()]
    if evidence and n_quotes:
        quotes = []
        for item in evidence[:n_quotes]:
            day = str(item.get("date") or "")
            when = f" · {fit(day, 10)}" if day and not day.startswith("0001") else ""
            filing = f"*{escape(str(item['filing']))}* · " if item.get("filing") else ""
            quotes.append(f">{fit(item['sentence'], quote_len)}\n{filing}{link(item.get('url'), 'source')}{when}")
        rest = evidence[n_quotes:]
        if rest:
            quotes.append(_more(len(rest), "", base_link, [e.get("url") for e in rest]))
        blocks.append(_section("\n".join(quotes)))
    elif evidence:
        urls = [e.get("url") for e in evidence]
        blocks.append(_context(_more(len(evidence), " cited sentences", base_link, urls)))
    return blocks


def _more(count: int, what: str, base_link: str | None, urls: Iterable[Any]) -> str:
    """'… and N more: <link>', to the base link, else the first http(s) source URL, else no link."""
    target = next((u for u in [base_link, *urls] if u and _is_link(u)), None)
    label = "show more" if target == base_link and base_link else "source"
    return f"… and {count} more{what}" + (f": {link(target, label)}" if target else "")


def _ordered(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rank = {s: i for i, s in enumerate(_SEVERITY_ORDER)}
    return sorted(alerts, key=lambda a: -rank.get(str(a.get("severity")), 0))


def render_blocks(message: Message, base_link: str | None = None) -> dict[str, Any]:
    """The webhook payload: fallback ``text`` and Block Kit ``blocks``, within Slack's limits."""
    subject = message.subject.strip() or "catalyst-monitor"
    payload: dict[str, Any] = {
        "text": fit(subject, _FALLBACK_MAX),
        "blocks": [{"type": "header", "text": {"type": "plain_text", "emoji": True,
                                               "text": fit(subject, HEADER_MAX, plain=True)}}],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    blocks: list[dict[str, Any]] = payload["blocks"]
    if not message.alerts:
        if message.text.strip():
            room = min(SECTION_MAX, TEXT_BUDGET - text_length(payload))
            body = "\n".join(fit(line, room) for line in message.text.splitlines())
            blocks.append(_section(fit(body, room, trusted=True)))
        return payload

    alerts = _ordered(message.alerts)
    shown = 0
    for alert in alerts:
        used, room_blocks = text_length(payload), MAX_BLOCKS - len(blocks) - 1  # one kept for the footer
        last = shown == len(alerts) - 1
        budget = TEXT_BUDGET - used - (0 if last else _FOOTER_RESERVE)
        chosen = None
        for level in ("full", "compact", "minimal"):
            candidate = ([{"type": "divider"}] if shown else []) + _alert_blocks(alert, level, base_link)
            if text_length(candidate) <= budget and len(candidate) <= room_blocks:
                chosen = candidate
                break
        if chosen is None:
            break
        blocks.extend(chosen)
        shown += 1
    if shown < len(alerts):
        rest = alerts[shown:]
        urls = [e.get("url") for a in rest for e in (a.get("evidence") or [])]
        blocks.append(_context(_more(len(rest), " alerts", base_link, urls)))
    return payload


# ---------------------------------------------------------------------------- secrets in logs


class _RedactWebhooks(logging.Filter):
    """Rewrites webhook URLs in records of the HTTP libraries' loggers to their redacted form."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, str] = {}
        self._fragments: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str, redacted: str) -> None:
        with self._lock:
            self._secrets[secret] = redacted

    def add_path(self, path: str) -> None:
        """A webhook's path: the whole of it, and each of its secret segments (all but ``services``)."""
        self.add(path, "/…")
        with self._lock:
            self._fragments.update(part for part in path.split("/")[2:] if len(part) >= _MIN_FRAGMENT)

    def scrub(self, text: str) -> str:
        """The text with every webhook URL, path or piece of a path's secret segments redacted.

        A receiver may echo the path percent-encoded (``%2Fservices%2F…``) or cut short, so the text is
        decoded first, and any word of at least ``_MIN_FRAGMENT`` characters found inside a secret
        segment is redacted too.
        """
        text = _percent_decoded(text)
        with self._lock:
            secrets = sorted(self._secrets.items(), key=lambda kv: -len(kv[0]))
            fragments = tuple(self._fragments)
        for secret, redacted in secrets:
            text = text.replace(secret, redacted)
        text = _SLACK_HOOK.sub("slack webhook (https://hooks.slack.com/…)", text)
        return _WORD.sub(lambda m: "…" if any(m.group(0) in part or part in m.group(0) for part in fragments) else m.group(0), text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken record is the logging module's business, not ours
            return True
        clean = self.scrub(text)
        if clean != text:
            record.msg, record.args = clean, None
        return True


def _percent_decoded(text: str) -> str:
    """``%2F`` → ``/`` until nothing changes (a path may be encoded twice)."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


_REDACTOR = _RedactWebhooks()


def redact_secrets(text: str) -> str:
    """``text`` with the webhooks in use, and any piece of their secret paths, redacted."""
    return _REDACTOR.scrub(text)

for _name in ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
              "httpcore.socks"):
    logging.getLogger(_name).addFilter(_REDACTOR)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"slack webhook ({parts.scheme}://{host}{port}/…)"


def _check_webhook(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ConfigError("slack webhook: not a valid URL") from None
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("http", "https"):
        raise ConfigError("slack webhook: not an http(s) URL")
    if parts.scheme == "http" and not _loopback(host):
        raise ConfigError(f"slack webhook: must be https (plain http would expose the secret), host {host}")
    return url


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_after(value: str | None) -> float:
    """Retry-After as seconds: delta-seconds or an HTTP date; missing or unreadable → 30 s."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return DEFAULT_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# ---------------------------------------------------------------------------- the channel


class SlackChannel:
    """Delivers Messages to one Slack incoming webhook. Thread-safe as httpx.Client is."""

    name = NAME

    def __init__(self, webhook_url: str, client: httpx.Client | None = None, *, base_link: str | None = None,
                 timeout: httpx.Timeout = TIMEOUT) -> None:
        self._url = _check_webhook(webhook_url.strip())
        self.where = _redacted(self._url)
        self.base_link = base_link if base_link and _is_link(base_link) else None
        self.timeout = timeout
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout, follow_redirects=False)
        _REDACTOR.add(self._url, self.where)
        _REDACTOR.add(str(httpx.URL(self._url)), self.where)
        path = urlsplit(self._url).path
        if len(path) > 1:
            _REDACTOR.add_path(path)

    def __repr__(self) -> str:
        return f"SlackChannel({self.where})"

    def render(self, message: Message) -> dict[str, Any]:
        return render_blocks(message, self.base_link)

    def send(self, message: Message) -> Receipt:
        payload = self.render(message)
        try:
            with self._client.stream("POST", self._url, json=payload, timeout=self.timeout,
                                     headers={IDEMPOTENCY_HEADER: message.key}) as response:
                body = self._read_some(response)
        except httpx.TimeoutException as exc:
            raise self._error(f"no answer in time ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            cause = _REDACTOR.scrub(_CONTROL.sub(" ", str(exc))) or "request failed"
            raise self._error(f"{type(exc).__name__}: {cause}") from None
        status = response.status_code
        detail = _REDACTOR.scrub(_CONTROL.sub(" ", body.decode("utf-8", "replace")).strip())[:200]
        said = f"{status} {detail or response.reason_phrase}".strip()
        if 200 <= status < 300:
            log.debug("slack: delivered message %s (%d alerts): %s", message.key, len(message.alerts), said)
            return Receipt(NAME, said)
        if status == 429:
            wait = _retry_after(response.headers.get("retry-after"))
            raise self._error(f"rate limited ({said})", retry_after=wait)
        if status == 408 or status >= 500:
            header = response.headers.get("retry-after")
            raise self._error(said, retry_after=_retry_after(header) if header else None)
        raise self._error(f"{said}: rejected, retrying cannot help", permanent=True)

    def _error(self, cause: str, *, retry_after: float | None = None,
               permanent: bool = False) -> DeliveryError:
        return DeliveryError(NAME, f"{self.where}: {cause}", retry_after=retry_after, permanent=permanent)

    @staticmethod
    def _read_some(response: httpx.Response) -> bytes:
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_BYTES:
                break
        return b"".join(chunks)[:MAX_RESPONSE_BYTES]

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> "SlackChannel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
