"""Slack channel: Block Kit rendering, escaping, limits, and delivery to a real local webhook receiver."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.message import Message, Receipt, alert_subject, message_key
from monitor.notify.slack import HEADER_MAX, MAX_BLOCKS, SECTION_MAX, SlackChannel, render_blocks
from tests.receivers import Answer, WebhookReceiver

SECRET_PATH = "/services/T000/B000/SECRETxyz"
HOSTILE = "<script>alert(1)</script> <!channel> <!here> <@U123> *bold* R&D <http://evil.example|click>"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def slack(hook: WebhookReceiver, closing: Any) -> SlackChannel:
    return SlackChannel(hook.url + SECRET_PATH, closing(httpx.Client()))


def make_alert(n: int = 1, **overrides: Any) -> dict[str, Any]:
    alert = {
        "id": n, "key": f"alert-{n}", "thesis": "ai_hpc", "ticker": "MARA", "pillar": "contracted",
        "as_of": "2025-03-01", "severity": "high", "direction": "negative",
        "title": "MARA · Contracted compute 40 → 20", "before": 40.0, "after": 20.0,
        "reasons": ["Contracted compute: crossed 30 downwards", "Contracted compute: setback: binding lease"],
        "changes": [{"pillar": "contracted", "name": "Contracted compute", "before": 40.0, "after": 20.0,
                     "reasons": ["crossed 30 downwards"], "severity": "high", "direction": "negative"}],
        "evidence": [{"sentence": "The tenant terminated the 200 MW lease.", "date": "2025-03-01",
                      "url": f"https://www.sec.gov/Archives/edgar/data/1507605/{n:06d}/mara-8k.htm",
                      "disclosure": str(n)}],
    }
    alert.update(overrides)
    return alert


def make_message(*alerts: dict[str, Any]) -> Message:
    alerts = alerts or (make_alert(),)
    return Message(key=message_key([a["key"] for a in alerts], "slack"), kind="alert",
                   subject=alert_subject(list(alerts)), alerts=tuple(alerts))


def texts(payload: dict[str, Any], kind: str = "mrkdwn") -> list[str]:
    """The text of every text object of one type in a Block Kit payload."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == kind and isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return found


def all_text(payload: dict[str, Any]) -> int:
    objects = texts(payload, "mrkdwn") + texts(payload, "plain_text")
    return len(payload["text"]) + sum(len(t) for t in objects)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------- delivery


def test_delivers_block_kit_json_with_idempotency_key(slack: SlackChannel, hook: WebhookReceiver) -> None:
    message = make_message()
    receipt = slack.send(message)
    assert receipt == Receipt("slack", "200 ok")
    [seen] = hook.requests
    assert (seen.method, seen.path) == ("POST", SECRET_PATH)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-idempotency-key"] == message.key
    body = seen.json()
    assert body["text"].startswith("[HIGH] MARA")
    assert body["blocks"][0]["type"] == "header"
    assert body["blocks"][0]["text"] == {"type": "plain_text", "emoji": True, "text": message.subject}
    assert body["unfurl_links"] is False


def test_alert_shows_what_changed_why_and_cited_sentence_with_source_and_date(
        slack: SlackChannel, hook: WebhookReceiver) -> None:
    slack.send(make_message())
    text = "\n".join(texts(hook.requests[0].json()))
    assert "*What changed (before → after)*\n• Contracted compute: 40 → 20" in text
    assert ("*Why:* Contracted compute: crossed 30 downwards; "
            "Contracted compute: setback: binding lease") in text
    assert (">The tenant terminated the 200 MW lease.\n"
            "<https://www.sec.gov/Archives/edgar/data/1507605/000001/mara-8k.htm|source>"
            " · 2025-03-01") in text


def test_resent_message_is_one_unique_delivery_at_a_deduplicating_receiver(
        slack: SlackChannel, hook: WebhookReceiver) -> None:
    message = make_message()
    slack.send(message)
    slack.send(message)  # the outbox resends after a crash between send and settle
    assert len(hook.requests) == 2
    assert hook.unique_keys() == [message.key]


def test_hostile_text_arrives_escaped(slack: SlackChannel, hook: WebhookReceiver) -> None:
    alert = make_alert(title=f"MARA · {HOSTILE}", ticker="MARA<!here>", reasons=[HOSTILE],
                       evidence=[{"sentence": HOSTILE, "url": "https://example.com/x", "date": "2025-03-01"}])
    slack.send(make_message(alert))
    body = hook.requests[0].json()
    everything = [body["text"], *texts(body, "mrkdwn"), *texts(body, "plain_text")]
    for text in everything:
        for raw in ("<script>", "<!channel>", "<!here>", "<@U123>", "<http://evil.example|click>", "R&D"):
            assert raw not in text
        # the only control sequences left are our own links
        for control in re.findall(r"<[^>]*>", text):
            assert re.fullmatch(r"<https?://[^\s|<>]+\|(source|show more)>", control)
    joined = "\n".join(texts(body, "mrkdwn"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in joined
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt;" in joined
    assert "R&amp;D &lt;http://evil.example|click&gt;" in joined
    assert "∗bold∗" in joined and "*bold*" not in joined


def test_formatting_characters_in_untrusted_text_cannot_format() -> None:
    sentence = "Terms are [***] for *bold* _italic_ ~strike~ `code` ```block```"
    evidence = [{"sentence": sentence, "url": "https://example.com/x", "date": "2025-03-01"}]
    alert = make_alert(title="MARA · *a* _b_", evidence=evidence)
    payload = render_blocks(make_message(alert))
    title_line, quote = texts(payload)[0].splitlines()[0], texts(payload)[-1].splitlines()[0]
    assert title_line.count("*") == 2 and title_line.startswith(":red_circle: *") and title_line.endswith("*")
    assert quote.startswith(">") and not set("*_~`") & set(quote)
    assert quote == ">Terms are [∗∗∗] for ∗bold∗ ˍitalicˍ ∼strike∼ ˋcodeˋ ˋˋˋblockˋˋˋ"


def test_untrusted_line_breaks_cannot_start_quotes_or_lists() -> None:
    sentence = "one\n> fake quote\n• fake item\r\n```"
    alert = make_alert(evidence=[{"sentence": sentence, "url": "https://a.example/", "date": "2025-03-01"}])
    quote = texts(render_blocks(make_message(alert)))[-1].splitlines()
    assert quote[0] == ">one &gt; fake quote • fake item ˋˋˋ"


def test_plain_broadcast_words_cannot_ping() -> None:
    alert = make_alert(reasons=["tell @channel and @here and @everyone"])
    payload = render_blocks(make_message(alert))
    why = next(t for t in texts(payload) if t.startswith("*Why:*"))
    assert not re.search(r"@(channel|here|everyone)", why)
    assert "@\u2060channel and @\u2060here and @\u2060everyone" in why
    assert all(obj.get("verbatim") is True for obj in _text_objects(payload, "mrkdwn"))


def _text_objects(payload: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == kind:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload)
    return found


def test_only_http_urls_become_links_with_pipe_and_angle_brackets_encoded() -> None:
    evidence = [
        {"sentence": "a", "url": "https://www.sec.gov/x?a=1&b=2|evil>y <z", "date": "2025-03-01"},
        {"sentence": "b", "url": "javascript:alert(1)", "date": "2025-03-01"},
        {"sentence": "c", "url": "btc_usd", "date": "0001-01-01"},
    ]
    quote = texts(render_blocks(make_message(make_alert(evidence=evidence))))[-1]
    assert "<https://www.sec.gov/x?a=1&amp;b=2%7Cevil%3Ey%20%3Cz|source> · 2025-03-01" in quote
    assert ">b\njavascript:alert(1) · 2025-03-01" in quote and "<javascript" not in quote
    assert quote.endswith(">c\nbtcˍusd")  # a market series: shown, not linked, no placeholder date


def test_test_message_renders_its_text_in_one_section(slack: SlackChannel, hook: WebhookReceiver) -> None:
    message = Message(key="test-1", kind="test", subject="catalyst-monitor: test message",
                      text="Slack delivery works.\nSent by `monitor notify test` <!here>")
    slack.send(message)
    body = hook.requests[0].json()
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]
    section = body["blocks"][1]["text"]["text"]
    assert section == "Slack delivery works.\nSent by ˋmonitor notify testˋ &lt;!here&gt;"


# ---------------------------------------------------------------------------- failures


def test_429_is_retried_after_retry_after_seconds(slack: SlackChannel, hook: WebhookReceiver) -> None:
    hook.script(Answer(429, retry_after="7"))
    with pytest.raises(DeliveryError) as caught:
        slack.send(make_message())
    assert caught.value.retry_after == 7
    assert not caught.value.permanent


def test_429_without_retry_after_waits_30_seconds(slack: SlackChannel, hook: WebhookReceiver) -> None:
    hook.script(Answer(429, retry_after=""))
    with pytest.raises(DeliveryError) as caught:
        slack.send(make_message())
    assert caught.value.retry_after == 30


def test_500_is_retryable(slack: SlackChannel, hook: WebhookReceiver) -> None:
    hook.script(500)
    with pytest.raises(DeliveryError) as caught:
        slack.send(make_message())
    assert not caught.value.permanent and caught.value.retry_after is None
    assert "500 rollup_error" in str(caught.value)


@pytest.mark.parametrize(("status", "word"), [(400, "invalid_payload"), (403, "invalid_token"),
                                              (404, "no_service"), (410, "channel_is_archived")])
def test_rejected_payload_or_revoked_webhook_is_permanent(slack: SlackChannel, hook: WebhookReceiver,
                                                          status: int, word: str) -> None:
    hook.script(status)
    with pytest.raises(DeliveryError) as caught:
        slack.send(make_message())
    assert caught.value.permanent
    assert f"{status} {word}" in str(caught.value)


def test_send_never_retries_by_itself(slack: SlackChannel, hook: WebhookReceiver) -> None:
    hook.script(500, 500)
    with pytest.raises(DeliveryError):
        slack.send(make_message())
    assert len(hook.requests) == 1


def test_stall_past_read_timeout_is_a_retryable_error(hook: WebhookReceiver) -> None:
    hook.script(Answer(200, delay=5.0))
    started = time.monotonic()
    with SlackChannel(hook.url + SECRET_PATH, timeout=httpx.Timeout(0.3, connect=2.0)) as slack:
        with pytest.raises(DeliveryError) as caught:
            slack.send(make_message())
    assert time.monotonic() - started < 3.0
    assert not caught.value.permanent
    assert "no answer in time" in str(caught.value)


def test_unreachable_webhook_is_a_retryable_error(closing: Any) -> None:
    slack = SlackChannel(f"http://127.0.0.1:{free_port()}{SECRET_PATH}", closing(httpx.Client()))
    with pytest.raises(DeliveryError) as caught:
        slack.send(make_message())
    assert not caught.value.permanent


def test_webhook_url_never_appears_in_errors_or_logs(hook: WebhookReceiver, closing: Any,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # httpx logs every request URL at INFO
    slack = SlackChannel(hook.url + SECRET_PATH, closing(httpx.Client()),
                         timeout=httpx.Timeout(0.3, connect=2.0))
    unreachable = SlackChannel(f"http://127.0.0.1:{free_port()}{SECRET_PATH}", closing(httpx.Client()))
    hook.script(200, 404, 500, Answer(429, retry_after="7"), Answer(200, delay=5.0))
    slack.send(make_message())
    errors = []
    for channel in (slack, slack, slack, slack, unreachable):
        with pytest.raises(DeliveryError) as caught:
            channel.send(make_message())
        errors.append(caught.value)
    assert len(hook.requests) == 5
    said = [str(e) for e in errors] + [repr(e) for e in errors] + [e.cause for e in errors] + [repr(slack)]
    said += [record.getMessage() for record in caplog.records] + [caplog.text]
    assert any("HTTP Request: POST" in record.getMessage() for record in caplog.records)
    for text in said:
        assert "SECRETxyz" not in text and "/services/T000" not in text
    assert all(str(e).startswith(f"slack: slack webhook ({hook.url}/…)") for e in errors[:4])


def test_plain_http_webhook_on_another_host_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        SlackChannel("http://hooks.slack.com/services/T000/B000/SECRETxyz")
    assert "SECRETxyz" not in str(caught.value)


# ---------------------------------------------------------------------------- limits


def huge_message() -> Message:
    long = "The Company entered into a 15-year lease with the tenant for 200 MW of critical IT load; " * 40
    severities = ("high", "warning", "medium", "info")
    alerts = [make_alert(n, severity=severities[n % 4], title=f"MARA · {long}"[:900],
                         reasons=[f"reason {r}: {long[:400]}" for r in range(8)],
                         changes=[{"pillar": f"p{c}", "name": f"Pillar {c} {long[:200]}", "before": 40.0 + c,
                                   "after": 20.0, "reasons": ["x"], "severity": "high",
                                   "direction": "negative"}
                                  for c in range(12)],
                         evidence=[{"sentence": f"{n}.{e} {long}", "date": "2025-03-01",
                                    "url": f"https://www.sec.gov/Archives/{n}/{e}.htm"} for e in range(6)])
              for n in range(1, 31)]
    return make_message(*alerts)


def test_huge_message_respects_slack_limits(slack: SlackChannel, hook: WebhookReceiver) -> None:
    slack.send(huge_message())
    body = hook.requests[0].json()
    assert len(body["blocks"]) <= MAX_BLOCKS
    assert len(body["blocks"][0]["text"]["text"]) <= HEADER_MAX
    assert all(len(t) <= SECTION_MAX for t in texts(body))
    assert all(t for t in texts(body) + texts(body, "plain_text"))  # Slack refuses empty text
    assert all_text(body) < 4000


def test_huge_message_ends_with_a_link_to_the_rest() -> None:
    payload = render_blocks(huge_message())
    shown = sum(1 for t in texts(payload) if t.startswith((":red_circle:", ":large_", ":white_circle:")))
    last = payload["blocks"][-1]["elements"][0]["text"]
    more = re.fullmatch(r"… and (\d+) more alerts: <(https://[^|]+)\|source>", last)
    assert more and 1 <= shown and shown + int(more.group(1)) == 30
    assert more.group(2).startswith("https://www.sec.gov/Archives/")
    assert "… and 5 more: <https://www.sec.gov/Archives/" in "\n".join(texts(payload))  # 6 quotes, 1 shown


def test_more_links_go_to_the_base_link_when_configured(hook: WebhookReceiver, closing: Any) -> None:
    base = "https://monitor.example/alerts"
    slack = SlackChannel(hook.url + SECRET_PATH, closing(httpx.Client()), base_link=base)
    payload = slack.render(huge_message())
    assert payload["blocks"][-1]["elements"][0]["text"].endswith(f": <{base}|show more>")


def test_most_severe_alerts_come_first() -> None:
    message = make_message(make_alert(1, severity="info", title="MARA · low"),
                           make_alert(2, severity="high", title="MARA · top"))
    titles = [t.splitlines()[0] for t in texts(render_blocks(message)) if t.startswith(":")]
    assert titles == [":red_circle: *MARA · top*", ":white_circle: *MARA · low*"]


def test_payload_is_json_serialisable_round_trip() -> None:
    payload = render_blocks(huge_message())
    assert json.loads(json.dumps(payload)) == payload
