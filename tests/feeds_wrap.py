"""Serve real press releases through a real feed's structure.

No captured newswire RSS exists, so tests keep the channel of a real RSS 2.0
feed (Medscape's, from NetNewsWire's test suite) and put items of the same
shape in it that link to real release texts on the local server.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from tests.conftest import FIXTURES

TEMPLATE = (FIXTURES / "feeds" / "netnewswire_medscape.rss").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    description: str = ""
    guid: str = ""
    pub_date: str = "Wed, 5 Nov 2025 13:52:10 EST"


def wrap_in_rss(items: list[Item]) -> bytes:
    head = TEMPLATE[: TEMPLATE.index("<item>")]
    tail = TEMPLATE[TEMPLATE.rindex("</item>") + len("</item>"):]
    body = "".join(
        f"<item>\n<title>{escape(i.title)}</title>\n<link>{escape(i.link)}</link>\n"
        f"<description>{escape(i.description)}</description>\n"
        + (f"<guid isPermaLink=\"false\">{escape(i.guid)}</guid>\n" if i.guid else "")
        + f"<pubDate>{i.pub_date}</pubDate>\n</item>\n"
        for i in items
    )
    return (head + body + tail).encode("utf-8")
