"""The channel plug-in point: anything that can deliver a Message.

One module per implementation (slack.py, email.py), as APScheduler has one per
trigger. ``send`` either returns a Receipt or raises DeliveryError; a
DeliveryError with ``retry_after`` tells the outbox when to try again (Slack's
429), ``permanent`` that retrying cannot help (a 404 webhook, a rejected login).
"""

from __future__ import annotations

from typing import Protocol

from monitor.notify.message import Message, Receipt


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> Receipt: ...
