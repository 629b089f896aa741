"""The trained reader: its artefact matches the corpus and rules, it keeps its behaviour, it reads real sentences."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from monitor.documents import normalise_text
from monitor.errors import ConfigError
from monitor.extract.behaviour import load_suites, run_suite
from monitor.extract.corpus import corpus_hash, load_corpus
from monitor.extract.extractor import Extractor, cached_model
from monitor.extract.reader import CueFeatures, fit, load_model
from monitor.extract.rules import load_rules
from monitor.extract.sentences import join_wrapped_lines, split_sentences
from tests.conftest import FIXTURES, MODEL, ROOT, RULES, SAMPLES

CORPUS = ROOT / "corpus"
SHARED_SCORER = ROOT.parent / "shared" / "tools" / "score_extraction.py"
# Floors of the behaviour suites' pass rates: the measured rates of the shipped model, rounded down,
# so a retrain that reads any kind of wording worse fails here. bench/accuracy.py prints the rates.
SUITE_FLOORS = json.loads((FIXTURES / "behaviour" / "floors.json").read_text())


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor.from_paths(RULES, MODEL)


# --- the shipped artefact ----------------------------------------------------------------------------


def test_the_shipped_model_was_trained_on_the_corpus_as_it_stands():
    meta = load_model(MODEL).meta
    assert meta["corpus_hash"] == corpus_hash(CORPUS), "corpus/ changed: rebuild the model with `monitor train`"


def test_the_shipped_model_was_trained_with_the_rules_as_they_stand():
    meta = load_model(MODEL).meta
    assert meta["rules_version"] == load_rules(RULES).version, "rules/ changed: rebuild with `monitor train`"


def test_the_shipped_model_is_small_enough_for_the_repository():
    assert MODEL.stat().st_size <= 50_000_000


def test_the_model_is_loaded_once_per_process():
    assert cached_model(MODEL)[0] is cached_model(MODEL)[0]


def test_a_changed_model_changes_the_extraction_version(tmp_path: Path):
    copy = tmp_path / "reader.joblib"
    copy.write_bytes(MODEL.read_bytes())
    before = Extractor.from_paths(RULES, copy).version
    model = load_model(copy)
    model.meta["note"] = "retrained"
    copy.write_bytes(model.dumps())
    assert Extractor.from_paths(RULES, copy).version != before


def test_a_file_that_is_not_a_model_is_a_config_error_naming_it(tmp_path: Path):
    bogus = tmp_path / "reader.joblib"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="reader.joblib"):
        load_model(bogus)


@pytest.mark.skipif(not SHARED_SCORER.exists(), reason="the shared tools are not beside this clone")
def test_the_vendored_scorer_is_the_shared_acceptance_scorer():
    vendored = (ROOT / "monitor" / "extract" / "scorer.py").read_text().splitlines()
    shared = SHARED_SCORER.read_text().splitlines()
    assert [line for line in vendored if not line.startswith("# ")] == [
        line for line in shared if not line.startswith("#!") and not line.startswith("# ")]


# --- training --------------------------------------------------------------------------------------


def test_training_is_deterministic():
    examples = load_corpus(CORPUS)[::8]  # a slice keeps the test quick; the full fit is the same code
    rules = load_rules(RULES)
    sentences = [e.text for e in load_corpus(CORPUS)[1::40]]
    first = fit(examples, rules)
    second = fit(examples, rules)
    cues = CueFeatures(rules)
    assert first.read(sentences, cues) == second.read(sentences, cues)
    assert first.dumps() == second.dumps()


# --- the corpus -------------------------------------------------------------------------------------


def test_every_corpus_sentence_carries_its_provenance():
    examples = load_corpus(CORPUS)
    assert len({e.ticker for e in examples}) >= 60
    for example in examples:
        assert example.source_url.startswith("http"), example.id
        assert example.ticker and example.group, example.id


def test_a_correction_replaces_the_labels_of_its_sentence(tmp_path: Path):
    (tmp_path / "shared" / "train").mkdir(parents=True)
    record = {"id": "x-1", "ticker": "ACME", "date": "2025-01-01", "source_url": "https://example.com/a",
              "text": "Acme signed an LOI.", "disclosures": [
                  {"type": "contracted_compute", "commitment": "binding", "direction": "positive"}]}
    (tmp_path / "shared" / "train" / "all.jsonl").write_text(json.dumps(record) + "\n")
    fixed = [{"type": "contracted_compute", "commitment": "soft", "direction": "positive"}]
    (tmp_path / "corrections.jsonl").write_text(
        json.dumps({"id": "x-1", "disclosures": fixed, "reason": "GUIDE: a signed LOI is still soft"}) + "\n")
    [example] = load_corpus(tmp_path)
    assert list(example.disclosures) == fixed


def test_a_correction_without_a_reason_is_refused(tmp_path: Path):
    (tmp_path / "corrections.jsonl").write_text(json.dumps({"id": "x-1", "disclosures": []}) + "\n")
    with pytest.raises(ConfigError, match="reason"):
        load_corpus(tmp_path)


def test_a_label_outside_the_guides_sets_is_refused_with_its_line(tmp_path: Path):
    (tmp_path / "shared" / "train").mkdir(parents=True)
    record = {"id": "x-1", "ticker": "ACME", "source_url": "https://example.com/a", "text": "t",
              "disclosures": [{"type": "contracted_compute", "commitment": "maybe", "direction": "positive"}]}
    (tmp_path / "shared" / "train" / "all.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ConfigError, match=r"all.jsonl:1"):
        load_corpus(tmp_path)


# --- sentences as a reader sees them ---------------------------------------------------------------------


def _release_body(name: str) -> str:
    return normalise_text((SAMPLES / "wire" / "releases" / name).read_text().partition("\n\n")[2])


def test_a_hard_wrapped_filing_gives_the_same_sentences_as_the_unwrapped_text():
    body = _release_body("CORZ_2024-06-05_may-2024-production-update-coreweave-200mw.txt")
    wrapped = "\n".join(textwrap.fill(paragraph, 72) for paragraph in body.split("\n"))
    assert [s.text for s in split_sentences(wrapped)] == [s.text for s in split_sentences(body)]


def test_joining_wraps_keeps_every_offset():
    wrapped = textwrap.fill(_release_body("WULF_2025-08-14_fluidstack-200mw-google-backstop.txt"), 72)
    assert len(join_wrapped_lines(wrapped)) == len(wrapped)
    for sentence in split_sentences(wrapped):
        assert wrapped[sentence.start: sentence.end].replace("\n", " ") == sentence.text


def test_headings_bullets_and_table_rows_keep_their_own_lines():
    text = ("Recent Highlights\n• Energized 100 MW at the Denton campus\n• Signed a 12-year lease\n"
            "Bitcoin produced | 703 | 650\nHashrate | 50 | 40")
    assert [s.text for s in split_sentences(text)] == [
        "• Energized 100 MW at the Denton campus", "• Signed a 12-year lease", "Bitcoin produced | 703 | 650",
        "Hashrate | 50 | 40"]


def test_a_fragment_shorter_than_a_clause_is_never_evidence():
    assert [s.text for s in split_sentences("going concern\nEH/s.\nItem 8.01 Other Events")] == [
        "Item 8.01 Other Events"]


# --- behaviour ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", load_suites(FIXTURES / "behaviour"), ids=lambda suite: suite.name)
def test_each_behaviour_suite_passes_at_least_its_floor(extractor: Extractor, suite):
    outcome = run_suite(extractor, suite)
    assert outcome.rate >= SUITE_FLOORS[suite.name], outcome.failures


def test_the_issues_fresh_sentences_come_out_right(extractor: Extractor):
    [suite] = [s for s in load_suites(FIXTURES / "behaviour") if s.name == "issue_sentences"]
    assert run_suite(extractor, suite).failures == []

