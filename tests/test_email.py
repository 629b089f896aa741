"""The e-mail channel against real aiosmtpd servers on 127.0.0.1 (plain, STARTTLS, SMTPS, AUTH)."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from monitor.errors import ConfigError, DeliveryError
from monitor.notify.email import EmailChannel, EmailSettings, render_html, render_text
from monitor.notify.message import Attachment, Message, alert_subject, message_key
from tests.smtp_server import PASSWORD, USER, Mode, SMTPServer, TestCA

SENDER = "Catalyst Monitor <monitor@catalyst.test>"
RECIPIENTS = ["ops@catalyst.test", "pm@catalyst.test"]
HOSTILE = ["<script>alert(1)</script>", "<!channel>", "*bold*", "&", '"><img src=x onerror=alert(1)>']


def alert_row(alert_id: int = 1, **overrides: Any) -> dict[str, Any]:
    """An alert as monitor.score.stage.list_alerts returns it."""
    row: dict[str, Any] = {
        "id": alert_id, "key": f"alert-{alert_id}", "thesis": "ai_hpc_pivot", "ticker": "APLD",
        "pillar": "contracted_compute", "event": "doc:17", "as_of": "2024-06-03", "severity": "high",
        "direction": "positive", "title": "APLD · Contracted compute 20 → 45", "before": 20.0, "after": 45.0,
        "reasons": ["Contracted compute: crossed 40 upwards", "Contracted compute: moved +25.0 (step 10)"],
        "changes": [{"pillar": "contracted_compute", "name": "Contracted compute", "before": 20.0,
                     "after": 45.0, "reasons": ["crossed 40 upwards"], "severity": "high",
                     "direction": "positive"}],
        "evidence": [{"sentence": "Applied Digital signed two 15-year leases with CoreWeave for 250 MW.",
                      "url": "https://www.sec.gov/Archives/edgar/data/1144879/ex99-2.htm",
                      "date": "2024-06-03", "disclosure": "42"}],
        "created_at": "2024-06-03T12:00:00+00:00",
    }
    row.update(overrides)
    return row


def alert_message(*alerts: dict[str, Any], attachments: tuple[Attachment, ...] = ()) -> Message:
    alerts = alerts or (alert_row(),)
    return Message(key=message_key([a["key"] for a in alerts], "email"), kind="alert",
                   subject=alert_subject(list(alerts)), alerts=tuple(alerts), attachments=attachments)


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def smtp(ca: TestCA) -> Iterator[Callable[..., SMTPServer]]:
    """``smtp(mode, auth=..., ...)`` starts a server on 127.0.0.1; every server is stopped after the test."""
    started: list[SMTPServer] = []

    def start(mode: Mode = "plain", **kwargs: Any) -> SMTPServer:
        server = SMTPServer(mode, ca=ca, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.close()


def settings(server_port: int, security: str = "none", **overrides: Any) -> EmailSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": server_port, "security": security,
                              "sender": SENDER, "recipients": RECIPIENTS, "timeout": 5.0,
                              "local_hostname": "localhost"}
    values.update(overrides)
    return EmailSettings(**values)


def only(server: SMTPServer) -> EmailMessage:
    [received] = server.messages
    return received.message


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def tiny_png() -> bytes:
    """A real 40x20 PNG chart drawn with matplotlib's Agg backend (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1), dpi=20)
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([20, 30, 45])
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


# --- delivery ---------------------------------------------------------------------------------


def test_plain_delivery_is_multipart_alternative_with_subject_and_stable_message_id(smtp):
    server = smtp("plain")
    message = alert_message()
    EmailChannel(settings(server.port)).send(message)
    [received] = server.messages
    mail = received.message
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    assert mail["Subject"] == message.subject
    assert mail["Message-ID"] == f"<{message.key}@catalyst-monitor>"
    assert mail["From"] == SENDER and mail["To"] == ", ".join(RECIPIENTS) and mail["Date"]
    assert "List-Unsubscribe" not in mail
    assert received.mail_from == "monitor@catalyst.test" and list(received.rcpt_tos) == RECIPIENTS


def test_a_resent_message_carries_the_same_message_id(smtp):
    server = smtp("plain")
    channel = EmailChannel(settings(server.port))
    message = alert_message()
    channel.send(message)
    channel.send(message)
    first, second = server.messages
    assert first.message["Message-ID"] == second.message["Message-ID"] == f"<{message.key}@catalyst-monitor>"


def test_the_receipt_is_the_servers_answer_to_data(smtp):
    server = smtp("plain")
    receipt = EmailChannel(settings(server.port)).send(alert_message())
    assert receipt.channel == "email"
    assert receipt.status == "250 2.0.0 Ok: queued as TEST0001"


def test_text_part_has_headline_changes_reasons_and_cited_sentence(smtp):
    server = smtp("plain")
    EmailChannel(settings(server.port)).send(alert_message())
    text, html = parts(only(server))
    assert "APLD · ai_hpc_pivot · positive · severity high" in text
    assert "Contracted compute: 20 → 45" in text
    assert "crossed 40 upwards" in text
    assert '"Applied Digital signed two 15-year leases with CoreWeave for 250 MW."' in text
    assert "https://www.sec.gov/Archives/edgar/data/1144879/ex99-2.htm, 2024-06-03" in text
    assert '<a href="https://www.sec.gov/Archives/edgar/data/1144879/ex99-2.htm"' in html


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_with_the_right_password_delivers_and_the_server_saw_auth(smtp, ca, mechanism):
    server = smtp("starttls", auth=True, mechanisms=(mechanism,))
    channel = EmailChannel(settings(server.port, "starttls", username=USER, password=PASSWORD,
                                    ssl_context=ca.client_context()))
    channel.send(alert_message())
    [attempt] = server.auth_attempts
    assert (attempt.mechanism, attempt.login, attempt.success) == (mechanism, USER, True)
    [received] = server.messages
    assert received.tls and received.authenticated


def test_a_wrong_password_is_permanent_and_the_error_does_not_show_it(smtp, ca):
    server = smtp("starttls", auth=True)
    wrong = "Wr0ng-" + PASSWORD
    channel = EmailChannel(settings(server.port, "starttls", username=USER, password=wrong,
                                    ssl_context=ca.client_context()))
    with pytest.raises(DeliveryError) as caught:
        channel.send(alert_message())
    assert caught.value.permanent
    assert "535" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert caught.value.__cause__ is None  # the server's reply to the credentials is not chained
    assert server.auth_attempts and not any(a.success for a in server.auth_attempts)
    assert server.messages == []


def test_implicit_tls_delivers_trusting_a_ca_file(smtp, ca, tmp_path):
    server = smtp("ssl", auth=True)
    ca_file = ca.write_ca(tmp_path / "ca.pem")
    channel = EmailChannel(settings(server.port, "ssl", username=USER, password=PASSWORD, ca_file=ca_file))
    channel.send(alert_message())
    [received] = server.messages
    assert received.tls and received.authenticated


def test_a_server_whose_certificate_is_not_trusted_gets_nothing(smtp):
    server = smtp("ssl")
    channel = EmailChannel(settings(server.port, "ssl"))  # the system's CAs do not know the test CA
    with pytest.raises(DeliveryError) as caught:
        channel.send(alert_message())
    assert not caught.value.permanent
    assert "certificate verify failed" in str(caught.value)
    assert server.messages == []


def test_starttls_required_by_the_server_but_not_configured_is_permanent(smtp):
    server = smtp("starttls")
    with pytest.raises(DeliveryError) as caught:
        EmailChannel(settings(server.port, "none")).send(alert_message())
    assert caught.value.permanent  # 530 Must issue a STARTTLS command first
    assert "530" in str(caught.value)


def test_a_server_that_is_down_is_retryable(smtp):
    server = smtp("plain")
    port = server.port
    server.close()
    with pytest.raises(DeliveryError) as caught:
        EmailChannel(settings(port)).send(alert_message())
    assert not caught.value.permanent
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_a_server_that_never_greets_times_out_as_retryable():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(DeliveryError) as caught:
            EmailChannel(settings(port, timeout=0.3)).send(alert_message())
    assert not caught.value.permanent
    assert "timed out" in str(caught.value)


def test_a_temporary_refusal_at_data_is_retryable(smtp):
    server = smtp("plain", reply_data="451 4.3.0 Try again later")
    with pytest.raises(DeliveryError) as caught:
        EmailChannel(settings(server.port)).send(alert_message())
    assert not caught.value.permanent
    assert "451" in str(caught.value)


def test_refused_recipients_are_permanent(smtp):
    server = smtp("plain", reply_rcpt="550 5.1.1 No such user")
    with pytest.raises(DeliveryError) as caught:
        EmailChannel(settings(server.port)).send(alert_message())
    assert caught.value.permanent
    assert "550" in str(caught.value) and "ops@catalyst.test" in str(caught.value)


# --- content ----------------------------------------------------------------------------------


def test_hostile_text_is_escaped_in_html_and_readable_in_text(smtp):
    server = smtp("plain")
    hostile = " ".join(HOSTILE)
    alert = alert_row(title=f"APLD · {hostile}", reasons=[f"why: {hostile}"],
                      evidence=[{"sentence": hostile, "url": "https://example.com/a?b=1&c=2",
                                 "date": "2024-06-03", "disclosure": "1"}])
    EmailChannel(settings(server.port)).send(alert_message(alert))
    text, html = parts(only(server))
    for piece in HOSTILE:
        assert piece in text
    assert "<script" not in html and "<img src=x" not in html and "<!channel>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;!channel&gt;" in html and "*bold*" in html and "&amp; " in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="https://example.com/a?b=1&amp;c=2"' in html


def test_only_http_urls_become_links():
    urls = ("javascript:alert(1)", "data:text/html,<b>x</b>", "btc_usd", "https://ok.example/x")
    evidence = [{"sentence": "s", "url": url, "date": "2024-06-03", "disclosure": "1"} for url in urls]
    html = render_html(alert_message(alert_row(evidence=evidence)))
    assert html.count("<a href=") == 1 and '<a href="https://ok.example/x"' in html
    assert "javascript:alert(1)" in html  # shown as text
    assert "data:text/html,&lt;b&gt;x&lt;/b&gt;" in html


def test_line_breaks_in_the_subject_cannot_add_headers(smtp):
    server = smtp("plain")
    alert = alert_row(title="APLD · lease\r\nBcc: victim@evil.test\r\nX-Injected: 1")
    EmailChannel(settings(server.port)).send(alert_message(alert))
    [received] = server.messages
    assert "X-Injected" not in received.message and "Bcc" not in received.message
    assert "lease Bcc: victim@evil.test X-Injected: 1" in received.message["Subject"]
    assert list(received.rcpt_tos) == RECIPIENTS


def test_an_inline_chart_arrives_as_multipart_related_referenced_by_content_id(smtp):
    server = smtp("plain")
    png = tiny_png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    chart = Attachment("backing.png", "image/png", png, "backing-chart@catalyst-monitor")
    EmailChannel(settings(server.port)).send(alert_message(attachments=(chart,)))
    mail = only(server)
    text_part, related = mail.iter_parts()
    assert (text_part.get_content_type(), related.get_content_type()) == ("text/plain", "multipart/related")
    html_part, image = related.iter_parts()
    assert html_part.get_content_type() == "text/html"
    assert image.get_content_type() == "image/png" and image.get_content() == png
    assert image["Content-ID"] == "<backing-chart@catalyst-monitor>"
    assert image.get_content_disposition() == "inline"
    assert 'src="cid:backing-chart@catalyst-monitor"' in html_part.get_content()


def test_test_and_source_messages_show_their_text():
    message = Message(key="test-1", kind="source", subject="Source failing: edgar",
                      text="edgar failed 5 times in a row\nlast error: <timeout>")
    assert render_text(message).strip() == "edgar failed 5 times in a row\nlast error: <timeout>"
    assert "last error: &lt;timeout&gt;" in render_html(message)


# --- settings ---------------------------------------------------------------------------------


def test_the_password_is_not_in_the_settings_repr():
    configured = settings(587, "starttls", host="smtp.example.com", username=USER, password=PASSWORD)
    assert PASSWORD not in repr(configured) and PASSWORD not in repr(EmailChannel(configured))
    assert USER in repr(configured)


def test_a_password_is_never_sent_unencrypted_to_another_host():
    with pytest.raises(ConfigError, match="unencrypted") as caught:
        settings(25, "none", host="smtp.example.com", username=USER, password=PASSWORD)
    assert PASSWORD not in str(caught.value)
