"""How many corpus sentences each cue of rules/ fires on: cues tuned to one sentence show up with 0 or 1.

Run: .venv/bin/python scripts/cue_usage.py [--max 1]

Lists every type, commitment and direction cue that matches at most ``--max`` corpus sentences, with
its file and key. Such a cue either is a general phrase a reviewer would write from the GUIDE (keep it)
or was tuned to one sentence (drop it): the reader must not learn a sentence by heart.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.extract.corpus import load_corpus  # noqa: E402
from monitor.extract.rules import load_rules  # noqa: E402

CUE_FILES = ("types.toml", "commitment.toml", "direction.toml")


def cues(rules_dir: Path):
    """(file, key, pattern) for every list of patterns in the cue files."""
    for name in CUE_FILES:
        data = tomllib.loads((rules_dir / name).read_text(encoding="utf-8"))
        stack = [((), data)]
        while stack:
            path, node = stack.pop()
            for key, value in node.items():
                if isinstance(value, dict):
                    stack.append((path + (key,), value))
                elif isinstance(value, list) and key not in ("order", "excluded_by"):
                    for pattern in value:
                        yield name, ".".join(path + (key,)), pattern


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=1)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    args = parser.parse_args()
    load_rules(ROOT / "rules")  # the same validation the monitor applies
    import re

    texts = [e.text for e in load_corpus(args.corpus)]
    total = rare = 0
    for name, key, pattern in cues(ROOT / "rules"):
        total += 1
        hits = sum(1 for text in texts if re.search(pattern, text, re.IGNORECASE))
        if hits <= args.max:
            rare += 1
            print(f"{hits}\t{name}\t{key}\t{pattern}")
    print(f"{rare} of {total} cues fire on at most {args.max} of {len(texts)} corpus sentences", file=sys.stderr)


if __name__ == "__main__":
    main()
