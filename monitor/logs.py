"""Logging set-up: readable text by default, JSON lines for log shippers."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from monitor.errors import ConfigError

LOG_FORMAT_ENV = "MONITOR_LOG_FORMAT"


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str = "text", verbose: bool = False) -> None:
    """Log to stderr (journald and container runtimes collect and rotate it; we never write log files).

    ``$MONITOR_LOG_FORMAT`` wins over the config's ``log_format``, so a unit or a container
    can switch to JSON lines without editing config.toml.
    """
    fmt = os.environ.get(LOG_FORMAT_ENV, "").strip().lower() or fmt
    if fmt not in ("text", "json"):
        raise ConfigError(f"${LOG_FORMAT_ENV}: {fmt!r} is not a log format (text or json)")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for chatty in ("httpx", "httpcore", "matplotlib"):  # a line per request or font lookup drowns ours, even at -v
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
