"""SEC's XBRL company facts: revenue read from a real payload, fetched through the fair-access client with a
conditional GET, and the trailing twelve months the AI mix divides by."""

from __future__ import annotations

from datetime import date

import pytest

from monitor import store
from monitor.errors import ParseError
from monitor.fetch.companyfacts import fetch_revenue, parse_revenue
from monitor.ledger.build import Ledger
from monitor.ledger.stage import load_ledger
from monitor.ledger.units import quantities, trailing_revenue
from monitor.pipeline import build_client
from tests.conftest import FIXTURES, USER_AGENT, make_config
from tests.servers import Reply

PAYLOAD = FIXTURES / "edgar" / "companyfacts" / "CIK0001835632.json"  # Marvell: see tests/fixtures/edgar/SOURCES.md
URL = "https://data.sec.gov/api/xbrl/companyfacts/CIK0001835632.json"


@pytest.fixture(scope="module")
def facts():
    return parse_revenue(PAYLOAD.read_bytes(), URL)


def test_revenue_facts_are_read_with_their_periods_and_filings(facts):
    fiscal_2025 = [f for f in facts if f.end == date(2026, 1, 31) and f.days > 350]
    assert [(f.concept, f.value, f.form) for f in fiscal_2025] == [
        ("RevenueFromContractWithCustomerExcludingAssessedTax", 8_194_600_000.0, "10-K")]


def test_trailing_revenue_is_the_last_fiscal_year_rolled_forward_by_the_year_to_date(facts):
    rows = [(f.concept, f.start, f.end, f.value, f.filed, URL) for f in facts]
    after_q1 = trailing_revenue(rows, date(2026, 6, 30))
    assert after_q1 is not None and after_q1[0] == pytest.approx(8_194_600_000 + 2_417_800_000 - 1_895_300_000)
    before_q1_filed = trailing_revenue(rows, date(2026, 5, 1))  # the Q1 10-Q was filed on 2026-05-28
    assert before_q1_filed is not None and before_q1_filed[0] == 8_194_600_000
    assert "2025-02-02" in before_q1_filed[1]["sentence"] and before_q1_filed[1]["url"] == URL


def test_a_payload_that_is_not_company_facts_is_a_parse_error_naming_the_url():
    with pytest.raises(ParseError, match="companyfacts/CIK0001835632.json: not a company-facts payload"):
        parse_revenue(b'{"cik": 1}', URL)


def test_revenue_is_fetched_with_a_conditional_get_and_feeds_the_ai_mix(tmp_path, closing, sec_server):
    sec_server.route("/api/xbrl/companyfacts/CIK0001835632.json",
                     Reply(200, PAYLOAD.read_bytes(), {"Content-Type": "application/json"}, etag='"f1"'))
    config = make_config(tmp_path, sec_server)
    db = closing(store.open_db(config.path(config.monitor.db)))
    client = closing(build_client(config, USER_AGENT))
    first = fetch_revenue(client, db, config, "MRVL", 1835632)
    second = fetch_revenue(client, db, config, "MRVL", 1835632)
    assert first.filings_seen > 0 and second.requests == 1
    assert sec_server.requests[-1].headers.get("If-None-Match") == '"f1"'
    ledger = load_ledger(db, "MRVL")
    units = quantities(Ledger("MRVL", [], [], ledger.revenue), date(2026, 6, 30), 180)
    assert units.trailing_mining_usd == pytest.approx(8_717_100_000) and units.ai_mix == 0.0
