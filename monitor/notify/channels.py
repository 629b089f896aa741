"""Build the configured channels, with their secrets read from the environment only.

A missing secret is a ConfigError naming the *variable*, never its value; the
values live in the channel objects alone (Slack redacts its URL everywhere,
e-mail keeps the password out of reprs and errors).
"""

from __future__ import annotations

from datetime import timedelta

from monitor.config import Config, secret_from_env
from monitor.errors import ConfigError
from monitor.notify.channel import Channel
from monitor.notify.email import EmailChannel, EmailSettings
from monitor.notify.outbox import DeliverySettings
from monitor.notify.slack import SlackChannel


def build_channels(config: Config, names: list[str] | None = None) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name in names if names is not None else config.notify.channels:
        if name == "slack":
            url = secret_from_env(config.secrets.slack_webhook_env)
            if not url:
                raise ConfigError(f"notify.channels: slack needs the webhook URL in ${config.secrets.slack_webhook_env}")
            channels["slack"] = SlackChannel(url, base_link=config.notify.slack.base_link or None)
        elif name == "email":
            settings = config.notify.email
            channels["email"] = EmailChannel(EmailSettings(
                host=settings.host, port=settings.port, security=settings.security, username=settings.username,
                password=secret_from_env(config.secrets.smtp_password_env, strip=False), sender=settings.sender,
                recipients=settings.recipients, timeout=settings.timeout_seconds,
            ))
        else:
            raise ConfigError(f"notify.channels: unknown channel {name!r} (slack or email)")
    return channels


def close_channels(channels: dict[str, Channel]) -> None:
    for channel in channels.values():
        close = getattr(channel, "close", None)
        if close is not None:
            close()


def delivery_settings(config: Config) -> DeliverySettings:
    notify = config.notify
    return DeliverySettings(batch_window=timedelta(minutes=notify.batch_window_minutes),
                            max_attempts=notify.max_attempts, retry_base=timedelta(seconds=notify.retry_base_seconds))
