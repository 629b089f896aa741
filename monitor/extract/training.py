"""Train the reader from the corpus and measure it the honest way: whole companies held out.

``train`` fits the shipped model on the whole corpus and records, inside the artefact, the corpus
hash, the rules version and the grouped cross-validation figures it was measured with. Grouping is by
ticker: a company's sentences never sit on both sides of a fold, because a user's next peer is a
company the model has never read, and sentences of one release share wording that would flatter a
sentence-level split.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import sklearn
from sklearn.model_selection import GroupKFold

from monitor.extract import scorer
from monitor.extract.classify import read_fields
from monitor.extract.corpus import Example, corpus_hash, load_corpus
from monitor.extract.model import Disclosure
from monitor.extract.reader import FORMAT, CueFeatures, ReaderModel, Reading, Settings, fit
from monitor.extract.rules import Rules, load_rules

FOLDS = 5


@dataclass
class TrainReport:
    model: ReaderModel
    examples: int
    companies: int
    cv: dict[str, Any]  # the scorer's result on out-of-fold predictions


def guide_record(sentence: str, readings: Sequence[Reading], rules: Rules) -> dict[str, Any]:
    """Readings with their fields, in the GUIDE's schema (what the scorer and `monitor extract` give)."""
    return {"disclosures": [
        Disclosure(r.type, r.commitment, r.direction, sentence, 0, len(sentence),
                   **read_fields(sentence, r.type, rules)).to_guide()
        for r in readings
    ]}


def out_of_fold(examples: Sequence[Example], rules: Rules, settings: Settings = Settings(),
                folds: int = FOLDS) -> dict[str, dict[str, Any]]:
    """Predictions for every example by a model that never saw its company."""
    groups = np.array([e.ticker for e in examples])
    cues = CueFeatures(rules)
    predictions: dict[str, dict[str, Any]] = {}
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(examples, groups=groups):
        model = fit([examples[i] for i in train_rows], rules, settings)
        sentences = [examples[i].text for i in test_rows]
        for i, readings in zip(test_rows, model.read(sentences, cues)):
            predictions[examples[i].id] = guide_record(examples[i].text, readings, rules)
    return predictions


def gold_records(examples: Sequence[Example]) -> dict[str, dict[str, Any]]:
    return {e.id: {"id": e.id, "disclosures": list(e.disclosures)} for e in examples}


def score(examples: Sequence[Example], predictions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The acceptance scorer's result, plus soft→binding as a share of the soft disclosures."""
    result = scorer.score(gold_records(examples), predictions)
    soft = sum(1 for e in examples for d in e.disclosures if d["commitment"] == "soft")
    result["soft_disclosures"] = soft
    result["soft_as_binding_share"] = result["soft_as_binding_any_type"] / soft if soft else 0.0
    return result


def train(corpus_dir: Path, rules_dir: Path, settings: Settings = Settings(), folds: int = FOLDS) -> TrainReport:
    """Cross-validate by company, then fit on everything; the artefact carries its provenance."""
    examples = load_corpus(corpus_dir)
    rules = load_rules(rules_dir)
    cv = score(examples, out_of_fold(examples, rules, settings, folds)) if folds > 1 else {}
    model = fit(examples, rules, settings)
    model.meta = {
        "format": FORMAT,
        "corpus_hash": corpus_hash(corpus_dir),
        "rules_version": rules.version,
        "examples": len(examples),
        "companies": len({e.ticker for e in examples}),
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "cv": {k: v for k, v in cv.items() if k != "errors"},
    }
    return TrainReport(model, len(examples), model.meta["companies"], cv)


def summary_line(result: dict[str, Any]) -> str:
    return (f"type F1 {result['type_f1']:.3f} (P {result['type_precision']:.3f} R {result['type_recall']:.3f}) "
            f"commitment {result['commitment_accuracy']:.3f} direction {result['direction_accuracy']:.3f} "
            f"fields {result['field_accuracy']:.3f} soft→binding {result['soft_as_binding_any_type']}"
            f"/{result['soft_disclosures']} ({result['soft_as_binding_share']:.1%}) "
            f"false binding compute {result['false_binding_compute']}")
