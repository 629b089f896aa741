"""Render the weekly digest from the bundled samples and screenshot its HTML with headless Chromium.

    .venv/bin/python scripts/screenshot_digest.py [--week 2025-W33] [--out DIR]

Builds an offline store in a temporary folder (the bundled documents and market files of
``data/samples/``, extracted with ``rules/`` and scored with ``rules/theses/``), writes the digest of
the week into ``--out`` (default: a new temporary folder): ``digest-YYYY-Www.html``, ``.txt`` and a PNG
chart per company, then, when Chromium is installed, ``digest.png``, a 1200x3000 screenshot of the page.

The default week, 2025-W33 (11-17 Aug 2025), holds MARA's 8-K of 11 Aug (the Exaion investment), TeraWulf's
Fluidstack leases with Google's backstop (binding and soft disclosures, two alerts) and APLD's soft power
announcement still pending; 2025-W35 has Applied Digital's second CoreWeave lease.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor import store  # noqa: E402
from monitor.extract.extractor import Extractor  # noqa: E402
from monitor.extract.stage import extract_pending  # noqa: E402
from monitor.fetch.replay import ReplayPlan, replay_samples  # noqa: E402
from monitor.market.replay import replay_market  # noqa: E402
from monitor.notify.digest import build_digest, iso_week_bounds, render_digest  # noqa: E402
from monitor.score.stage import score_pending  # noqa: E402
from monitor.score.thesis import load_theses  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
DEFAULT_WEEK = "2025-W33"


def build_store(folder: Path):
    """The offline store: bundled documents and market data, extracted and scored."""
    theses = load_theses(ROOT / "rules" / "theses")
    db = store.open_db(folder / "monitor.db")
    replay_samples(db, ReplayPlan(SAMPLES, {t for thesis in theses for t in thesis.companies}))
    replay_market(db, SAMPLES / "market")
    extract_pending(db, Extractor.from_dir(ROOT / "rules"))
    score_pending(db, theses)
    return db, theses


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def screenshot(chromium: str, html: Path, png: Path, profile: Path, size: str = "1200,3000") -> None:
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={size}",
               html.resolve().as_uri()]
    subprocess.run(command, check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--week", default=DEFAULT_WEEK, help=f"ISO week YYYY-Www (default {DEFAULT_WEEK})")
    parser.add_argument("--out", type=Path, help="output folder (default: a new temporary folder)")
    parser.add_argument("--window-size", default="1200,3000", help="screenshot size WIDTH,HEIGHT in px")
    args = parser.parse_args(argv)
    try:
        _, week_end = iso_week_bounds(args.week)
    except ValueError as exc:
        parser.error(str(exc))
    out = args.out or Path(tempfile.mkdtemp(prefix="digest-"))
    with tempfile.TemporaryDirectory(prefix="digest-store-") as work:
        db, theses = build_store(Path(work))
        try:
            digest = build_digest(db, theses, week_end)
            files = render_digest(digest, out)
        finally:
            db.close()
        print(f"html:   {files.html_path}")
        print(f"text:   {files.text_path}")
        for chart in files.chart_paths:
            print(f"chart:  {chart}")
        chromium = find_chromium()
        if chromium is None:
            print("chromium not found: install it (Debian/Ubuntu: apt-get install -y chromium) to get a screenshot")
            return 0
        png = out / "digest.png"
        try:
            screenshot(chromium, files.html_path, png, Path(work) / "chromium-profile", args.window_size)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            print(f"chromium failed: {exc} {detail.decode(errors='replace')[-500:]}", file=sys.stderr)
            return 1
        print(f"screenshot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
