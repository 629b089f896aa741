"""bench/latency.py keeps running: one replay prints every figure (the figures are read, never asserted)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_latency_bench_one_replay_prints_latencies_and_sec_request_rate() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "latency.py"), "--phases", "1"], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    for figure in ("20 real 8-K acceptances", "acceptance -> stored", "acceptance -> score pass (alert queued)",
                   "p95/target", "requests to SEC per minute", "peak/ceiling"):
        assert figure in done.stdout, f"{figure!r} missing from:\n{done.stdout}"
