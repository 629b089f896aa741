"""``monitor`` with a Slack channel that has a bug: the crash harnesses run their deliverers through it.

``python -m tests.flaky_cli …`` is ``python -m monitor.cli …`` except that the Slack channel raises a
RuntimeError (not a DeliveryError: what a bug in a channel or a renderer raises) on the first try of a
third of the messages, chosen by key. "First" is across processes: a marker file per key in
``$MONITOR_TEST_CHANNEL_BUG_DIR``, created atomically, so each of those messages fails exactly once
however many deliverers come and go. The HTTP client and the receivers are real; the outbox must
record the error against that message, back off, and still deliver everything once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from monitor.cli import app
from monitor.notify.message import Message, Receipt
from monitor.notify.slack import SlackChannel

BUG_DIR_ENV = "MONITOR_TEST_CHANNEL_BUG_DIR"
_real_send = SlackChannel.send


def _send_with_a_bug(self: SlackChannel, message: Message) -> Receipt:
    if int(hashlib.sha256(message.key.encode()).hexdigest(), 16) % 3 == 0:
        try:
            (Path(os.environ[BUG_DIR_ENV]) / message.key).touch(exist_ok=False)
        except FileExistsError:
            pass  # this message had its failure
        else:
            raise RuntimeError(f"injected channel bug at message {message.key}")
    return _real_send(self, message)


if __name__ == "__main__":  # only the harnesses' subprocesses get the bug, never a process importing this
    SlackChannel.send = _send_with_a_bug  # type: ignore[method-assign]
    app()
