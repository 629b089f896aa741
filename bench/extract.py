"""Extract-stage figures: documents/second and words/second over the bundled documents.

Run: .venv/bin/python bench/extract.py [--rounds N]

1. Extraction speed (``Extractor.extract`` on each bundled document's text,
   parsed as the replay parses it), as a ratio against spaCy's bare tokenizer
   (``spacy.blank("en")``, ``nlp.tokenizer(text)`` per text) on the same texts
   in the same process: the cheapest thing any spaCy-based reader must do.
2. The stage as the daemon runs it: extraction plus the per-document
   transaction that replaces its disclosures (``reextract_all`` on a store
   holding the replayed samples).
3. Resident memory before and after the reader model is loaded.

Each figure is the best of several rounds after one warm-up pass, so it
measures the code rather than the first call's imports and caches.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import spacy  # noqa: E402

from monitor import store  # noqa: E402
from monitor.extract.stage import load_extractor, reextract_all  # noqa: E402
from monitor.fetch.replay import ReplayPlan, load_manifest, replay_samples, sample_document  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
RULES = ROOT / "rules"
MODEL = ROOT / "models" / "reader.joblib"


def best_of(rounds: int, work: Callable[[], object]) -> float:
    """Seconds of the fastest of ``rounds`` runs of ``work``, after one warm-up run."""
    work()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return max(min(times), 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per figure (best is kept)")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, spaCy {spacy.__version__}")
    samples = load_manifest(SAMPLES)
    texts = [sample_document(SAMPLES, sample).text for sample in samples]
    words = sum(len(text.split()) for text in texts)
    chars = sum(len(text) for text in texts)
    before_model = resident_mib()
    extractor = load_extractor(RULES, MODEL)
    with_model = resident_mib()
    nlp = spacy.blank("en")
    tokenizer = nlp.tokenizer
    print(f"{len(texts)} bundled documents, {words:,} words, {chars:,} characters "
          f"(largest {max(len(t) for t in texts):,}); rules {extractor.version}; best of {args.rounds} rounds\n")

    found = sum(len(extractor.extract(text)) for text in texts)
    tokenize = best_of(args.rounds, lambda: [tokenizer(text) for text in texts])
    extract = best_of(args.rounds, lambda: [extractor.extract(text) for text in texts])

    print(f"{'':32} {'docs/s':>10} {'words/s':>12} {'ms/doc':>8}")
    for name, seconds in (("spaCy bare tokenizer (baseline)", tokenize), ("extraction", extract)):
        print(f"{name:32} {len(texts) / seconds:>10,.0f} {words / seconds:>12,.0f} "
              f"{seconds * 1000 / len(texts):>8.2f}")
    print(f"\nextraction speed / tokenizer speed: {tokenize / extract:.3f} "
          f"(extraction takes {extract / tokenize:.1f}x the tokenizer's time); {found} disclosures found")

    with tempfile.TemporaryDirectory() as tmp:
        db = store.open_db(Path(tmp) / "bench.db")
        replay_samples(db, ReplayPlan(SAMPLES, {sample.ticker.upper() for sample in samples}))
        stored = db.execute("select count(*) from documents").fetchone()[0]
        stage = best_of(args.rounds, lambda: reextract_all(db, extractor))
        db.close()
    print(f"\nstage (extract + one transaction per document) on {stored} stored documents: "
          f"{stored / stage:,.0f} docs/s, {stage * 1000 / stored:.2f} ms/doc")
    print(f"\nresident memory: {before_model:,.0f} MiB with the monitor imported, {with_model:,.0f} MiB with the "
          f"reader model loaded ({MODEL.stat().st_size / 2**20:.1f} MiB on disk), {resident_mib():,.0f} MiB after "
          f"the runs (what a daemon's extract job holds)")


def resident_mib() -> float:
    """This process's resident set now (Linux /proc), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
