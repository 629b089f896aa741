"""The alert rules on hand-built evidence: one behaviour each, no extraction in the loop.

Each test writes the disclosures a document would yield (type, commitment, direction, fields, sentence)
and asks the engine what it says. The ledger reads them with the project's ledger rules, as it does live.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from monitor import store
from monitor.documents import Document
from monitor.ledger.build import build
from monitor.ledger.reading import read_fact
from monitor.ledger.stage import LedgerReader
from monitor.notify.outbox import queue_for
from monitor.market.series import Observation
from monitor.score.engine import Evidence
from monitor.score.stage import MARKET_WIDE, Context, Event, list_alerts, score_pending, step
from monitor.score.thesis import load_theses
from tests.conftest import ROOT, RULES

[THESIS] = load_theses(ROOT / "rules" / "theses")
READER = LedgerReader.from_dir(RULES)
TICKER = "WULF"

LEASE = ("TeraWulf entered into a 10-year lease with CoreWeave for 120 MW of critical IT load at its Lake Alpha "
         "campus, representing approximately $2.1 billion in contracted revenue.")


def disclosure(document_id: int, day: str, type_: str, commitment: str, direction: str, sentence: str,
               start: int = 0, **fields: Any) -> dict[str, Any]:
    """A stored disclosure row as the extraction stage writes it."""
    return {"id": document_id * 100 + start, "document_id": document_id, "ticker": TICKER, "type": type_,
            "commitment": commitment, "direction": direction, "sentence": sentence, "start": start,
            "url": f"https://example.com/pr/{document_id}", "published_at": day,
            "counterparty": fields.get("counterparty"), "mw": fields.get("mw"), "usd": fields.get("usd"),
            "term_years": fields.get("term_years")}


def lease(document_id: int = 1, day: str = "2025-03-03", sentence: str = LEASE) -> dict[str, Any]:
    return disclosure(document_id, day, "contracted_compute", "binding", "positive", sentence,
                      counterparty="CoreWeave", mw=120.0, usd=2.1e9, term_years=10.0)


def alerts_for(rows: list[dict[str, Any]], document_id: int, levels: dict[str, int] | None = None,
               latest: date | None = None) -> list[Any]:
    """The alerts of one document's event, with everything in ``rows`` known."""
    evidence = [Evidence.from_row(r) for r in rows]
    ledger = build(TICKER, [f for r in rows if (f := read_fact(r, READER.rules, READER.figures))])
    day = next(e.day for e in evidence if e.document_id == document_id)
    event = Event(day, f"doc:{document_id}", document_id)
    return step(THESIS, TICKER, event, evidence, {}, {} if levels is None else levels,
                Context(ledger, READER.rules, latest)).alerts


def test_a_going_concern_warning_pages_high_and_negative():
    rows = [disclosure(1, "2025-03-03", "financing", "binding", "negative",
                       "Recurring losses raise substantial doubt about the Company's ability to continue as a "
                       "going concern.")]
    [alert] = [a for a in alerts_for(rows, 1) if a.severity == "high"]
    assert alert.direction == "negative" and "going-concern" in alert.title
    assert alert.evidence[0]["sentence"] == rows[0]["sentence"] and alert.evidence[0]["url"]


def test_a_negated_going_concern_sentence_is_no_distress():
    rows = [disclosure(1, "2025-03-03", "financing", "binding", "neutral",
                       "Management concluded that these conditions do not raise substantial doubt about the "
                       "Company's ability to continue as a going concern.")]
    assert not [a for a in alerts_for(rows, 1) if a.pillar == "distress"]


def test_a_terminated_restructuring_support_agreement_pages_high_and_negative():
    rows = [disclosure(1, "2025-03-03", "financing", "binding", "negative",
                       "On March 3, 2025, the consenting noteholders terminated the Restructuring Support "
                       "Agreement.")]
    [alert] = [a for a in alerts_for(rows, 1) if a.severity == "high"]
    assert alert.direction == "negative" and "restructuring agreement terminated" in alert.title


def test_a_letter_of_intent_is_information_only():
    rows = [disclosure(1, "2025-03-03", "contracted_compute", "soft", "positive",
                       "TeraWulf signed a non-binding letter of intent with Nebius for 100 MW of critical IT load.",
                       counterparty="Nebius", mw=100.0)]
    alerts = alerts_for(rows, 1)
    assert alerts and all(a.severity == "info" for a in alerts)


def test_a_financing_that_states_no_amount_is_information_only(replayed_db):
    """Cipher's release of 2025-11-20 (bundled): "Cipher has committed financing in place." raised a medium
    alert "financing with undisclosed party signed: no figures disclosed", with nothing in it to act on."""
    db = store.open_db(replayed_db)
    try:
        rows = db.execute("select severity from alerts where ticker = 'CIFR' and title like '%financing%no figures%'"
                          ).fetchall()
    finally:
        db.close()

    assert {row[0] for row in rows} <= {"info"}  # info, or no deal at all: a bare line beside soft talk


def test_a_financing_with_its_amount_is_reported_but_never_paged_high():
    rows = [disclosure(1, "2025-07-23", "financing", "binding", "neutral",
                       "MARA announced the pricing of $950 million of 0.00% convertible senior notes due 2032.",
                       usd=950e6)]

    [alert] = [a for a in alerts_for(rows, 1) if a.pillar.startswith("deal:")]

    assert alert.severity == "medium" and "$950m" in alert.title


def test_a_letter_of_intent_the_reader_took_as_binding_still_only_proposes():
    """The reader calls about one soft disclosure in ten binding; the ledger reads the wording itself, so a
    bid, an LOI or an MOU never signs a deal nor pages high, whatever the reader said."""
    rows = [disclosure(1, "2025-03-03", "contracted_compute", "binding", "positive",
                       "TeraWulf signed a non-binding letter of intent with Nebius for 100 MW of critical IT load.",
                       counterparty="Nebius", mw=100.0)]

    alerts = alerts_for(rows, 1)

    assert alerts and all(a.severity != "high" for a in alerts)
    assert any("proposed" in a.title for a in alerts)


def test_a_definitive_agreement_that_replaces_a_letter_of_intent_is_signed():
    rows = [disclosure(1, "2025-03-03", "contracted_compute", "binding", "positive",
                       "TeraWulf executed a definitive 10-year lease with Nebius for 100 MW of critical IT load, "
                       "replacing the letter of intent signed in January.", counterparty="Nebius", mw=100.0)]

    assert any(a.severity == "high" and "signed" in a.title for a in alerts_for(rows, 1))


def test_power_that_is_not_for_ai_is_information_only():
    """Riot's June 2023 update: ERCOT demand-response credits are power, but not power for AI/HPC; they raised a
    medium positive alert on an AI thesis."""
    rows = [disclosure(1, "2023-06-05", "power", "binding", "positive",
                       "Riot received $16 million in power credits from ERCOT for voluntarily curtailing its "
                       "bitcoin mining operations during periods of peak demand.", counterparty="ERCOT", usd=16e6)]

    deal_alerts = [a for a in alerts_for(rows, 1) if a.pillar.startswith("deal:")]

    assert deal_alerts and {a.severity for a in deal_alerts} == {"info"}


def test_a_contract_signed_after_a_letter_of_intent_pages_high():
    """The proposal wording names what came before; the sentence itself signs."""
    rows = [disclosure(1, "2025-11-03", "contracted_compute", "binding", "positive",
                       "Following the non-binding letter of intent announced in June, IREN today signed a 5-year AI "
                       "cloud contract with Microsoft worth $9.7 billion.", counterparty="Microsoft", usd=9.7e9)]

    assert any(a.severity == "high" and "signed" in a.title for a in alerts_for(rows, 1))


def test_a_terse_signed_lease_beside_talk_of_more_is_still_signed():
    rows = [disclosure(1, "2025-06-02", "contracted_compute", "binding", "positive",
                       "CoreWeave lease: 250 MW, 15 years, $11 billion", counterparty="CoreWeave", mw=250.0, usd=11e9),
            disclosure(1, "2025-06-02", "contracted_compute", "soft", "positive",
                       "The company is in advanced discussions with CoreWeave on a further 150 MW at a new campus.",
                       start=60, counterparty="CoreWeave", mw=150.0)]

    assert any(a.severity == "high" and "signed: 250 MW" in a.title for a in alerts_for(rows, 1))


def test_a_signed_lease_whose_operations_are_targeted_for_a_date_keeps_its_megawatts():
    rows = [disclosure(1, "2025-08-14", "contracted_compute", "binding", "positive",
                       "TeraWulf signed a 10-year lease with Fluidstack at Lake Mariner, with operations targeted for "
                       "the second half of 2026 across 200 MW of critical IT load.", counterparty="Fluidstack",
                       mw=200.0)]

    assert any(a.severity == "high" and "200 MW" in a.title for a in alerts_for(rows, 1))


def test_a_terminated_power_agreement_is_never_lowered_to_information():
    rows = [disclosure(1, "2025-03-03", "power", "binding", "positive",
                       "The Company entered into a 300 MW power purchase agreement with Oncor for its Texas site.",
                       counterparty="Oncor", mw=300.0),
            disclosure(2, "2025-09-03", "power", "binding", "negative",
                       "Oncor terminated the 300 MW power purchase agreement for the Company's Texas site.",
                       counterparty="Oncor", mw=300.0)]

    setbacks = [a for a in alerts_for(rows, 2) if a.direction == "negative" and a.pillar.startswith("deal:")]

    assert setbacks and all(a.severity in ("high", "medium") for a in setbacks)


def test_a_signed_lease_pages_high_with_its_numbers_in_the_headline():
    [alert] = [a for a in alerts_for([lease()], 1) if a.severity == "high"]
    assert alert.direction == "positive"
    for figure in ("CoreWeave", "Lake Alpha", "120 MW", "$2.10bn", "10 years", "≈$210m/yr (derived)"):
        assert figure in alert.title
    assert alert.evidence[0]["url"] == "https://example.com/pr/1"


def test_a_restated_lease_says_nothing():
    restated = lease(2, "2025-05-05", "As previously announced, TeraWulf's 10-year lease with CoreWeave covers 120 MW "
                                      "of critical IT load at its Lake Alpha campus.")
    assert alerts_for([lease(), restated], 2) == []


def test_a_back_dated_document_changes_no_level_and_leaves_one_late_note():
    earlier = disclosure(2, "2025-01-06", "contracted_compute", "binding", "positive",
                         "TeraWulf entered into a 10-year lease with Nebius for 200 MW of critical IT load at its "
                         "Lake Beta campus.", counterparty="Nebius", mw=200.0, term_years=10.0)
    levels = {"q:contracted_mw": 1}  # the 120 MW lease crossed 100 on 2025-03-03
    alerts = alerts_for([lease(), earlier], 2, levels, latest=date(2025, 3, 3))
    assert levels == {"q:contracted_mw": 1}
    [note] = alerts
    assert note.severity == "info" and "late disclosure" in note.title


# --- through the store ---------------------------------------------------------------------------


def add_document(db: Any, key: str, day: str, rows: list[dict[str, Any]], fetched_at: str | None = None) -> None:
    [doc_id] = store.save_documents(db, [Document(source="manual", ext_id=key, ticker=TICKER,
                                                  url=f"https://example.com/{key}", text=f"document {key}",
                                                  title=key, form="PR", published_at=day)], fetched_at=fetched_at)
    store.save_extraction(db, doc_id, "test", [{k: v for k, v in r.items() if k in store.DISCLOSURE_FIELDS}
                                               for r in rows])


def test_a_btc_drawdown_crossing_alerts_once_per_thesis_not_once_per_company(tmp_path):
    db = store.open_db(tmp_path / "monitor.db")
    start = date(2025, 1, 1)
    closes = [100_000.0] * 200 + [70_000.0] * 30  # a 30% drawdown from the 365-day high
    store.save_observations(db, "btc_usd", [Observation(start + timedelta(days=i), v) for i, v in enumerate(closes)],
                            "test")
    add_document(db, "lease", "2025-03-03", [lease()])
    score_pending(db, [THESIS], reader=READER)
    drawdowns = [a for a in list_alerts(db) if a["pillar"] == "btc_drawdown"]
    assert [(a["ticker"], "crossed 20 upwards" in " ".join(a["reasons"])) for a in drawdowns] == [(MARKET_WIDE, True)]
    db.close()


def test_a_first_run_with_channels_set_sends_nothing_then_new_news_is_sent(tmp_path):
    db = store.open_db(tmp_path / "monitor.db")
    add_document(db, "lease", "2026-12-01", [lease(day="2026-12-01")], fetched_at="2026-12-01T10:00:00+00:00")
    first = score_pending(db, [THESIS], on_alert=queue_for(["slack"]), reader=READER,
                          now=datetime(2026, 12, 2, tzinfo=UTC))
    assert first.alerts > 0 and db.execute("select count(*) from outbox").fetchone()[0] == 0
    add_document(db, "expansion", "2026-12-03", [disclosure(
        2, "2026-12-03", "contracted_compute", "binding", "positive",
        "TeraWulf and CoreWeave expanded their lease by an additional 80 MW of critical IT load at its Lake Alpha "
        "campus.", counterparty="CoreWeave", mw=80.0)], fetched_at="2026-12-03T09:00:00+00:00")
    score_pending(db, [THESIS], on_alert=queue_for(["slack"]), reader=READER,
                  now=datetime(2026, 12, 3, 10, tzinfo=UTC))
    queued = db.execute("select a.title from outbox o join alerts a on a.id = o.alert_id").fetchall()
    assert queued and all("expanded" in t or "crossed" in t or "Contracted" in t for (t,) in queued)
    db.close()


@pytest.mark.parametrize("history", [False, True])
def test_notify_history_sends_a_backfill_only_when_asked(tmp_path, history):
    db = store.open_db(tmp_path / "monitor.db")
    add_document(db, "lease", "2025-03-03", [lease()])
    score_pending(db, [THESIS], on_alert=queue_for(["slack"]), reader=READER, notify_history=history,
                  now=datetime(2026, 12, 6, tzinfo=UTC))
    assert bool(db.execute("select count(*) from outbox").fetchone()[0]) is history
    db.close()
