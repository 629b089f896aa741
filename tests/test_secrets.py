"""Secrets (webhook URL, SMTP password) never appear in logs, the database, errors or --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from typer.testing import CliRunner

from monitor.cli import app
from tests.receivers import Answer, WebhookReceiver
from tests.smtp_server import SMTPServer
from tests.test_delivery_crash import prepared_store, write_config

WEBHOOK_SECRET = "/services/T0SECRET/B0SECRET/Zx9SecretWebhookToken"
SMTP_PASSWORD = "correct-horse-SECRET-battery"


def run(tmp_path, env, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "monitor.cli", "--config", str(tmp_path / "config.toml"), *args],
                          env=env, capture_output=True, timeout=120)
    return (done.stdout + done.stderr).decode("utf-8", errors="replace")


@contextmanager
def failing_channels(tmp_path) -> Iterator[dict[str, str]]:
    """A store with alerts to send, Slack failing then refusing, SMTP refusing the login; yields the env."""
    prepared_store(tmp_path)
    with WebhookReceiver() as slack, SMTPServer(auth=True) as smtp:
        slack.script(500, 500, Answer(404))  # failures put error texts into logs and the outbox
        write_config(tmp_path, smtp)
        config = tmp_path / "config.toml"
        config.write_text(config.read_text().replace('security = "none"', 'security = "none"\nusername = "desk"'))
        yield {**os.environ, "MONITOR_SLACK_WEBHOOK": slack.url + WEBHOOK_SECRET,
               "MONITOR_SMTP_PASSWORD": SMTP_PASSWORD}


def test_secrets_never_reach_logs_database_errors_or_help(tmp_path):
    with failing_channels(tmp_path) as env:
        output = run(tmp_path, env, "-v", "deliver")
        output += run(tmp_path, env, "-v", "test-alert", "--channel", "slack")
        output += run(tmp_path, env, "-v", "test-alert", "--channel", "email")
        output += run(tmp_path, env, "alerts", "--json") + run(tmp_path, env, "status", "--json")
    runner = CliRunner()
    helps = "".join(runner.invoke(app, [*command, "--help"]).output
                    for command in ([], ["run"], ["deliver"], ["test-alert"], ["digest"], ["status"], ["alerts"]))
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("monitor.db*"))
    for secret in (WEBHOOK_SECRET, "Zx9SecretWebhookToken", SMTP_PASSWORD):
        assert secret not in output
        assert secret not in helps
        assert secret.encode() not in stored
    assert "slack" in output and "email" in output  # the runs did happen and talked about both channels


def test_json_log_lines_of_a_failing_delivery_carry_no_secret(tmp_path):
    with failing_channels(tmp_path) as env:
        done = subprocess.run([sys.executable, "-m", "monitor.cli", "--config", str(tmp_path / "config.toml"),
                               "-v", "deliver"], env={**env, "MONITOR_LOG_FORMAT": "json"},
                              capture_output=True, timeout=120)
    logged = done.stderr.decode("utf-8", errors="replace")
    records = [json.loads(line) for line in logged.splitlines()]
    assert any(r["level"] == "warning" and "slack" in r["message"] for r in records)  # failures were logged
    for secret in (WEBHOOK_SECRET, "Zx9SecretWebhookToken", SMTP_PASSWORD):
        assert secret not in logged


# --- issue 14.12: control characters in secrets; echoed pieces of the webhook path ------------------------


def test_a_secret_with_a_control_character_is_a_start_up_error_naming_only_its_variable(tmp_path):
    """Issue 14.12: a webhook with \\n or \\t ended in an httpx InvalidURL traceback at the first send, and a
    User-Agent with a newline passed the check and failed every request later."""
    with WebhookReceiver() as slack, SMTPServer() as smtp:
        write_config(tmp_path, smtp)
        with open(tmp_path / "config.toml", "a") as config:
            config.write('\n[[companies]]\nticker = "APLD"\n')
        hook = slack.url + WEBHOOK_SECRET
        cases = {"MONITOR_SLACK_WEBHOOK": hook[:-5] + "\n" + hook[-5:], "MONITOR_SEC_USER_AGENT": "Acme Research\nops@acme.example"}
        for variable, value in [*cases.items(), ("MONITOR_SLACK_WEBHOOK", hook.replace("B0SECRET", "B0\tSECRET"))]:
            env = {**os.environ, "MONITOR_SLACK_WEBHOOK": hook, variable: value}
            done = subprocess.run([sys.executable, "-m", "monitor.cli", "--config", str(tmp_path / "config.toml"),
                                   "run", "--once", "--online"], env=env, capture_output=True, timeout=120,
                                  check=False)
            output = (done.stdout + done.stderr).decode()
            assert done.returncode == 2 and f"${variable}" in output, output[-2000:]
            assert "Traceback" not in output and "Zx9Secret" not in output and "ops@acme" not in output


def test_slack_error_text_echoing_a_piece_of_the_webhook_path_is_redacted(tmp_path):
    """Issue 14.12: a receiver's error body quoting the path percent-encoded, or cut short, leaked it."""
    from monitor.errors import DeliveryError
    from monitor.notify.message import Message
    from monitor.notify.slack import SlackChannel

    echoes = ["no_service: %2Fservices%2FT0SECRET%2FB0SECRET%2FZx9SecretWebhookToken",
              "invalid_token: ...B0SECRET/Zx9SecretWebho (truncated)", "bad hook %252FZx9SecretWebhookToken"]
    with WebhookReceiver() as slack, SlackChannel(slack.url + WEBHOOK_SECRET) as channel:
        slack.script(*[Answer(403, body=echo.encode()) for echo in echoes])
        errors = []
        for _ in echoes:
            try:
                channel.send(Message(key="k", kind="test", subject="s", text="t"))
            except DeliveryError as exc:
                errors.append(str(exc))
    assert len(errors) == len(echoes)
    for error in errors:
        for piece in ("Zx9SecretWebho", "T0SECRET", "B0SECRET"):
            assert piece not in error, error
