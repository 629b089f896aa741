"""bench/scale.py keeps running: its --quick smoke run prints every section's figures."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_scale_bench_quick_run_prints_every_figure_and_keeps_reextract_results_identical() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "scale.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for figure in ("cores", "end to end:", "ratio end-to-end/baseline", "backfill: 330 documents",
                   "docs/s", "MiB on disk", "peak RSS", "documents --ticker", "scorecard (load + compute)",
                   "monitor scorecard B0001", "speed-up 1 → 2 workers", "disclosures identical: True",
                   "any 1-second window"):
        assert figure in out, f"{figure!r} missing from:\n{out}"
