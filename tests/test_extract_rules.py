"""Extraction behaviours, one per test, on real sentences.

Sentences come from the bundled samples (data/samples/, provenance there) and from SEC filings
outside the dev set (tests/fixtures/extract/sec_sentences.md gives each one's page).
"""

from __future__ import annotations

import pytest

from monitor.errors import ConfigError
from monitor.extract.extractor import Extractor
from monitor.extract.model import WITHHELD
from monitor.fetch.html_text import html_to_text
from tests.conftest import MODEL, ROOT, RULES, SAMPLES


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.from_paths(RULES, MODEL)


def read(extractor: Extractor, sentence: str) -> dict[str, dict]:
    return {d.type: d.to_guide() for d in extractor.extract_passage(sentence)}


# --- binding vs soft -------------------------------------------------------------------


def test_signed_lease_is_binding_contracted_compute_with_tenant_and_term(extractor):
    found = read(extractor, "DALLAS — June 2, 2025 — Applied Digital Corporation (Nasdaq: APLD), a designer, builder "
                 "and operator of next-generation digital infrastructure for HPC applications, has entered into two "
                 "approximately 15-year lease agreements with CoreWeave, the AI Hyperscaler™.")
    assert found["contracted_compute"] == {"type": "contracted_compute", "commitment": "binding",
                                           "direction": "positive", "counterparty": "CoreWeave", "term_years": 15}


def test_exclusivity_is_soft_even_with_megawatts(extractor):
    found = read(extractor, "Fluidstack Granted 30-day Exclusivity for CB-5, Adding Potential 160 MW of Critical IT Load")
    assert found["contracted_compute"]["commitment"] == "soft"
    assert found["contracted_compute"]["mw"] == 160


def test_conditional_agreement_is_soft_though_entered_into(extractor):
    found = read(extractor, "On January 15, 2024, the Company entered into a conditional agreement to provide HPC "
                 "datacenter capacity at its Ellendale, North Dakota campus, subject to finalization of definitive "
                 "lease documents.")
    assert found["contracted_compute"]["commitment"] == "soft"


def test_right_of_first_offer_is_soft(extractor):
    found = read(extractor, "The Agreement grants Fluidstack a Right of First Offer (ROFO) for up to an additional "
                 "1,000 MW of IT capacity at future expansion phases of the campus, subject to the expansion of power "
                 "at the site.")
    assert found == {"contracted_compute": {"type": "contracted_compute", "commitment": "soft",
                                            "direction": "positive", "counterparty": "Fluidstack", "mw": 1000}}


def test_conditional_main_clause_makes_contract_value_soft(extractor):
    found = read(extractor, "If exercised, these extension options would bring the total contracted revenue for this "
                 "transaction to approximately $2.0 billion and approximately $9.0 billion in total for the entire lease.")
    assert found["contracted_compute"]["commitment"] == "soft"
    assert found["contracted_compute"]["usd"] == 2_000_000_000


def test_value_of_a_signed_lease_stays_binding_though_anticipated(extractor):
    found = read(extractor, "Over the approximately 15-year term, Applied Digital anticipates generating approximately "
                 "$7 billion in total revenue from the leases.")
    assert found["contracted_compute"]["commitment"] == "binding"


def test_priced_notes_expected_to_close_are_binding(extractor):
    found = read(extractor, "The offering is expected to close on July 25, 2025, subject to satisfaction of customary "
                 "closing conditions.")
    assert found["financing"]["commitment"] == "binding"


def test_unexercised_option_to_buy_more_notes_is_soft(extractor):
    found = read(extractor, "TeraWulf has granted the initial purchasers of the Convertible Notes a 13-day option to "
                 "purchase up to an additional $150 million aggregate principal amount of the Convertible Notes.")
    assert found["financing"] == {"type": "financing", "commitment": "soft", "direction": "neutral",
                                  "usd": 150_000_000}


def test_non_binding_letter_of_intent_capacity_is_soft_power(extractor):
    found = read(extractor, "Hardware means Equipment with total power capacity of approximately 110-MegaWatts (“MW”) "
                 "up to 500-MW.")
    assert found["power"]["commitment"] == "soft" and found["power"]["mw"] == 110


# --- negation and direction ----------------------------------------------------------------


def test_negated_commitment_is_soft_and_negative(extractor):
    found = read(extractor, "During the year ended December 31, 2023, the Company elected not to purchase the applicable "
                 "quantity of Antminer S21 miners, as allowed under the letter of intent, and instead the $1.2 million "
                 "security deposit was credited to the Company's account with Bitmain PTE and applied to the July 2023 "
                 "Bitmain Agreement.")
    [disclosure] = found.values()
    assert (disclosure["commitment"], disclosure["direction"]) == ("soft", "negative")


def test_zero_coupon_convertible_is_cheap_financing(extractor):
    found = read(extractor, "- $875 million convertible senior notes offering (0.00% coupon, 42.5% conversion premium)")
    assert found["financing"]["direction"] == "positive" and found["financing"]["usd"] == 875_000_000


def test_post_halving_production_drop_is_negative_mining(extractor):
    found = read(extractor, "May 2024 reflects the first full month of reduced block rewards after the April 2024 "
                 "Bitcoin halving.")
    assert found["mining"]["direction"] == "negative"


# --- units and numbers ----------------------------------------------------------------------


def test_gigawatts_become_megawatts(extractor):
    found = read(extractor, "The Ellendale campus was planned to be engineered for high-density compute and designed to "
                 "scale up to 1 gigawatt over time.")
    assert found["power"]["mw"] == 1000


def test_billions_and_millions_become_dollars(extractor):
    billions = read(extractor, "Base-Term Contract Value: Total contract value of $7.0 billion over a 15-year base lease "
                    "term, inclusive of a 3.0% annual base rent escalator.")
    millions = read(extractor, "The agreement represents approximately $830 million in contracted revenue over the "
                    "initial 10-year term and includes two five-year extension options.")
    assert billions["contracted_compute"]["usd"] == 7_000_000_000
    assert millions["contracted_compute"]["usd"] == 830_000_000
    assert millions["contracted_compute"]["term_years"] == 10  # not the five-year extension options


def test_term_in_months_becomes_years(extractor):
    found = read(extractor, "Subsequent to November 30, 2023, the Company entered into three additional agreements for "
                 "services in our cloud services and datacenter hosting segments totaling a combined $104.4 million "
                 "over a weighted average term of 32 months.")
    assert found["contracted_compute"]["term_years"] == pytest.approx(2.67)
    assert found["contracted_compute"]["usd"] == 104_400_000


def test_figures_of_an_earlier_deal_are_not_fields(extractor):
    found = read(extractor, "The offering size was increased from the previously announced offering size of $800 million "
                 "aggregate principal amount of notes.")
    assert "usd" not in found["financing"]


def test_per_share_prices_are_not_fields(extractor):
    found = read(extractor, "The notes are convertible into shares of the Company’s common stock at an initial "
                 "conversion rate of 49.3619 shares per $1,000 principal amount of notes (equivalent to an initial "
                 "conversion price of approximately $20.2585 per share of common stock).")
    assert "usd" not in found["financing"]


# --- counterparties -------------------------------------------------------------------------


def test_backstop_counterparty_is_the_guarantor_not_the_tenant(extractor):
    found = read(extractor, "In addition, Google will backstop an additional $333 million of Fluidstack's lease "
                 "obligations to support project-related debt.")
    assert found == {"partnership": {"type": "partnership", "commitment": "binding", "direction": "positive",
                                     "counterparty": "Google", "usd": 333_000_000}}


def test_unlisted_counterparty_named_with_its_acronym(extractor):
    found = read(extractor, "In February 2022, the Company entered into an agreement with the Power Authority of the "
                 "State of New York (“NYPA”) for the purchase of up to 90 MW of electric power over a term of ten years.")
    assert found["power"]["counterparty"] == "Power Authority of the State of New York"
    assert (found["power"]["mw"], found["power"]["term_years"]) == (90, 10)


# --- boilerplate and whole documents ------------------------------------------------------------


def test_safe_harbour_paragraph_yields_nothing(extractor):
    paragraph = ("Statements in this Current Report on Form 8-K and the exhibits attached hereto about future "
                 "expectations, plans, and prospects, as well as any other statements regarding matters that are not "
                 "historical facts, may constitute “forward-looking statements” within the meaning of The Private "
                 "Securities Litigation Reform Act of 1995. These statements include, but are not limited to, "
                 "statements relating to the Company’s use of the net proceeds of the offering and the impact of the "
                 "capped call transactions.")
    assert extractor.extract(paragraph) == []


def test_item_1_01_section_of_a_bundled_8k_yields_its_agreement(extractor):
    text = html_to_text((SAMPLES / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm").read_bytes()).text
    item_101 = text.index("Item 1.01")
    item_203 = text.index("Item 2.03")
    in_section = [d for d in extractor.extract(text) if item_101 < d.start < item_203]
    financing = [d for d in in_section if d.type == "financing" and d.commitment == "binding"]
    assert any(d.usd == 1_000_000_000 for d in financing)
    assert all(text[d.start:d.end] == d.sentence for d in in_section)
    assert not any("forward-looking" in d.sentence for d in extractor.extract(text))


def test_a_document_without_disclosures_yields_none(extractor):
    text = html_to_text((ROOT / "tests" / "fixtures" / "edgar" / "0000796343-23-000044" / "adbeex991q123.htm")
                        .read_bytes()).text
    assert extractor.extract(text) == []


def test_redacted_figure_is_withheld_never_a_number(extractor):
    # No bundled exhibit redacts a dollar figure, so the redaction marker of Reg S-K 601(b)(10) exhibits
    # is put in a real sentence in place of its amount.
    found = read(extractor, "In addition, Google will backstop an additional $[***] of Fluidstack's lease obligations "
                 "to support project-related debt.")
    [disclosure] = extractor.extract_passage("In addition, Google will backstop an additional $[***] of Fluidstack's "
                                            "lease obligations to support project-related debt.")
    assert disclosure.usd == WITHHELD
    assert "usd" not in found["partnership"]


def test_a_redacted_place_is_not_a_withheld_figure(extractor):
    [disclosure] = extractor.extract_passage("Re: Proposal for a Joint Venture to build, equip and operate data "
                                            "centers in [***], USA.")
    assert disclosure.usd is None and disclosure.mw is None


# --- rules as data ----------------------------------------------------------------------------------


def test_a_broken_pattern_in_rules_is_a_config_error_naming_file_and_key(tmp_path):
    for path in (ROOT / "rules").glob("*.toml"):
        (tmp_path / path.name).write_text(path.read_text())
    broken = (tmp_path / "types.toml").read_text().replace("'\\bhalving\\b',", "'(unclosed',", 1)
    (tmp_path / "types.toml").write_text(broken)
    with pytest.raises(ConfigError, match=r"types.toml: mining.strong\[\d+\]: bad pattern"):
        Extractor.from_paths(tmp_path, MODEL)


def test_changing_a_rules_file_changes_the_version(tmp_path):
    for path in (ROOT / "rules").glob("*.toml"):
        (tmp_path / path.name).write_text(path.read_text())
    before = Extractor.from_paths(tmp_path, MODEL).version
    (tmp_path / "entities.toml").write_text((tmp_path / "entities.toml").read_text() + "\n# edited\n")
    assert Extractor.from_paths(tmp_path, MODEL).version != before


DEV_SET = ROOT.parent / "shared" / "labels" / "dev.jsonl"


@pytest.mark.skipif(not DEV_SET.exists(), reason="the shared dev set is not beside the project")
def test_no_dev_sentence_is_written_into_the_rules():
    import json

    rules_text = " ".join(path.read_text().lower() for path in (ROOT / "rules").glob("*.toml"))
    for line in DEV_SET.read_text().splitlines():
        text = json.loads(line)["text"].lower()
        windows = [text[i:i + 60] for i in range(0, max(len(text) - 60, 1), 10)]
        assert not any(len(window) == 60 and window in rules_text for window in windows), text
