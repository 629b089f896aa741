# Vendored unmodified from the project steering's acceptance scorer, shared/tools/score_extraction.py,
# so that `monitor train` and bench/accuracy.py score with exactly the rules the reviews use.
# tests/test_reader.py checks this copy still equals the shared one when it is beside the repo.
"""Score disclosure predictions against labelled sentences (see ../labels/GUIDE.md).

Usage:
    score_extraction.py GOLD.jsonl PRED.jsonl [--json] [--min-type-f1 X] [--min-commitment X]
                                              [--min-fields X] [--max-soft-as-binding N]

Both files are JSON Lines with an "id" and a "disclosures" list per record. A gold id missing from
the predictions counts as a prediction of no disclosures. Exit status 1 when a --min/--max bound is
not met, 2 on unreadable input, else 0. The last line printed is a one-line summary.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

TYPES = ("contracted_compute", "power", "partnership", "financing", "mining", "btc_exposure")
NUMERIC_FIELDS = ("mw", "usd", "term_years")
FIELDS = ("counterparty",) + NUMERIC_FIELDS


def load(path: str) -> dict[str, dict]:
    records: dict[str, dict] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                records[str(record["id"])] = record
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                sys.exit(f"{path}:{number}: not a record with an id: {error}")
    return records


def by_type(record: dict | None) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for disclosure in (record or {}).get("disclosures") or []:
        if isinstance(disclosure, dict) and disclosure.get("type") in TYPES:
            found.setdefault(disclosure["type"], disclosure)
    return found


def norm_name(value: object) -> str:
    return re.sub(r"[^a-z0-9 ]", "", str(value).lower()).strip()


def field_matches(field: str, gold: object, pred: object) -> bool:
    if pred is None:
        return False
    if field == "counterparty":
        g, p = norm_name(gold), norm_name(pred)
        return bool(g and p) and (g in p or p in g)
    try:
        g, p = float(gold), float(pred)
    except (TypeError, ValueError):
        return False
    return abs(g - p) <= 0.01 * max(abs(g), 1e-9)


def score(gold: dict[str, dict], pred: dict[str, dict]) -> dict:
    tp = fp = fn = 0
    commitment_ok = direction_ok = matched = 0
    field_ok = field_total = field_spurious = 0
    soft_as_binding = false_binding_compute = soft_as_binding_any = 0
    per_type = {t: {"tp": 0, "fp": 0, "fn": 0} for t in TYPES}
    errors: list[str] = []
    for key, gold_record in gold.items():
        g, p = by_type(gold_record), by_type(pred.get(key))
        for t in TYPES:
            if t in g and t in p:
                tp += 1
                per_type[t]["tp"] += 1
                matched += 1
                commitment_ok += g[t].get("commitment") == p[t].get("commitment")
                direction_ok += g[t].get("direction") == p[t].get("direction")
                if g[t].get("commitment") == "soft" and p[t].get("commitment") == "binding":
                    soft_as_binding_any += 1  # optionality of any type counted as done
                    if t == "contracted_compute":
                        soft_as_binding += 1
                    errors.append(f"{key}: soft {t} predicted binding")
                for f in FIELDS:
                    if f in g[t] and g[t][f] is not None:
                        field_total += 1
                        if field_matches(f, g[t][f], p[t].get(f)):
                            field_ok += 1
                        else:
                            errors.append(f"{key}: {t}.{f} gold={g[t][f]!r} pred={p[t].get(f)!r}")
                    elif p[t].get(f) is not None:
                        field_spurious += 1
            elif t in p:
                fp += 1
                per_type[t]["fp"] += 1
                if t == "contracted_compute" and p[t].get("commitment") == "binding":
                    false_binding_compute += 1
                errors.append(f"{key}: spurious {t}")
            elif t in g:
                fn += 1
                per_type[t]["fn"] += 1
                errors.append(f"{key}: missed {t}")

    def f1(c: dict) -> float:
        denom = 2 * c["tp"] + c["fp"] + c["fn"]
        return 2 * c["tp"] / denom if denom else 1.0

    return {
        "records": len(gold),
        "type_precision": tp / (tp + fp) if tp + fp else 1.0,
        "type_recall": tp / (tp + fn) if tp + fn else 1.0,
        "type_f1": f1({"tp": tp, "fp": fp, "fn": fn}),
        "per_type_f1": {t: round(f1(c), 3) for t, c in per_type.items()},
        "commitment_accuracy": commitment_ok / matched if matched else 0.0,
        "direction_accuracy": direction_ok / matched if matched else 0.0,
        "field_accuracy": field_ok / field_total if field_total else 0.0,
        "spurious_fields": field_spurious,
        "soft_as_binding": soft_as_binding,
        "false_binding_compute": false_binding_compute,
        "soft_as_binding_any_type": soft_as_binding_any,
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gold")
    parser.add_argument("pred")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--errors", type=int, default=20, help="how many errors to list")
    parser.add_argument("--min-type-f1", type=float)
    parser.add_argument("--min-commitment", type=float)
    parser.add_argument("--min-fields", type=float)
    parser.add_argument("--max-soft-as-binding", type=int)
    args = parser.parse_args()
    result = score(load(args.gold), load(args.pred))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for line in result["errors"][: args.errors]:
            print("  " + line)
        print("per-type F1:", json.dumps(result["per_type_f1"]))
    failed = []
    if args.min_type_f1 is not None and result["type_f1"] < args.min_type_f1:
        failed.append("type_f1")
    if args.min_commitment is not None and result["commitment_accuracy"] < args.min_commitment:
        failed.append("commitment")
    if args.min_fields is not None and result["field_accuracy"] < args.min_fields:
        failed.append("fields")
    if args.max_soft_as_binding is not None and \
            result["soft_as_binding"] + result["false_binding_compute"] > args.max_soft_as_binding:
        failed.append("soft_as_binding")
    print(
        f"records {result['records']} type_f1 {result['type_f1']:.3f} "
        f"(P {result['type_precision']:.3f} R {result['type_recall']:.3f}) "
        f"commitment {result['commitment_accuracy']:.3f} direction {result['direction_accuracy']:.3f} "
        f"fields {result['field_accuracy']:.3f} soft_as_binding {result['soft_as_binding']} "
        f"false_binding_compute {result['false_binding_compute']} "
        f"soft_as_binding_any_type {result['soft_as_binding_any_type']}"
        + (f" FAILED {','.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
