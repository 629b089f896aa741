"""Extraction accuracy measured by company: whole companies held out, never sentences of a seen one.

Run: .venv/bin/python bench/accuracy.py [--corpus corpus] [--folds 5] [--errors N] [--no-rules]

Prints, for the corpus as it stands:
1. its counts (sentences, documents, companies, disclosures per type, binding/soft, directions);
2. grouped cross-validation (5 folds by ticker) of the trained reader: type F1/P/R overall and per
   type, commitment, direction, fields, soft→binding of any type, false binding compute, scored by
   the project's acceptance scorer; beside it the hand-written rules alone on the same sentences;
3. the dev set scored by a reader trained on everything but the dev set;
4. the behaviour suites (tests/fixtures/behaviour/*.jsonl) with the shipped model: pass rate each.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.extract.behaviour import load_suites, run_suite  # noqa: E402
from monitor.extract.classify import read_sentence  # noqa: E402
from monitor.extract.corpus import Example, load_corpus  # noqa: E402
from monitor.extract.extractor import Extractor  # noqa: E402
from monitor.extract.model import TYPES  # noqa: E402
from monitor.extract.reader import CueFeatures, Reading, fit  # noqa: E402
from monitor.extract.rules import load_rules  # noqa: E402
from monitor.extract.training import guide_record, out_of_fold, score, summary_line  # noqa: E402


def counts(examples: list[Example]) -> None:
    types: collections.Counter[str] = collections.Counter()
    commitments: collections.Counter[str] = collections.Counter()
    directions: collections.Counter[str] = collections.Counter()
    for e in examples:
        for d in e.disclosures:
            types[d["type"]] += 1
            commitments[d["commitment"]] += 1
            directions[d["direction"]] += 1
    groups = collections.Counter(e.group for e in examples)
    print(f"corpus: {len(examples):,} sentences, {len({e.source_url for e in examples}):,} documents, "
          f"{len({e.ticker for e in examples})} companies; "
          f"{sum(1 for e in examples if e.disclosures):,} with disclosures")
    print("  per type: " + ", ".join(f"{t} {types[t]}" for t in TYPES))
    print("  commitment: " + ", ".join(f"{k} {v}" for k, v in commitments.most_common())
          + "; direction: " + ", ".join(f"{k} {v}" for k, v in directions.most_common()))
    print("  groups: " + ", ".join(f"{k} {v}" for k, v in sorted(groups.items())))


def per_type_table(examples: list[Example], predictions: dict[str, dict[str, Any]]) -> None:
    print(f"  {'type':<20}{'F1':>7}{'P':>7}{'R':>7}{'gold':>7}")
    for t in TYPES:
        tp = fp = fn = 0
        for e in examples:
            gold = t in e.by_type()
            pred = any(d["type"] == t for d in predictions.get(e.id, {}).get("disclosures", []))
            tp += gold and pred
            fp += pred and not gold
            fn += gold and not pred
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        print(f"  {t:<20}{f:>7.3f}{p:>7.3f}{r:>7.3f}{tp + fn:>7}")


def rules_predictions(examples: list[Example], rules: Any) -> dict[str, dict[str, Any]]:
    predictions = {}
    for e in examples:
        readings = [Reading(r.type, r.commitment, r.direction) for r in read_sentence(e.text, rules)]
        predictions[e.id] = guide_record(e.text, readings, rules)
    return predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "reader.joblib")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--errors", type=int, default=0, help="list this many errors of the grouped CV")
    parser.add_argument("--no-rules", action="store_true", help="skip the rules-only baseline")
    args = parser.parse_args()
    examples = load_corpus(args.corpus)
    rules = load_rules(args.rules)
    counts(examples)

    started = time.perf_counter()
    predictions = out_of_fold(examples, rules, folds=args.folds)
    result = score(examples, predictions)
    print(f"\n{args.folds}-fold cross-validation by company ({time.perf_counter() - started:.0f} s):")
    print(f"  reader: {summary_line(result)}")
    per_type_table(examples, predictions)
    if not args.no_rules:
        baseline = score(examples, rules_predictions(examples, rules))
        print(f"  rules alone on the same sentences: {summary_line(baseline)}")
    for line in result["errors"][: args.errors]:
        print("    " + line)

    dev = [e for e in examples if e.group == "dev"]
    if dev:
        model = fit([e for e in examples if e.group != "dev"], rules)
        cues = CueFeatures(rules)
        dev_predictions = {e.id: guide_record(e.text, readings, rules)
                           for e, readings in zip(dev, model.read([e.text for e in dev], cues))}
        print(f"\ndev set ({len(dev)} sentences) by a reader trained without it: "
              f"{summary_line(score(dev, dev_predictions))}")

    if args.model.exists():
        extractor = Extractor.from_paths(args.rules, args.model)
        print(f"\nbehaviour suites (shipped model {args.model.name}):")
        for suite in load_suites(ROOT / "tests" / "fixtures" / "behaviour"):
            outcome = run_suite(extractor, suite)
            print(f"  {suite.name:<28}{outcome.passed:>4}/{outcome.total:<4}{outcome.rate:>7.1%}")
            for failure in outcome.failures[: args.errors]:
                print(f"      {json.dumps(failure, ensure_ascii=False)}")


if __name__ == "__main__":
    main()
