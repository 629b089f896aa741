"""Extraction accuracy on a labelled set, scored by the project's acceptance scorer.

Run: .venv/bin/python bench/accuracy.py [GOLD.jsonl] [--errors N]
Default gold: ../shared/labels/dev.jsonl. Prints the scorer's summary line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.extract.extractor import Extractor  # noqa: E402

SHARED = ROOT.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("gold", nargs="?", default=str(SHARED / "labels" / "dev.jsonl"))
    parser.add_argument("--errors", type=int, default=0)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("scorer", SHARED / "tools" / "score_extraction.py")
    scorer = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(scorer)  # type: ignore[union-attr]
    extractor = Extractor.from_dir(ROOT / "rules")
    gold = scorer.load(args.gold)
    pred = {key: {"id": key, "disclosures": [d.to_guide() for d in extractor.extract_passage(r["text"])]}
            for key, r in gold.items()}
    result = scorer.score(gold, pred)
    for line in result["errors"][: args.errors]:
        print("  " + line)
    print("per-type F1:", json.dumps(result["per_type_f1"]))
    print(f"records {result['records']} type_f1 {result['type_f1']:.3f} (P {result['type_precision']:.3f} "
          f"R {result['type_recall']:.3f}) commitment {result['commitment_accuracy']:.3f} "
          f"direction {result['direction_accuracy']:.3f} fields {result['field_accuracy']:.3f} "
          f"soft_as_binding {result['soft_as_binding']} false_binding_compute {result['false_binding_compute']}")


if __name__ == "__main__":
    main()
