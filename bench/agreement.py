"""Agreement between the first labels and a blind second labeller on the double-labelled sample.

Run: .venv/bin/python bench/agreement.py [--errors N]

The second labels (``corpus/second/labels_*.jsonl``) were made blind to the first and to any model.
Agreement is the acceptance scorer run with the first labels as gold and the second as predictions
(type F1 is symmetric; commitment and direction are compared where both found the same type).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.extract import scorer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--errors", type=int, default=0)
    args = parser.parse_args()
    first: dict[str, dict] = {}
    for path in sorted((args.corpus / "new").glob("*/labels.jsonl")):
        first.update(scorer.load(str(path)))
    second: dict[str, dict] = {}
    for path in sorted((args.corpus / "second").glob("labels_*.jsonl")):
        second.update(scorer.load(str(path)))
    gold = {key: first[key] for key in second if key in first}
    result = scorer.score(gold, second)
    print(f"double-labelled sentences: {len(gold)} of {len(first)} new ({len(gold) / len(first):.1%}); "
          f"with a disclosure by either: "
          f"{sum(1 for k in gold if gold[k]['disclosures'] or second[k]['disclosures'])}")
    print(f"type F1 {result['type_f1']:.3f} (P {result['type_precision']:.3f} R {result['type_recall']:.3f}) "
          f"commitment {result['commitment_accuracy']:.3f} direction {result['direction_accuracy']:.3f} "
          f"fields {result['field_accuracy']:.3f}")
    print("per type F1: " + json.dumps(result["per_type_f1"]))
    for line in result["errors"][: args.errors]:
        print("  " + line)


if __name__ == "__main__":
    main()
