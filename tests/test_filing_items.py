"""8-K items that mark a filing: read from real SEC payloads, stored, listed and cited in alerts."""

from __future__ import annotations

import json

from monitor import store
from monitor.config import DEFAULT_FORMS
from monitor.fetch import edgar
from monitor.fetch.edgar_parse import parse_latest_filings, parse_submissions
from monitor.filing_items import filing_label, label_citations, marked_items
from monitor.notify.email import render_html, render_text
from tests.test_email import alert_message, alert_row
from tests.test_replay_and_cli import monitor
from tests.test_sources import ADOBE, EDGAR, edgar_setup, serve_edgar

NVIDIA_JSON = EDGAR / "CIK0001045810.json"
LATEST = EDGAR / "getcurrent_count100_start3500_2025-12-12.atom.xml"


def test_submissions_items_of_real_8ks_are_marked_in_filing_order() -> None:
    _, _, refs = parse_submissions(NVIDIA_JSON.read_bytes(), str(NVIDIA_JSON), "https://www.sec.gov")
    by_items = {ref.items: ref for ref in refs if ref.form == "8-K"}
    assert marked_items(("1.01", "2.03", "9.01")) == ("1.01", "2.03")
    assert filing_label("8-K", by_items[("1.01", "2.03", "9.01")].items) == "8-K Items 1.01, 2.03"
    assert filing_label("8-K", by_items[("1.02",)].items) == "8-K Item 1.02"
    assert filing_label("8-K", by_items[("2.02", "9.01")].items) == ""  # earnings: not marked


def test_foreign_issuer_6k_of_the_real_feed_is_watched_and_labelled_by_form_alone() -> None:
    six_k = [ref for ref in parse_latest_filings(LATEST.read_bytes(), str(LATEST)) if ref.form == "6-K"]
    assert len(six_k) == 12 and all(ref.items == () for ref in six_k)
    assert {"6-K", "20-F"} <= set(DEFAULT_FORMS)
    assert filing_label("6-K", six_k[0].items) == ""


def test_polled_filing_keeps_feed_and_index_items_and_alerts_citing_it_name_them(tmp_path, closing, sec_server):
    serve_edgar(sec_server, ADOBE, "0000796343-23-000044-index.html")
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    edgar.poll_latest(client, db, config, {1651311: "MRUS"})  # Merus 8-K: feed items 2.01 3.03 5.01 5.02 9.01
    primary = store.list_documents(db, "MRUS")[0]
    assert marked_items(primary["items"]) == ("5.02",)

    cites = label_citations(db, "MRUS", [{"sentence": "s", "url": primary["url"], "date": "2025-12-12"},
                                         {"sentence": "t", "url": "https://example.com/other", "date": ""}])
    assert [c.get("filing") for c in cites] == ["8-K Item 5.02", None]
    row = alert_row(evidence=cites)
    assert "— 8-K Item 5.02, " + primary["url"] in render_text(alert_message(row))
    assert "<b>8-K Item 5.02</b>" in render_html(alert_message(row))


def test_documents_command_shows_items_and_lists_the_marked_ones_in_json(tmp_path, closing, sec_server):
    serve_edgar(sec_server, ADOBE, "0000796343-23-000044-index.html")
    config, db, client = edgar_setup(tmp_path, sec_server, closing)
    edgar.poll_latest(client, db, config, {1651311: "MRUS"})
    db_path = config.path(config.monitor.db)
    rows = json.loads(monitor(db_path, "documents", "--json").stdout)["documents"]
    assert [r["marked_items"] for r in rows] == [["5.02"], ["5.02"]]
    table = monitor(db_path, "documents", "--ticker", "MRUS").stdout
    assert "5.02" in table and "officer or director" in table


def test_offline_replay_alert_on_maras_notes_names_its_8k_items(replayed_db) -> None:
    """MARA's real 8-K of 2024-11-21 (convertible notes) states Items 1.01 and 2.03 in its headings."""
    docs = json.loads(monitor(replayed_db, "documents", "--ticker", "MARA", "--json").stdout)["documents"]
    notes_8k = next(d for d in docs if d["url"].endswith("000149315224047078/form8-k.htm"))
    assert notes_8k["marked_items"] == ["1.01", "2.03"]
    alerts = json.loads(monitor(replayed_db, "alerts", "--ticker", "MARA", "--json").stdout)["alerts"]
    cites = [e for a in alerts for e in a["evidence"] if e["url"] == notes_8k["url"]]
    assert cites and {e.get("filing") for e in cites} == {"8-K Items 1.01, 2.03"}
