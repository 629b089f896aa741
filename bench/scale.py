"""Speed and scale figures, printed in one run with the machine's core count.

Run: .venv/bin/python bench/scale.py [--docs N] [--quick] [--full-extract]

1. End to end on the bundled set: the offline replay of ``data/samples/`` (real parsers, fetched bytes →
   stored documents, plus the bundled market series), extraction and scoring into a fresh store, as
   documents/second and as a ratio against two baselines measured in the same process on the same
   payloads (best of a few rounds): reading + decoding the bytes, and spaCy's bare tokenizer over the
   parsed texts.
2. A backfill of ``--docs`` documents (default 100,000) built by replaying the bundled real documents under
   new ids, through ``store.save_documents`` (the path every fetch route takes): throughput, peak RSS,
   database size, and the time of the library functions behind ``monitor scorecard TICKER`` and
   ``monitor documents --ticker T`` at that size, with the ticker indexes dropped ("before") and as
   ``store.open_db`` recreates them ("after"), and the real CLI commands once each.

   How the documents are made: the bundled set holds 33 distinct real texts (38 payloads, some the same
   release filed twice). A company stores a given text once (per-company content-hash dedupe), so the
   backfill gives each synthetic company (``B0000``, ``B0001`` ...) every distinct text once, under a new
   accession number, CIK, doc key and URL, its dates moved back by up to two years (a different shift per
   company) so documents spread over time. 100,000 documents are ~3,000 companies of 33 documents each:
   the size of a watch list covering most US-listed operating companies, each with a realistic year of
   8-Ks, exhibits and releases. Texts stay byte-identical to the real payloads (none is edited to dodge
   the dedupe), so the extractor sees real text.

   Extraction at 100k: the real extractor runs at roughly 50-100 documents/second per core here
   (section 3 measures it), so extracting all 100,000 documents would take 10-30 minutes on two busy
   cores. By default, each distinct text is extracted once by the real extractor and its rows are written
   for every document carrying that text through ``store.save_extraction`` (the stage's own write, one
   transaction per document); the result is what the stage would store, because the texts are identical.
   ``--full-extract`` runs the real stage (``reextract_parallel``, 2 workers) over every document instead.
   Scoring runs the real ``score_pending`` on a sample of companies (``--score-companies``), since its
   cost is per company (every weekly market event re-scores a company's card); the run prints the rate.
3. Re-extraction scaling: ``reextract`` with 1 and with 2 workers on the same store (``--reextract-docs``
   documents of the backfill), documents/second each, the speed-up, and a check that both leave
   identical disclosures.
4. Requests per poll (O(1) in watched companies) is ``bench/fetch.py``'s measurement, imported and run
   here; the SEC limiter check sends requests through the real HttpClient to a local server and
   reports the most requests the server saw in any one-second window (must be <= 10).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import spacy  # noqa: E402
import sqlite_utils  # noqa: E402

from bench.extract import best_of  # noqa: E402
from bench.fetch import requests_per_poll  # noqa: E402
from monitor import store
from monitor.schema import MIGRATIONS  # noqa: E402
from monitor.documents import Document  # noqa: E402
from monitor.extract.extractor import Extractor  # noqa: E402
from monitor.extract.stage import disclosure_row, extract_pending, reextract_parallel  # noqa: E402
from monitor.fetch.replay import ReplayPlan, load_manifest, replay_samples, sample_document  # noqa: E402
from monitor.market.replay import replay_market  # noqa: E402
from monitor.pipeline import build_client  # noqa: E402
from monitor.score.engine import compute  # noqa: E402
from monitor.ledger.stage import LedgerReader, load_ledger, update_ledgers  # noqa: E402
from monitor.ledger.units import quantities  # noqa: E402
from monitor.score.stage import load_inputs, score_pending  # noqa: E402
from monitor.score.thesis import Thesis, load_theses  # noqa: E402
from tests.conftest import USER_AGENT, make_config  # noqa: E402
from tests.servers import FixtureServer, Reply  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
RULES = ROOT / "rules"
MODEL = ROOT / "models" / "reader.joblib"
THESES = ROOT / "rules" / "theses"
SEC_LIMIT = 10
# The indexes the per-company queries need; "before" drops them, store.open_db puts them back.
TICKER_INDEXES = ("idx_documents_ticker_content_hash", "idx_documents_ticker_published_at",
                  "idx_disclosures_ticker_type")


def seconds(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# --- 1. end to end on the bundled set ---------------------------------------------------------------------


def end_to_end(tmp: Path, rounds: int, extractor: Extractor, theses: list[Thesis]) -> None:
    samples = load_manifest(SAMPLES)
    files = [SAMPLES / s.file for s in samples]
    texts = [sample_document(SAMPLES, s).text for s in samples]
    tickers = {s.ticker.upper() for s in samples}
    tokenizer = spacy.blank("en").tokenizer

    decode = best_of(5, lambda: [f.read_bytes().decode("utf-8", errors="replace") for f in files])
    tokenize = best_of(3, lambda: [tokenizer(text) for text in texts])
    stages = {"replay (parse + store)": 0.0, "market replay": 0.0, "extract": 0.0, "score": 0.0}
    for i in range(rounds):
        db = store.open_db(tmp / f"e2e{i}.db")
        took, replayed = seconds(lambda: replay_samples(db, ReplayPlan(SAMPLES, tickers)))
        stages["replay (parse + store)"] += took
        stages["market replay"] += seconds(lambda: replay_market(db, SAMPLES / "market"))[0]
        stages["extract"] += seconds(lambda: extract_pending(db, extractor))[0]
        took, scored = seconds(lambda: score_pending(db, theses, reader=LedgerReader.from_dir(RULES)))
        stages["score"] += took
        db.close()
    total = sum(stages.values())
    docs = len(files) * rounds
    print(f"1. end to end on the bundled set: {len(files)} payloads → {replayed.documents_added} documents "
          f"stored → extracted → scored ({scored.events} score events, {scored.scorecards} scorecards), "
          f"{rounds} round(s) into fresh stores")
    for name, took in stages.items():
        print(f"   {name:24} {took / rounds * 1000:8.0f} ms/round  ({took / total:5.1%})")
    print(f"   end to end: {docs / total:8.1f} payloads/s")
    print(f"   baseline read + decode the same bytes: {len(files) / decode:10,.0f} payloads/s   "
          f"ratio end-to-end/baseline: {decode * rounds / total:.5f}")
    print(f"   baseline spaCy bare tokenizer on the texts: {len(files) / tokenize:7,.0f} payloads/s   "
          f"ratio end-to-end/baseline: {tokenize * rounds / total:.4f}")


# --- 2. the backfill ----------------------------------------------------------------------------------------


def distinct_documents() -> list[Document]:
    """The bundled documents as the replay parses them, one per distinct text (as a company stores them)."""
    seen: dict[str, Document] = {}
    for sample in load_manifest(SAMPLES):
        document = sample_document(SAMPLES, sample)
        seen.setdefault(document.content_hash, document)
    return list(seen.values())


def ticker_of(company: int) -> str:
    return f"B{company:04d}"


def backfill_documents(originals: list[Document], count: int) -> Iterator[list[Document]]:
    """``count`` documents as filings (lists stored together): every distinct text once per company."""
    made = 0
    for company in range(math.ceil(count / len(originals))):
        ticker, cik, shift = ticker_of(company), 9_000_000 + company, timedelta(days=(company * 7) % 730)
        filings: dict[str, list[Document]] = {}
        for number, original in enumerate(originals):
            if made == count:
                break
            day = (date.fromisoformat(original.published_at[:10]) - shift).isoformat()
            filing = original.accession or original.url  # an 8-K and its EX-99 stay one filing
            sequence = list(filings).index(filing) if filing in filings else len(filings)
            accession = f"{cik:010d}-{day[2:4]}-{sequence:06d}"
            name = original.url.rsplit("/", 1)[-1] or f"doc{number}.htm"
            if original.source == "edgar":
                url = f"https://www.sec.gov/Archives/edgar/data/{cik}/{accession.replace('-', '')}/{name}"
                ext_id = f"{accession}:{name}"
            else:
                url = f"https://newswire.example/{ticker.lower()}/{day}/{number}/{name}"
                accession, ext_id = "", url
            filings.setdefault(filing, []).append(replace(
                original, ticker=ticker, cik=cik, url=url, ext_id=ext_id, accession=accession, published_at=day))
            made += 1
        yield from filings.values()


def write_backfill_config(tmp: Path, db_path: Path, tickers: list[str]) -> Path:
    """A config and a copy of the seed thesis watching the synthetic companies, for the CLI runs."""
    theses = tmp / "theses"
    theses.mkdir(exist_ok=True)
    seed = (THESES / "mara_ai_pivot.toml").read_text(encoding="utf-8")
    watched = re.sub(r"(?m)^companies = \[.*\]$", f"companies = {json.dumps(tickers)}", seed, count=1)
    (theses / "mara_ai_pivot.toml").write_text(watched, encoding="utf-8")
    config = tmp / "config.toml"
    config.write_text(
        f'[monitor]\ndb = "{db_path}"\nnetwork = "offline"\nsamples_dir = "{SAMPLES}"\nrules_dir = "{RULES}"\n'
        f'theses_dir = "{theses}"\n\n[sec]\ntickers_file = "{ROOT / "data" / "company_tickers.json"}"\n',
        encoding="utf-8")
    return config


def replayed_extraction(db: sqlite_utils.Database, extractor: Extractor, originals: list[Document]) -> int:
    """Each distinct text extracted once; its rows written for every document carrying it (see docstring)."""
    rows = {d.content_hash: [disclosure_row(x) for x in extractor.extract(d.text)] for d in originals}
    ids = db.execute("select id, content_hash from documents order by id").fetchall()
    for document_id, digest in ids:
        store.save_extraction(db, document_id, extractor.version, rows[digest])
    return len(ids)


def timed_queries(db: sqlite_utils.Database, thesis: Thesis, tickers: list[str], day: date) -> dict[str, float]:
    """Median milliseconds of the library calls behind `monitor documents --ticker`, `monitor scorecard`
    and `monitor ledger`."""
    def scorecard(ticker: str) -> Any:
        evidence, market, ledger = load_inputs(db, thesis, ticker)
        return compute(thesis, ticker, day, evidence, market, ledger=ledger)

    def ledger(ticker: str) -> Any:
        book = load_ledger(db, ticker)
        return book.as_of(day, thesis.alerts.lapse_days), quantities(book, day, thesis.alerts.lapse_days)

    figures = {}
    for name, work in (("documents --ticker", lambda t: store.list_documents(db, t)),
                       ("scorecard (load + compute)", scorecard),
                       ("ledger (load + as-of + units)", ledger)):
        work(tickers[0])  # warm the page cache and imports
        figures[name] = statistics.median(seconds(lambda: work(t))[0] for t in tickers) * 1000
    return figures


def store_bytes(db: sqlite_utils.Database, db_path: Path) -> int:
    """The store's size on disk after a checkpoint (the WAL's size depends on when SQLite last folded it)."""
    db.execute("pragma wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in db_path.parent.glob(db_path.name + "*"))


def run_cli(config: Path, *args: str) -> float:
    command = [sys.executable, "-m", "monitor.cli", "--config", str(config), *args]
    took, done = seconds(lambda: subprocess.run(command, capture_output=True, text=True, cwd=ROOT))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return took


def backfill(tmp: Path, count: int, extractor: Extractor, score_companies: int, full_extract: bool) -> Path:
    originals = distinct_documents()
    db_path = tmp / "backfill.db"
    db = store.open_db(db_path)
    stored = 0
    started = time.perf_counter()
    for filing in backfill_documents(originals, count):
        stored += len(store.save_documents(db, filing))
    store_seconds = time.perf_counter() - started
    companies = math.ceil(count / len(originals))
    tickers = [ticker_of(c) for c in range(companies)]
    print(f"\n2. backfill: {stored:,} documents ({companies:,} synthetic companies x up to {len(originals)} "
          f"distinct real texts, new ids, dates spread over 2 years)")
    print(f"   store (parse done, save_documents per filing): {stored / store_seconds:9,.0f} docs/s "
          f"({store_seconds:.1f} s)")

    if full_extract:
        took, result = seconds(lambda: reextract_parallel(db, partial(Extractor.from_paths, RULES, MODEL), 2))
        print(f"   extraction, real stage over every document, 2 workers: {result.documents / took:9,.1f} docs/s "
              f"({took:.0f} s, {result.disclosures:,} disclosures)")
    else:
        took, written = seconds(lambda: replayed_extraction(db, extractor, originals))
        print(f"   disclosures written (each distinct text extracted once, rows saved per document with "
              f"store.save_extraction): {written / took:,.0f} docs/s ({took:.1f} s)")
    disclosures = db.execute("select count(*) from disclosures").fetchone()[0]
    replay_market(db, SAMPLES / "market")

    config = write_backfill_config(tmp, db_path, tickers)
    thesis = load_theses(config.parent / "theses")[0]
    sample = tickers[:: max(1, len(tickers) // score_companies)][:score_companies]
    subset = thesis.model_copy(update={"companies": sample})
    reader = LedgerReader.from_dir(RULES)
    took, rebuilt = seconds(lambda: update_ledgers(db, tickers, reader))
    print(f"   ledger stage (update_ledgers) for all {len(rebuilt):,} companies: {len(rebuilt) / took:,.1f} "
          f"companies/s ({took:.1f} s, {db.execute('select count(*) from deals').fetchone()[0]:,} deals)")
    unscored = store_bytes(db, db_path)
    took, scored = seconds(lambda: score_pending(db, [subset], reader=reader))
    per_company = (store_bytes(db, db_path) - unscored) / len(sample)
    sample_docs = db.execute(f"select count(*) from documents where ticker in ({','.join('?' * len(sample))})",
                             sample).fetchone()[0]
    print(f"   score stage (score_pending) on {len(sample)} companies / {sample_docs:,} documents: "
          f"{sample_docs / took:,.1f} docs/s, {scored.events / took:,.0f} events/s ({scored.events:,} events, "
          f"{took:.1f} s)" + ("" if len(sample) == companies else
                               f"; all {companies:,} companies at that rate: ~{took * companies / len(sample) / 60:.0f}"
                               " min (not run)"))
    rows = {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("scorecards", "deal_events", "alerts")}
    print(f"   store growth from scoring (values-only scorecard history, alerts): {per_company / 1024:,.0f} "
          f"KiB per company ({rows['scorecards']:,} scorecard rows, {rows['deal_events']:,} deal events, "
          f"{rows['alerts']:,} alerts for {len(sample)} companies); with all {companies:,} companies scored the "
          f"store would be ~{(unscored + per_company * companies) / 2**30:,.2f} GiB (target < 2 GiB)")
    took, idle = seconds(lambda: score_pending(db, [subset], reader=reader))
    print(f"   score stage again with nothing new (the daemon's every-minute pass): {took * 1000 / len(sample):.1f} "
          f"ms/company ({idle.events} events)")
    took, pending = seconds(lambda: extract_pending(db, extractor))
    print(f"   extract stage with nothing pending at this size: {took * 1000:.0f} ms ({pending.documents} documents)")

    size = sum(p.stat().st_size for p in tmp.glob("backfill.db*"))
    observations = db.execute("select count(*) from market_observations").fetchone()[0]
    print(f"   database: {size / 2**20:,.0f} MiB on disk ({stored:,} documents, {disclosures:,} disclosures, "
          f"{observations:,} market observations); peak RSS so far {peak_rss_mb():,.0f} MiB")

    queried = tickers[:: max(1, len(tickers) // 25)]
    day = date(2026, 1, 1)
    after = timed_queries(db, thesis, queried, day)
    with store.transaction(db, "bench: drop ticker indexes"):
        for index in TICKER_INDEXES:
            db.execute(f"drop index if exists {index}")
    before = timed_queries(db, thesis, queried, day)
    with store.transaction(db, "bench: the baseline migration makes them again"):
        MIGRATIONS[0].apply(db)  # every CREATE in it is IF NOT EXISTS
    recreated = [row[0] for row in db.execute("select name from sqlite_master where type = 'index'")]
    assert all(index in recreated for index in TICKER_INDEXES), recreated
    again = timed_queries(db, thesis, queried, day)
    db.close()
    print(f"   per-company queries at this size, median of {len(queried)} companies (library functions):")
    print(f"   {'':28} {'no ticker indexes':>18} {'with indexes':>14} {'speed-up':>9}")
    for name in after:
        best = min(after[name], again[name])
        print(f"   {name:28} {before[name]:15.1f} ms {best:11.1f} ms {before[name] / best:8.0f}x")
    cli_docs = run_cli(config, "documents", "--ticker", queried[1], "--json")
    cli_card = run_cli(config, "scorecard", queried[1], "--json")
    cli_ledger = run_cli(config, "ledger", queried[1], "--json")
    startup = seconds(lambda: subprocess.run([sys.executable, "-c", "import monitor.cli"], cwd=ROOT, check=True))[0]
    print(f"   CLI once each (subprocess, includes interpreter start; `import monitor.cli` alone: {startup:.2f} s): "
          f"monitor documents --ticker {queried[1]}: {cli_docs:.2f} s, monitor scorecard {queried[1]}: "
          f"{cli_card:.2f} s, monitor ledger {queried[1]}: {cli_ledger:.2f} s")
    return db_path


# --- 3. re-extraction scaling ---------------------------------------------------------------------------


def disclosures_snapshot(db: sqlite_utils.Database) -> list[tuple[Any, ...]]:
    columns = ", ".join(f'"{c}"' for c in store.DISCLOSURE_COLUMNS if c not in ("id", "extracted_at"))
    return db.execute(f'select {columns} from disclosures order by document_id, "start", type').fetchall()


def reextract_scaling(tmp: Path, source: Path, count: int) -> None:
    db_path = tmp / "reextract.db"
    source_db = store.open_db(source)
    db = store.open_db(db_path)
    ids = [row[0] for row in source_db.execute("select id from documents order by id limit ?", [count])]
    rows = source_db.execute(f"select * from documents where id in ({','.join('?' * len(ids))})", ids)
    columns = [c[0] for c in rows.description]
    db["documents"].insert_all((dict(zip(columns, row)) for row in rows), batch_size=500)
    source_db.close()
    factory = partial(Extractor.from_paths, RULES, MODEL)
    print(f"\n3. re-extraction scaling (reextract_parallel on the same {len(ids):,} documents, "
          f"{os.cpu_count()} cores)")
    results = {}
    for workers in (1, 2):
        took, result = seconds(lambda: reextract_parallel(db, factory, workers))
        results[workers] = (took, disclosures_snapshot(db))
        print(f"   {workers} worker{'s' if workers > 1 else ' '}: {result.documents / took:8.1f} docs/s "
              f"({took:.1f} s, {result.disclosures:,} disclosures, {len(result.errors)} errors)")
    db.close()
    identical = results[1][1] == results[2][1]
    print(f"   speed-up 1 → 2 workers: {results[1][0] / results[2][0]:.2f}x; disclosures identical: {identical}")
    if not identical:
        raise SystemExit("reextract with 2 workers stored different disclosures than with 1")


# --- 4. requests per poll and the SEC limiter ---------------------------------------------------------


def sec_limiter(tmp: Path, requests: int) -> None:
    with FixtureServer() as server:
        server.route_pattern(r"^/limit/", lambda m: Reply(200, b"ok", {"Content-Type": "text/plain"}))
        config = make_config(tmp, server)
        with build_client(config, USER_AGENT) as client:
            took, _ = seconds(lambda: [client.get(f"{server.url}/limit/{i}") for i in range(requests)])
        times = sorted(seen.time for seen in server.requests)
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    print(f"   SEC limiter: {requests} requests through the real HttpClient to a local server in {took:.2f} s "
          f"({requests / took:.1f} req/s); most seen by the server in any 1-second window: {busiest} "
          f"(limit {config.sec.max_requests_per_second:g})")
    if busiest > SEC_LIMIT:
        raise SystemExit(f"the SEC limiter let {busiest} requests through in one second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="documents in the backfill")
    parser.add_argument("--quick", action="store_true", help="a smoke run: a few hundred documents, seconds")
    parser.add_argument("--reextract-docs", type=int, default=3000, help="documents re-extracted per worker count")
    parser.add_argument("--score-companies", type=int, default=30, help="companies the score stage runs on")
    parser.add_argument("--full-extract", action="store_true",
                        help="run the real extraction stage on every backfilled document (slow)")
    args = parser.parse_args()
    if args.quick:
        args.docs, args.reextract_docs, args.score_companies = min(args.docs, 330), 40, 2

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, spaCy {spacy.__version__}"
          f"{' (quick smoke run)' if args.quick else ''}")
    extractor = Extractor.from_paths(RULES, MODEL)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        end_to_end(tmp, 1 if args.quick else 3, extractor, load_theses(THESES))
        source = backfill(tmp, args.docs, extractor, args.score_companies, args.full_extract)
        reextract_scaling(tmp, source, args.reextract_docs)
        print("\n4. requests per poll and the SEC limiter")
        if args.quick:
            print("   requests per poll vs watched companies: bench/fetch.py (skipped in --quick)")
        else:
            (tmp / "poll").mkdir()
            requests_per_poll(tmp / "poll")
        sec_limiter(tmp, 12 if args.quick else 40)
    print(f"\npeak RSS of this process: {peak_rss_mb():,.0f} MiB; of its worker processes: "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
