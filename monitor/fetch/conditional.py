"""Conditional GET backed by the store: ETag / Last-Modified kept per URL.

Validators are saved only after the caller has stored what the body produced
(``remember``), so a crash between fetch and store never turns the next poll
into a 304 that hides unprocessed content.
"""

from __future__ import annotations

import sqlite_utils

from monitor import store
from monitor.fetch.http import HttpClient, Response


def conditional_get(client: HttpClient, db: sqlite_utils.Database, url: str) -> Response:
    etag, last_modified = store.get_validators(db, url)
    return client.get(url, etag=etag, last_modified=last_modified)


def remember(db: sqlite_utils.Database, url: str, response: Response) -> None:
    """Keep the validators of a 200 answer to ``url`` (the URL asked, not the redirect)."""
    if response.status == 200 and (response.etag or response.last_modified):
        store.set_validators(db, url, response.etag, response.last_modified, response.status)
