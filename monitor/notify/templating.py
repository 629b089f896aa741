"""The jinja2 environment every notify template shares: HTML autoescaped, text not, undefined is an error.

Untrusted text (sentences, titles, reasons) reaches the HTML templates, so
autoescaping is on by file extension; StrictUndefined turns a template typo
into an error at render time rather than an empty cell in an e-mail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import jinja2

TEMPLATES = Path(__file__).resolve().parent / "templates"


def environment(filters: dict[str, Callable[..., Any]]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            disabled_extensions=("txt", "txt.j2"), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(filters)
    return env
