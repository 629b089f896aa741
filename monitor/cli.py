"""``monitor`` command line: a thin typer layer over the library.

Each command opens the store, calls one library function, prints its plain
data (rich tables for people, ``--json`` for scripts) and turns a MonitorError
into one red line and exit code 2.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor import store
from monitor.config import Config, HttpSettings, MonitorSettings, load_config
from monitor.documents import normalise_text
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.filing_items import MARKED_ITEMS, marked_items, split_items
from monitor.logs import configure_logging
from monitor.market.result import MarketPoll

app = typer.Typer(help="Watch companies' filings and press releases for thesis-moving disclosures.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)
console = Console()
errors = Console(stderr=True)

# Options several commands share, declared once so their flags and help read the same everywhere.
TickerFilter = Annotated[Optional[str], typer.Option("--ticker", "-t", help="Only this company.")]
JsonTable = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
JsonTables = Annotated[bool, typer.Option("--json", help="JSON instead of tables.")]


class State:
    config_path: Path = Path("config.toml")
    db_path: Path | None = None
    verbose: bool = False

    def config(self) -> Config:
        return load_config(self.config_path)

    def db(self, config: Config | None = None) -> Any:
        """The store the command reads: it must exist (only `run` creates one; a typo in --db is an error,
        never a new empty store in a new folder)."""
        if self.db_path is not None:
            path = self.db_path
        else:
            config = config or self.config()
            path = config.path(config.monitor.db)
        if not path.is_file():
            raise StoreError(f"{path}: no store here ({'a folder' if path.is_dir() else 'no such file'}); "
                             "`monitor run --once` makes one, or give --db")
        return store.open_db(path)

    def watched(self, ticker: str | None, config: Config | None = None) -> str | None:
        """``ticker`` upper-cased when the config watches it (or it has stored documents); else a ConfigError
        listing the watched ones, so a typo never reads as an empty result."""
        if ticker is None:
            return None
        config = config or self.config()
        names = [c.ticker for c in config.companies]
        if ticker.upper() in names:
            return ticker.upper()
        db = self.db(config)
        try:
            if db.execute("select 1 from documents where ticker = ? limit 1", [ticker.upper()]).fetchone():
                return ticker.upper()  # ingested with --watch
        finally:
            db.close()
        raise ConfigError(f"{ticker.upper()}: not a watched company (watched: {', '.join(names)})")


state = State()


def print_json(**fields: Any) -> None:
    """Every ``--json`` prints one JSON object: the command's records under a plural noun (``documents``,
    ``alerts``, ``deals`` …) beside the scope they were asked for (``ticker``, ``as_of``). Scripts can
    then add a field without breaking a reader, which a bare list would not allow (README, "JSON output")."""
    typer.echo(store.dumps(fields))


def say_error(message: str, label: str = "error") -> None:
    """One unwrapped line on stderr; the message is plain text (brackets in it are not markup)."""
    errors.print(Text.assemble((f"{label}:", "red"), " ", message), highlight=False, soft_wrap=True)


def fail(exc: MonitorError) -> typer.Exit:
    say_error(str(exc))
    return typer.Exit(code=2)


@app.callback()
def main(
    config: Annotated[Path, typer.Option("--config", help="Config file (TOML).")] = Path("config.toml"),
    db: Annotated[Optional[Path], typer.Option("--db", help="SQLite store [default: monitor.db from config]")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    state.config_path, state.db_path, state.verbose = config, db, verbose


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="Run every job once, then exit.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Replay the bundled samples; no network.")] = False,
    online: Annotated[bool, typer.Option("--online", help="Fetch live; an SEC contact is required.")] = False,
    notify_history: Annotated[bool, typer.Option(
        "--notify-history", help="Also push alerts of a first run or a backfill (older than 7 days); "
                                 "by default they are stored and shown, not sent.")] = False,
) -> None:
    """Run the monitor: the daemon, or every job once with --once.

    Without --offline/--online the network setting of the config decides; 'auto' goes online
    only when an SEC contact is configured and SEC is reachable, else replays data/samples/.
    A bad config, secret or store is one error line and exit code 2; --once exits 1 when the
    extract or score stage failed as a whole.
    """
    from monitor.daemon import run_daemon
    from monitor.notify.channels import build_channels, close_channels
    from monitor.pipeline import build_runtime, ensure_companies, run_once

    if offline and online:
        raise typer.BadParameter("--offline and --online exclude each other")
    try:
        config = state.config()
        configure_logging(config.monitor.log_format, state.verbose)
        ensure_companies(config)
        mode = "offline" if offline else "online" if online else None
        close_channels(build_channels(config))  # a bad secret is a start-up error, not a failed send later
        rt = build_runtime(config, state.db_path, mode)
        rt.notify_history = notify_history
        store.open_db(rt.db_path).close()  # a garbage, truncated or read-only store: one line, exit 2
    except MonitorError as exc:
        raise fail(exc) from None
    if not once:
        run_daemon(rt)
        return
    started = time.perf_counter()
    try:
        with console.status("running jobs…") as status:
            summary = run_once(rt, on_job=lambda name: status.update(f"running {name}…"))
    finally:
        rt.close()
    _print_run(summary, rt.offline, time.perf_counter() - started)
    failed = summary.failed_stages()
    if failed:
        say_error(f"the {' and '.join(failed)} stage failed (see the log above)")
        raise typer.Exit(code=1)


def _print_run(summary: Any, offline: bool, seconds: float) -> None:
    """The table of what `run --once` fetched, then a line per stage."""
    table = Table(title=f"monitor run --once ({'offline replay' if offline else 'online'})")
    for column in ("source", "seen", "added", "requests", "errors"):
        table.add_column(column, justify="left" if column == "source" else "right")
    market = [r for r in summary.polls if isinstance(r, MarketPoll)]
    for result in summary.polls:
        seen, added = ((result.observations, result.changed) if isinstance(result, MarketPoll)
                       else (result.filings_seen, result.documents_added))
        table.add_row(result.source, str(seen), str(added), str(result.requests), str(len(result.errors)))
    console.print(table)
    console.print(f"{sum(r.documents_added for r in summary.polls)} documents added in {seconds:.1f}s")
    if market:
        console.print(f"market: {sum(r.changed for r in market)} observations added or revised "
                      f"({len(market)} source{'s' if len(market) != 1 else ''})", highlight=False)
    extracted = summary.extract
    rules = f" (rules {extracted.rules_version})" if extracted.rules_version else ""
    console.print(f"extract: {extracted.documents} documents extracted, {extracted.disclosures} disclosures, "
                  f"{len(extracted.errors)} errors{rules}", highlight=False, soft_wrap=True)  # errors: logged
    scored = summary.score
    console.print(f"score: {scored.events} events, {scored.scorecards} scorecard changes, {scored.alerts} alerts, "
                  f"{len(scored.errors)} errors", highlight=False, soft_wrap=True)


@app.command()
def documents(
    ticker: TickerFilter = None,
    as_json: JsonTable = False,
) -> None:
    """List stored documents with their 8-K items; the items that mark a filing (1.01, 1.02, 2.03, 2.04,
    2.06, 3.01, 5.02) in bold, and as marked_items in --json."""
    try:
        rows = store.list_documents(state.db(), state.watched(ticker))
    except MonitorError as exc:
        raise fail(exc) from None
    for row in rows:
        row["marked_items"] = list(marked_items(row["items"]))
    if as_json:
        print_json(ticker=ticker.upper() if ticker else None, documents=rows)
        return
    table = Table(title=f"{len(rows)} documents", caption="items in bold red: " + ", ".join(
        f"{code} {why}" for code, why in MARKED_ITEMS.items()))
    for column in ("id", "ticker", "published", "form", "items", "type", "source", "title", "url"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), row["ticker"], row["published_at"][:10], row["form"], _items_cell(row["items"]),
                      row["doc_type"], f"{row['source']}/{row['via']}", (row["title"] or "")[:60], row["url"])
    console.print(table)


def _items_cell(items: str) -> Text:
    """The 8-K item codes, the marked ones (MARKED_ITEMS) in bold red so they stand out in a long list."""
    cell = Text()
    for i, code in enumerate(split_items(items)):
        cell.append((", " if i else "") + code, style="bold red" if code in MARKED_ITEMS else "")
    return cell


@app.command()
def status(
    as_json: JsonTables = False,
    fail_on_dead_letters: Annotated[bool, typer.Option(
        "--fail-on-dead-letters", help="Dead letters in the outbox make the status unhealthy too.")] = False,
) -> None:
    """Health: last success per source against its [health] window, outbox queues, stuck messages and
    dead letters, recent errors and counts; a feed or newsroom listing nothing new for max(6 x its median
    gap, 60 days) is marked QUIET (reported, not unhealthy). Exits 0 when healthy, 1 when a source is stale, outbox
    messages are stuck past their due time (or nothing ever ran), 2 when the config or the store
    cannot be read."""
    from monitor.health import check_health

    try:
        config = state.config()
        db = state.db(config)
        health = check_health(db, config, fail_on_dead_letters=fail_on_dead_letters)
        data = {**store.status(db), **health.as_dict()}
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(**data)
    else:
        _print_status(data)
    if not data["healthy"]:
        raise typer.Exit(code=1)


def _print_status(data: dict[str, Any]) -> None:
    from monitor.health import format_window

    run = data["run"]
    started = f" (last run: {run['kind']}, {run['mode']}, started {run['started_at']})" if run else ""
    verdict = (Text.assemble(("healthy", "green"), started) if data["healthy"] else
               Text.assemble(("UNHEALTHY", "bold red"), ": ", "; ".join(data["reasons"]), started))
    console.print(verdict, highlight=False, soft_wrap=True)
    console.print(f"[bold]{data['documents']}[/bold] documents: " +
                  ", ".join(f"{t} {n}" for t, n in data["documents_by_ticker"].items()))
    console.print(f"{data['disclosures']} disclosures, {data['deals']} deals in the ledger, {data['alerts']} alerts",
                  highlight=False)
    sources = Table(title="sources")
    for column in ("source", "state", "last success", "window", "last attempt", "failures", "added",
                   "last error"):
        sources.add_column(column, overflow="fold")
    for row in data["sources"]:
        state_cell = (Text("STALE", style="bold red") if row["stale"] else
                      Text(f"QUIET since {row['newest_item_at'][:10]}", style="bold yellow") if row["quiet"] else
                      Text("ok", style="green") if row["job"] else Text("not scheduled", style="dim"))
        window = format_window(row["window_minutes"]) if row["window_minutes"] is not None else ""
        sources.add_row(row["name"], state_cell, row["last_success_at"] or "never", window,
                        row["last_attempt_at"] or "", str(row["consecutive_failures"]),
                        str(row["documents_added"]), row["last_error"] or "")
    console.print(sources)
    for channel, counts in data["queues"].items():
        console.print(f"outbox {channel}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())),
                      highlight=False)
    if data["dead_letters"]:
        console.print(f"[red]{data['dead_letters']} dead letters[/red] (see `monitor alerts`)")
    if data["recent_errors"]:
        recent = Table(title=f"recent errors ({data['errors_total']} in all)")
        for column in ("time", "source", "url", "cause"):
            recent.add_column(column, overflow="fold")
        for row in data["recent_errors"]:
            recent.add_row(row["occurred_at"], row["source"], row["url"], row["cause"])
        console.print(recent)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="HTML or text files.", exists=True, dir_okay=False)],
    ticker: Annotated[str, typer.Option("--ticker", "-t", help="Company the documents are about.")],
    url: Annotated[str, typer.Option("--url", help="Where the document was published.")] = "",
    published: Annotated[str, typer.Option("--published", help="Publication date, YYYY-MM-DD; without it the "
                                                               "document is dated by its storing, flagged.")] = "",
    form: Annotated[str, typer.Option("--form", help="Form or kind, e.g. 8-K or PR.")] = "",
    watch: Annotated[bool, typer.Option("--watch", help="Accept a ticker the config does not watch.")] = False,
) -> None:
    """Add documents that arrived outside the watched sources, then extract and score them: regular text or
    HTML files of at most http.max_body_bytes each (devices, pipes and binary data are refused)."""
    from monitor.extract.stage import extract_pending, load_extractor
    from monitor.fetch.ingest import ingest_file
    from monitor.ledger.stage import LedgerReader
    from monitor.notify.outbox import queue_for
    from monitor.score.stage import list_alerts, score_pending

    try:
        config = state.config()
        watched = [c.ticker for c in config.companies]
        if ticker.upper() not in watched and not watch:
            raise ConfigError(f"--ticker {ticker.upper()}: not a watched company (watched: {', '.join(watched)}); "
                              "add it to config.toml, or pass --watch")
        db = state.db(config)
        results = [ingest_file(db, path, ticker, url=url, published=published, form=form,
                               max_bytes=config.http.max_body_bytes) for path in files]
        stored = [r.document_id for r in results if r.document_id is not None]
        if stored:
            extract_pending(db, load_extractor(config.path(config.monitor.rules_dir),
                                               config.path(config.monitor.model_path)))
            score_pending(db, _theses(config, None), queue_for(list(config.notify.channels)),
                          reader=LedgerReader.from_dir(config.path(config.monitor.rules_dir)))
        alerts = [a for a in list_alerts(db, ticker) if any(f"doc:{d}" == a["event"] or f"|{d}|" in a["event"]
                                                           for d in stored)]
    except MonitorError as exc:
        raise fail(exc) from None
    for result in results:
        if result.document_id is None:
            console.print(Text(f"{result.path}: already stored ({result.existing}); nothing new"))
            continue
        console.print(Text(f"{result.path}: stored as document {result.document_id} ({result.chars:,} chars)"))
        _print_disclosures([_disclosure(row) for row in store.list_disclosures(db, document_id=result.document_id)],
                           f"document {result.document_id}")
    for alert in alerts:
        console.print(Text(f"alert [{alert['severity']} {alert['direction']}] {alert['title']}"))
    if stored and not alerts:
        console.print("no alert: nothing in it moves the thesis enough")


def _disclosure(row: dict[str, Any]) -> Any:
    """A stored disclosure row as the Disclosure the tables print."""
    from monitor.extract.model import Disclosure

    return Disclosure(row["type"], row["commitment"], row["direction"], row["sentence"], row["start"] or 0,
                      row["end"] or 0, row["counterparty"], row["mw"], row["usd"], row["term_years"])


# --- extraction ---------------------------------------------------------------------------


def _extract_setup(rules: Path | None, model: Path | None) -> tuple[Path, Path, int]:
    """Rules folder, reader model and file-size cap: --rules/--model need no config; else the config's."""
    if rules is not None:
        return rules, model or MonitorSettings().model_path, HttpSettings().max_body_bytes
    config = state.config()
    return (config.path(config.monitor.rules_dir), model or config.path(config.monitor.model_path),
            config.http.max_body_bytes)


def _show(value: Any) -> str:
    """A field for people: 3500000000.0 → 3,500,000,000; "withheld" and names as they are."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)


def _print_disclosures(disclosures: list[Any], what: str) -> None:
    if not disclosures:
        console.print(Text(f"no disclosures in {what}"))
        return
    table = Table(title=Text(f"{len(disclosures)} disclosure{'s' if len(disclosures) != 1 else ''} in {what}"),
                  show_lines=True)
    table.add_column("sentence", overflow="fold", ratio=1)
    for column in ("type", "commitment", "direction", "fields"):
        table.add_column(column, overflow="fold")
    for d in disclosures:
        fields = "\n".join(f"{name}={_show(value)}" for name, value in d.fields().items())
        table.add_row(Text(d.sentence), d.type, d.commitment, d.direction, Text(fields))
    console.print(table)


@app.command()
def extract(
    jsonl: Annotated[Optional[Path], typer.Option("--jsonl", help="JSON Lines input, one {\"id\", \"text\"} "
                                                  "record per line ('-' for stdin).", dir_okay=False)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="With --jsonl: write here instead of stdout.",
                                                dir_okay=False)] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Extract one passage given on the command line.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Extract one HTML or text file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --text/--file: the JSON line, not a table.")] = False,
    rules: Annotated[Optional[Path], typer.Option("--rules", help="Rules folder (default: monitor.rules_dir "
                                                  "of the config; with --rules no config is read).")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="Reader model (default: monitor.model_path "
                                                  "of the config).", dir_okay=False)] = None,
) -> None:
    """Extract disclosures from texts (nothing is stored).

    --jsonl writes one line {"id", "disclosures"} per input record (the GUIDE's schema: at most one
    disclosure per type, withheld values left out). A bad record is reported on stderr with its line
    number, gets a line with "disclosures": [] and "error", and the others go on; the exit code is
    then 2. --text reads one passage the same way; --file reads a whole HTML or text document and
    lists every disclosure in it.
    """
    from monitor.extract.stage import extract_jsonl, load_extractor, passage_disclosures, read_document_file

    if sum(option is not None for option in (jsonl, text, file)) != 1:
        raise typer.BadParameter("give exactly one of --jsonl, --text or --file")
    if out is not None and jsonl is None:
        raise typer.BadParameter("--out goes with --jsonl")
    try:
        rules_dir, model_path, max_bytes = _extract_setup(rules, model)
        extractor = load_extractor(rules_dir, model_path)
        passage = ""
        if text is not None:
            passage = normalise_text(text)
        elif file is not None:
            passage = read_document_file(file, max_bytes)
    except MonitorError as exc:
        raise fail(exc) from None

    if jsonl is not None:
        def report(line: int, message: str) -> None:
            say_error(message)

        try:
            with ExitStack() as stack:
                source = sys.stdin.buffer if str(jsonl) == "-" else stack.enter_context(jsonl.open("rb"))
                sink = stack.enter_context(out.open("w", encoding="utf-8")) if out else sys.stdout
                result = extract_jsonl(source, sink, extractor, report)
        except OSError as exc:
            say_error(f"{exc.filename or jsonl}: {exc.strerror or exc}")
            raise typer.Exit(code=2) from None
        errors.print(f"{result.records} records, {result.disclosures} disclosures"
                     + (f", {result.failed} failed" if result.failed else ""), highlight=False, soft_wrap=True)
        if result.failed:
            raise typer.Exit(code=2)
        return

    what = "the passage" if text is not None else str(file)
    try:
        disclosures = passage_disclosures(extractor, passage) if text is not None else extractor.extract(passage)
        line = json.dumps({"id": None if text is not None else str(file),
                           "disclosures": [d.to_guide() for d in disclosures]})
    except Exception as exc:  # the classifier failed on this text: one clear line, never a traceback
        say_error(f"{what}: extraction failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(line)
    else:
        _print_disclosures(disclosures, what)


@app.command()
def train(
    corpus: Annotated[Path, typer.Option("--corpus", help="The labelled corpus folder.", file_okay=False)] = Path("corpus"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Where to write the model (default: "
                                                "monitor.model_path of the config).", dir_okay=False)] = None,
    folds: Annotated[int, typer.Option("--folds", min=1, help="Cross-validation folds, whole companies held "
                                       "out in each (1: no cross-validation).")] = 5,
) -> None:
    """Rebuild the reader model from the labelled corpus, deterministically, and print its figures.

    The figures are grouped cross-validation: each fold holds out whole companies (by ticker), so they
    say how the reader does on a company it has never read. The model file records the corpus hash,
    the rules version and these figures; a changed model re-extracts every stored document.
    """
    from monitor.extract.training import summary_line, train as train_reader

    try:
        config = state.config()
        rules_dir = config.path(config.monitor.rules_dir)
        target = out or config.path(config.monitor.model_path)
        with console.status(f"training on {corpus} ({folds}-fold cross-validation by company)…"):
            report = train_reader(corpus, rules_dir, folds=folds)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial_path = target.with_name(target.name + ".partial")
        partial_path.write_bytes(report.model.dumps())
        partial_path.replace(target)  # a reader never sees half a model
    except MonitorError as exc:
        raise fail(exc) from None
    console.print(f"corpus {report.model.meta['corpus_hash']}: {report.examples} sentences, "
                  f"{report.companies} companies", highlight=False)
    if report.cv:
        console.print(f"{folds}-fold by company: {summary_line(report.cv)}", highlight=False, soft_wrap=True)
        console.print("per type F1: " + ", ".join(f"{t} {f:.3f}" for t, f in report.cv["per_type_f1"].items()),
                      highlight=False, soft_wrap=True)
    console.print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB)", highlight=False)


@app.command()
def reextract(
    workers: Annotated[int, typer.Option("--workers", "-w", min=1,
                                         help="Processes extracting texts (the parent writes).")] = 1,
) -> None:
    """Recompute every stored document's disclosures with the current rules.

    Each document's old disclosures are replaced in one transaction; a document whose extraction
    fails is logged and keeps an error in its extractions row. With --workers N > 1, texts are
    extracted in N processes and written by this one, with the same result as one worker.
    """
    from monitor.extract.extractor import Extractor
    from monitor.extract.stage import load_extractor, reextract_all, reextract_parallel

    started = time.perf_counter()
    try:
        config = state.config()
        configure_logging(config.monitor.log_format, state.verbose)
        rules_dir, model_path = config.path(config.monitor.rules_dir), config.path(config.monitor.model_path)
        extractor = load_extractor(rules_dir, model_path)  # bad rules fail here, before any document or process
        db = state.db(config)
        try:
            if workers == 1:
                result = reextract_all(db, extractor)
            else:
                result = reextract_parallel(db, partial(Extractor.from_paths, rules_dir, model_path), workers)
        finally:
            db.close()
    except MonitorError as exc:
        raise fail(exc) from None
    console.print(f"{result.documents} documents re-extracted, {result.disclosures} disclosures, "
                  f"{len(result.errors)} errors (rules {result.rules_version}, {workers} "
                  f"worker{'s' if workers > 1 else ''}, {time.perf_counter() - started:.1f}s)", highlight=False,
                  soft_wrap=True)


@app.command()
def disclosures(
    ticker: TickerFilter = None,
    as_json: JsonTable = False,
) -> None:
    """List stored disclosures with their sentence, URL and date."""
    try:
        db = state.db()
        try:
            rows = store.list_disclosures(db, state.watched(ticker))
        finally:
            db.close()
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(ticker=ticker.upper() if ticker else None, disclosures=rows)
        return
    table = Table(title=f"{len(rows)} disclosure{'s' if len(rows) != 1 else ''}", show_lines=True)
    table.add_column("date", no_wrap=True)
    table.add_column("ticker", no_wrap=True)
    table.add_column("disclosure", overflow="fold")
    table.add_column("fields", overflow="fold")
    table.add_column("sentence · url", overflow="fold", ratio=1)
    for row in rows:
        fields = "\n".join(f"{name}={_show(row[name])}" for name in ("counterparty", "mw", "usd", "term_years")
                           if row[name] is not None)
        sentence = Text(row["sentence"])
        if row["url"]:
            sentence.append("\n" + row["url"], style="dim")
        table.add_row((row["published_at"] or "")[:10], row["ticker"],
                      f"{row['type']}\n{row['commitment'] or ''} · {row['direction'] or ''}", Text(fields), sentence)
    console.print(table)


def _theses(config: Config, thesis_id: str | None) -> list[Any]:
    from monitor.score.thesis import load_theses

    theses = load_theses(config.path(config.monitor.theses_dir))
    if thesis_id:
        theses = [t for t in theses if t.id == thesis_id]
        if not theses:
            raise typer.BadParameter(f"no thesis with id {thesis_id!r}")
    return theses


def _day(value: str | None, name: str) -> Any:
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


@app.command()
def scorecard(
    ticker: Annotated[str, typer.Argument(help="Company ticker, e.g. MARA.")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Show it as it stood on this date (YYYY-MM-DD).")] = None,
    thesis: Annotated[Optional[str], typer.Option("--thesis", help="Only this thesis id.")] = None,
    as_json: JsonTables = False,
    evidence: Annotated[int, typer.Option("--evidence", help="Cited items shown per pillar.")] = 3,
) -> None:
    """A company's thesis scorecard: pillar values, cash-flow backing, and the cited evidence behind each."""
    from datetime import date

    from monitor.ledger.units import units_text
    from monitor.score.engine import compute
    from monitor.score.stage import load_inputs

    day = _day(as_of, "--as-of") or date.today()
    try:
        config = state.config()
        db = state.db(config)
        cards = []
        for item in _theses(config, thesis):
            if ticker.upper() not in item.companies:
                continue
            found, market, book = load_inputs(db, item, ticker.upper())
            cards.append(compute(item, ticker.upper(), day, found, market, ledger=book))
        view = _market_view(db, ticker.upper(), day, config)
    except MonitorError as exc:
        raise fail(exc) from None
    if not cards:
        raise fail(ConfigError(f"{ticker.upper()}: no thesis watches this company"))
    if as_json:
        print_json(ticker=ticker.upper(), scorecards=[{**card.to_dict(), "market_view": view} for card in cards])
        return
    for card in cards:
        console.print(f"[bold]{card.ticker}[/bold] · thesis [bold]{card.thesis}[/bold] · as of {card.as_of}",
                      highlight=False)
        if card.quantities is not None:
            console.print(Text(units_text(card.quantities)))
        console.print(f"Index, a function of the units (rules/theses): backing [bold]{card.backing:.1f}[/bold]/100",
                      highlight=False)
        table = Table(show_lines=True, expand=False)
        table.add_column("pillar", overflow="fold", max_width=18)
        table.add_column("value", justify="right", width=10)
        table.add_column("why (largest contributions first)", overflow="fold", ratio=1)
        for pillar in card.pillars.values():
            lines = [f"{c.points:+.1f} {c.why}" + (f"\n  “{_clip(c.sentence, 110)}” {_short_url(c.url)} {c.day}"
                                                    if c.sentence else "") for c in pillar.contributions[:evidence]]
            more = len(pillar.contributions) - evidence
            if more > 0:
                lines.append(f"… {more} more (--evidence N or --json)")
            value = f"no data\nsince\n{pillar.stale_since}" if pillar.stale_since else f"{pillar.value:.1f}"
            table.add_row(f"{pillar.name}\n({pillar.kind})", value, Text("\n".join(lines) or "no evidence yet"))
        table.add_row(view.get("name", "Market view (informational)"),
                      "—" if view.get("value") is None else f"{view['value']:.1f}", _lines(view.get("why", "")))
        console.print(table)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def ledger(
    ticker: Annotated[str, typer.Argument(help="Company ticker, e.g. CORZ.")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The ledger as it stood on this date (YYYY-MM-DD).")] = None,
    unlinked: Annotated[bool, typer.Option("--unlinked", help="List the mentions the rules could not place "
                                                              "with confidence (the review list).")] = False,
    as_json: JsonTable = False,
) -> None:
    """A company's deal ledger: each deal's status, MW, value, term and backstop, with the cited sources."""
    from datetime import date

    from monitor.ledger.stage import load_ledger
    from monitor.ledger.units import quantities, units_text
    from monitor.score.deal_alerts import deal_numbers

    day = _day(as_of, "--as-of") or date.today()
    try:
        config = state.config()
        db = state.db(config)
        lapse_days = min((t.alerts.lapse_days for t in _theses(config, None)), default=180)
        book = load_ledger(db, state.watched(ticker, config) or "")
    except MonitorError as exc:
        raise fail(exc) from None
    if unlinked:
        rows = [u for u in book.unlinked if u.day <= day]
        if as_json:
            print_json(ticker=ticker.upper(), unlinked=[{**u.__dict__, "day": u.day.isoformat()} for u in rows])
            return
        table = Table(title=f"{ticker.upper()} · {len(rows)} mentions to review", show_lines=True)
        for column in ("day", "family", "why", "could be", "sentences"):
            table.add_column(column, overflow="fold")
        for u in rows:
            table.add_row(u.day.isoformat(), u.family, u.reason, "\n".join(u.candidates),
                          Text("\n".join(f"“{c['sentence'][:200]}” {c['url']}" for c in u.cites[:3])))
        console.print(table)
        return
    deals = sorted(book.as_of(day, lapse_days), key=lambda d: (d.family, d.first_day or day))
    totals = quantities(book, day, lapse_days)
    if as_json:
        print_json(ticker=ticker.upper(), as_of=day.isoformat(), quantities=totals.to_dict(),
                   deals=[d.to_dict() for d in deals])
        return
    console.print(f"[bold]{ticker.upper()}[/bold] · ledger as of {day}", highlight=False)
    console.print(Text(units_text(totals)))
    table = Table(show_lines=True)
    for column in ("deal", "status", "figures", "sources"):
        table.add_column(column, overflow="fold")
    for deal in deals:
        name = f"{deal.family}/{deal.kind}\n{deal.counterparty or 'undisclosed'}" + (
            f"\n@ {', '.join(deal.sites)}" if deal.sites else "")
        latest = {field: c for field, c in deal.sources if field in ("mw", "usd", "backstop_usd", "delivery", "proposal")}
        cites = "\n".join(f"{field} {c['date']} {_short_url(c['url'])}" for field, c in latest.items())
        table.add_row(Text(name), f"{deal.status}\nsince {deal.first_day}", Text(deal_numbers(deal)), Text(cites))
    console.print(table)
    if book.unlinked:
        console.print(f"{len(book.unlinked)} mentions await review: monitor ledger {ticker.upper()} --unlinked",
                      highlight=False)


def _short_url(url: str) -> str:
    """Host and last path segment, to fit 80 columns; --json carries the whole URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    last = parts.path.rstrip("/").rsplit("/", 1)[-1][:28]
    return f"{parts.netloc.removeprefix('www.')}/…/{last}" if last else parts.netloc


def _market_view(db: Any, ticker: str, day: Any, config: Config) -> dict[str, Any]:
    """The informational market-view figure (share of variance not explained by BTC), or why it is missing."""
    from monitor.errors import NoData
    from monitor.market.view import market_view

    try:
        return market_view(db, ticker, as_of=day, settings=config.market_lens)
    except NoData as exc:
        return {"name": "Market view", "value": None, "why": [str(exc)]}


def _lines(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list) else str(value)


@app.command()
def backtest(
    ticker: Annotated[str, typer.Argument(help="Company ticker, e.g. MARA.")],
    start: Annotated[Optional[str], typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    thesis: Annotated[Optional[str], typer.Option("--thesis", help="Only this thesis id.")] = None,
    as_json: JsonTable = False,
) -> None:
    """Replay stored documents and market data in time order: what the monitor would have said, and when."""
    from dataclasses import asdict

    from monitor.ledger.stage import LedgerReader
    from monitor.score.backtest import backtest as run_backtest

    first, last = _day(start, "--from"), _day(end, "--to")
    try:
        config = state.config()
        db = state.db(config)
        rules = LedgerReader.from_dir(config.path(config.monitor.rules_dir)).rules
        timelines = [(item, run_backtest(db, item, ticker, first, last, rules))
                     for item in _theses(config, thesis) if ticker.upper() in item.companies]
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(ticker=ticker.upper(),
                   timelines=[{"thesis": item.id, "timeline": [asdict(r) for r in rows]} for item, rows in timelines])
        return
    for item, rows in timelines:
        table = Table(title=f"{ticker.upper()} · {item.id} · backtest {first or 'start'} → {last or 'end'}")
        for column in ("day", "event", "backing", "pillar changes", "alerts", "price"):
            table.add_column(column, overflow="fold")
        for row in rows:
            changes = ", ".join(f"{pid} {a:.0f}→{b:.0f}" for pid, (a, b) in row.changes.items())
            table.add_row(str(row.day), row.event, f"{row.backing_before:.1f}→{row.backing_after:.1f}", changes,
                          "\n".join(row.alerts), "" if row.price is None else f"{row.price:.2f}")
        console.print(table)


@app.command()
def alerts(
    ticker: TickerFilter = None,
    since: Annotated[Optional[str], typer.Option("--since", help="Only alerts as of this day or later (YYYY-MM-DD).")] = None,
    severity: Annotated[Optional[str], typer.Option(
        "--severity", help="Only this severity or higher: info, medium, warning, high.")] = None,
    as_json: JsonTable = False,
) -> None:
    """Alerts raised by the scorecard rules, with what changed, why, and the cited evidence."""
    from monitor.notify.outbox import delivery_status, outbox_summary
    from monitor.score.engine import SEVERITY_ORDER
    from monitor.score.stage import list_alerts

    first = _day(since, "--since")
    if severity is not None and severity not in SEVERITY_ORDER:
        raise typer.BadParameter(f"--severity must be one of {', '.join(SEVERITY_ORDER)}")
    try:
        db = state.db()
        rows = [row for row in list_alerts(db, state.watched(ticker))
                if (first is None or str(row["as_of"]) >= first.isoformat())
                and (severity is None or SEVERITY_ORDER.index(row["severity"]) >= SEVERITY_ORDER.index(severity))]
        delivered = delivery_status(db)
        summary = outbox_summary(db)
    except MonitorError as exc:
        raise fail(exc) from None
    for row in rows:
        row["delivery"] = delivered.get(row["id"], {})
    if as_json:
        print_json(ticker=ticker.upper() if ticker else None, since=first.isoformat() if first else None,
                   severity=severity, alerts=rows, outbox=summary)
        return
    table = Table(title=f"{len(rows)} alerts", show_lines=True)
    for column in ("as of", "severity", "alert", "why", "evidence", "delivery"):
        table.add_column(column, overflow="fold")
    for row in rows:
        cites = "\n".join(f"“{e['sentence'][:160]}” " + " ".join(filter(None, (e.get("filing"), e["url"])))
                          for e in row["evidence"][:2])
        table.add_row(row["as_of"], f"{row['severity']} {row['direction']}", row["title"],
                      "\n".join(row["reasons"]), cites,
                      "\n".join(f"{k}: {v}" for k, v in row["delivery"].items()) or "not queued")
    console.print(table)
    if summary["dead_letters"]:
        console.print(f"[red]{len(summary['dead_letters'])} dead letters[/red]: see `monitor status`")


@app.command()
def deliver(
    now: Annotated[bool, typer.Option("--now", help="Send every pending message now, batch windows included.")] = False,
) -> None:
    """Send what the outbox holds to the configured channels (the daemon does this every deliver_seconds), and
    say what was held back and why."""
    from datetime import UTC, datetime

    from monitor.notify.channels import delivery_settings
    from monitor.notify.outbox import held_back
    from monitor.pipeline import Runtime, job_deliver

    try:
        config = state.config()
        configure_logging(config.monitor.log_format, state.verbose)
        if now:
            config = config.model_copy(update={"notify": config.notify.model_copy(update={"batch_window_minutes": 0})})
        rt = Runtime(config, state.db_path or config.path(config.monitor.db), [], offline=True)
    except MonitorError as exc:
        raise fail(exc) from None
    result = job_deliver(rt)
    console.print(f"deliver: {result.sent} messages ({result.alerts_sent} alerts) sent, {result.retrying} retrying, "
                  f"{result.dead} dead", highlight=False)
    db = state.db(config)
    for item in held_back(db, delivery_settings(config), datetime.now(UTC)):
        where = "" if item.channel == "-" else f"{item.channel} {item.ticker}: "
        console.print(Text(f"held back: {where}{item.alerts} alert{'s' if item.alerts != 1 else ''}, {item.why}"))
    if result.errors:
        raise typer.Exit(code=1)


@app.command("test-alert")
def test_alert(
    channel: Annotated[str, typer.Option("--channel", help="slack or email.")],
) -> None:
    """Send a harmless test message to one channel, to check its set-up."""
    import uuid

    from monitor.errors import DeliveryError
    from monitor.notify.channels import build_channels, close_channels
    from monitor.notify.message import Message

    if channel not in ("slack", "email"):
        raise typer.BadParameter("--channel must be slack or email")
    try:
        channels = build_channels(state.config(), [channel])
    except MonitorError as exc:
        raise fail(exc) from None
    message = Message(key=f"test-{uuid.uuid4().hex[:12]}", kind="test", subject="catalyst-monitor test message",
                      text="This is a test message from catalyst-monitor: if you can read it, alerts will arrive here.")
    try:
        receipt = channels[channel].send(message)
    except DeliveryError as exc:
        raise fail(exc) from None
    finally:
        close_channels(channels)
    console.print(f"{channel}: {receipt.status}", highlight=False)


@app.command()
def digest(
    week: Annotated[Optional[str], typer.Option("--week", help="ISO week, e.g. 2025-W33 [default: last complete week].")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for the HTML, text and PNG files.")] = None,
    send: Annotated[bool, typer.Option("--send", help="Also send it now to the configured channels, through the "
                                                      "outbox: a failed send is retried by the delivery job.")] = False,
) -> None:
    """The weekly digest: scorecards now vs a week ago, what moved them, risks, pending items, charts."""
    from datetime import UTC, datetime

    from monitor.notify.channels import build_channels, close_channels
    from monitor.notify.digest import iso_week_bounds, week_label
    from monitor.notify.weekly import current_week_end, render_week
    from monitor.pipeline import Runtime, send_digest

    try:
        week_end = iso_week_bounds(week)[1] if week else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        config = state.config()
        week_end = week_end or current_week_end(config.notify, datetime.now(UTC))
        db = state.db(config)
        files = render_week(db, _theses(config, None), week_end, out or config.path(config.notify.digest_dir),
                            config.market_lens)[1]
        label = week_label(week_end)
        if send and not config.notify.channels:
            raise ConfigError("digest --send: no channel is configured ([notify] channels)")
        if send:  # a missing webhook or unknown channel is a start-up error, not a queued digest that waits
            close_channels(build_channels(config))
        sent = send_digest(Runtime(config, state.db_path or config.path(config.monitor.db), [], offline=True),
                           label) if send else {}
    except MonitorError as exc:
        raise fail(exc) from None
    console.print(f"digest {label}: {files.html_path}\n  {files.text_path}", highlight=False)
    for chart in files.chart_paths:
        console.print(f"  {chart}", highlight=False)
    for name, where in sent.items():
        console.print(Text(f"{name}: {where}"))
    if any(where.startswith(("not sent", "dead")) for where in sent.values()):
        raise typer.Exit(code=1)


@app.command("market-data")
def market_data(as_json: JsonTable = False) -> None:
    """List the stored market series: first and last day, number of observations."""
    try:
        db = state.db()
        try:
            rows = store.list_market_series(db)
        finally:
            db.close()
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(series=rows)
        return
    table = Table(title=f"{len(rows)} market series")
    for column in ("series", "first", "last", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for row in rows:
        table.add_row(row["series"], row["first"], row["last"], str(row["count"]))
    console.print(table)



# --- market lens ------------------------------------------------------------------------------


def _num(value: Any, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def _bucket_table(title: str, buckets: list[dict[str, Any]], car_days: int) -> Table:
    table = Table(title=title)
    for column in ("level", "bucket", "events", "mean AR (day 0)", "t", f"mean CAR [0,+{car_days}]", "t"):
        table.add_column(column, justify="left" if column in ("level", "bucket") else "right", overflow="fold")
    for row in buckets:
        cells = [row["level"], Text(row["bucket"], style="bold" if row["level"] == "coarse" else ""), str(row["n"])]
        if row["status"] != "ok":
            table.add_row(*cells, Text(row["status"], style="dim"), "", "", "")
        else:
            table.add_row(*cells, _num(row["mean_ar"], "+.2%"), _num(row["t_ar"], "+.2f"),
                          _num(row["mean_car"], "+.2%"), _num(row["t_car"], "+.2f"))
    return table


def _print_market_report(report: dict[str, Any]) -> None:
    factor = report["hedge"]["full"]["factor"]
    full = report["full"]
    console.print(f"[bold]{report['ticker']}[/bold] · BTC factor {factor} ({report['factor_series']}) · "
                  f"{full['n']} daily returns {full['start']} → {full['end']} · thesis {report['thesis'] or '—'}",
                  highlight=False)
    exposure = Table(title="BTC exposure: OLS of daily stock returns on the factor's, same intervals")
    for column in ("window", "beta", "± se", "corr", "R²", "idiosyncratic", "alpha/day", "returns", "from → to"):
        exposure.add_column(column, justify="left" if column in ("window", "from → to") else "right")

    def add(name: str, stats: dict[str, Any]) -> None:
        if "error" in stats:
            exposure.add_row(name, Text(stats["error"], style="dim"), "", "", "", "", "", "", "")
            return
        exposure.add_row(name, _num(stats["beta"]), _num(stats["stderr_beta"]), _num(stats["correlation"]),
                         _num(stats["r2"]), _num(stats["idiosyncratic_share"], ".0%"), _num(stats["alpha"], "+.3%"),
                         str(stats["n"]), f"{stats['start']} → {stats['end']}")

    for name, stats in report["full_by_factor"].items():
        add(f"full, {'IBIT' if name == 'ibit' else 'BTC'}", stats)
    for stats in report["latest"]:
        add(f"latest {stats['window']} days, {factor}", stats)
    trend = report["trend"]
    add(f"first half, {factor}", trend["first_half"])
    add(f"second half, {factor}", trend["second_half"])
    console.print(exposure)
    slope = trend["slope_per_month"]
    console.print(f"trend: beta {trend['first_half']['beta']:.2f} → {trend['second_half']['beta']:.2f} by halves, "
                  f"{trend['direction']} (z {trend['z']:+.1f}; |z| ≥ 2 to call it)"
                  + ("" if slope is None else f"; last {trend['window']} rolling betas {slope:+.3f}/month"),
                  highlight=False)
    for which in ("latest", "full"):
        hedge = report["hedge"][which]
        span = f"{hedge['window']} days" if which == "latest" else "full window"
        console.print(f"hedge ({span}): {hedge['text']}", highlight=False)
    view = report["market_view"]
    console.print(f"market view (informational, never in cash-flow backing): [bold]{view['value']:.1f}[/bold]/100 "
                  f"= share of daily variance not explained by {factor} over {view['window']} days", highlight=False)

    pillar = report["compute_pillar"]
    windows = [stats["window"] for stats in report["latest"]]
    timeline = Table(title=f"re-rating timeline (month ends): rolling beta and R² beside {pillar.replace('_', ' ')}")
    timeline.add_column("month end")
    for w in windows:
        timeline.add_column(f"beta {w}d", justify="right")
        timeline.add_column(f"R² {w}d", justify="right")
    timeline.add_column(pillar.replace("_", " "), justify="right")
    timeline.add_column("backing", justify="right")
    for row in report["timeline"]:
        cells = [row["day"]]
        for w in windows:
            cells += [_num(row[f"beta_{w}"]), _num(row[f"r2_{w}"])]
        cells += [_num(row[pillar], ".1f"), _num(row["backing"], ".1f")]
        timeline.add_row(*cells)
    console.print(timeline)
    _print_event_study(report["event_study"], f"{report['ticker']} disclosures")


def _print_event_study(study: dict[str, Any], what: str, list_events: bool = True) -> None:
    settings = study["settings"]
    car = settings["car_days"]
    used = sum(1 for e in study["events"] if not e["skipped"])
    if not list_events:
        console.print(f"event study of {what}: {len(study['events'])} events, {used} with abnormal returns "
                      f"(the others: no prices around them or too short an estimation window; --json lists all)",
                      highlight=False)
        console.print(_bucket_table(f"{used} events by bucket (an event enters every bucket it matches); "
                                    f"t = mean / (sd / √n); at least {settings['min_events']} events to report",
                                    study["buckets"], car))
        return
    events = Table(title=f"event study of {what}: abnormal returns, market model on "
                         f"{settings['estimation_days']} returns ending {settings['gap_days']} days before")
    for column in ("ticker", "disclosed", "event day", "disclosures", "AR day 0", f"CAR [0,+{car}]", "model beta",
                   "note"):
        events.add_column(column, overflow="fold", justify="right" if column in ("AR day 0", f"CAR [0,+{car}]",
                                                                                   "model beta") else "left")
    for e in study["events"]:
        events.add_row(e["ticker"], "\n".join(e["days"]), e["event_day"] or "—", "\n".join(e["tags"]),
                       _num(e["ar"], "+.2%"), _num(e["car"], "+.2%"), _num(e["beta"]), Text(e["skipped"], style="dim"))
    console.print(events)
    console.print(_bucket_table(f"{used} events by bucket (an event enters every bucket it matches); "
                                f"t = mean / (sd / √n); at least {settings['min_events']} events to report",
                                study["buckets"], car))


def _print_peers(data: dict[str, Any]) -> None:
    label = "IBIT" if data["factor"] == "ibit" else "BTC"
    w = data["window"]
    pillar = data["compute_pillar"]
    table = Table(title=f"peers, least BTC-driven first (lowest {w}-day R² on {label}); "
                        f"full-window betas on both factors")
    for column in ("ticker", "returns", "beta IBIT", "beta BTC", f"R² {label}", f"beta {w}d", f"R² {w}d",
                   "beta by halves", f"hedge {w}d ({label} per $1)", pillar.replace("_", " "), "events"):
        table.add_column(column, justify="left" if column in ("ticker", "beta by halves") else "right",
                         overflow="fold")
    for row in data["companies"]:
        if row["status"] != "ok":
            table.add_row(row["ticker"], Text(row["status"], style="dim"), *[""] * 9)
            continue
        table.add_row(row["ticker"], str(row["n"]), _num(row["beta_ibit"]), _num(row["beta_btc"]), _num(row["r2"]),
                      f"{row['latest_beta']:.2f} ± {row['latest_stderr']:.2f}", _num(row["latest_r2"]),
                      row["trend_text"], f"{row['hedge']['ratio']:+.2f}", _num(row[pillar], ".1f"), str(row["events"]))
    console.print(table)
    _print_event_study(data["event_study"], "every watched company's disclosures (pooled)", list_events=False)


@app.command("market")
def market_lens(
    ticker: Annotated[Optional[str], typer.Argument(help="Company ticker, e.g. MARA.")] = None,
    peers: Annotated[bool, typer.Option("--peers", help="Every watched company side by side, and the pooled "
                                        "event study.")] = False,
    factor: Annotated[Optional[str], typer.Option("--factor", help="BTC factor: btc (btc_usd) or ibit (px:IBIT) "
                                                  "(default: market_lens.factor of the config).")] = None,
    window: Annotated[Optional[int], typer.Option("--window", min=10, help="Rolling window in trading days "
                                                  "(default: market_lens.windows of the config).")] = None,
    as_json: JsonTables = False,
) -> None:
    """BTC beta, hedge ratio, re-rating timeline and event study of disclosures (the market lens).

    Daily returns of the stock on the factor's, over the same intervals: the stock's trading days, so BTC's weekend move is in Monday's return.

    The figures are informational and never enter the cash-flow backing figure.
    """
    from monitor.market.view import market_report, peers_table

    if peers == (ticker is not None):
        raise typer.BadParameter("give a TICKER or --peers")
    if factor is not None and factor not in ("btc", "ibit"):
        raise typer.BadParameter(f"--factor: {factor!r} is not btc or ibit")
    try:
        config = state.config()
        theses = _theses(config, None)
        settings = config.market_lens
        db = state.db(config)
        try:
            if peers:
                tickers = [c.ticker for c in config.companies] or [t for item in theses for t in item.companies]
                data = peers_table(db, tickers, theses, settings, factor, window)
            else:
                data = market_report(db, ticker or "", theses, settings, factor, [window] if window else None)
        finally:
            db.close()
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        print_json(**data)
    elif peers:
        _print_peers(data)
    else:
        _print_market_report(data)


@app.command()
def browse(
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 8001,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    metadata_out: Annotated[Optional[Path], typer.Option(
        "--metadata-out", dir_okay=False,
        help="Write the Datasette metadata (JSON) here and exit, for `datasette DB --metadata FILE`.")] = None,
) -> None:
    """Look at the store in Datasette, read-only: described tables, facets and canned queries.

    Serves until Ctrl-C. The store is read through read-only connections: browsing never writes to the
    database the daemon uses, and sees each of its commits.
    """
    from monitor.browse import database_name, missing_tables, serve, write_metadata

    try:
        if state.db_path is not None:
            db_path = state.db_path
        else:
            config = state.config()
            db_path = config.path(config.monitor.db)
        if metadata_out is not None:
            write_metadata(metadata_out, db_path)
            console.print(f"{metadata_out}: Datasette metadata for {db_path}\n"
                          f"  datasette {db_path} --metadata {metadata_out}", highlight=False, soft_wrap=True)
            return
        missing = missing_tables(db_path)
    except MonitorError as exc:
        raise fail(exc) from None
    if missing:
        say_error(f"{db_path}: no {', '.join(missing)} table yet (`monitor run --once` makes them); "
                  "their pages and queries will fail", label="warning")
    console.print(f"Datasette on http://{host}:{port}/{database_name(db_path)}: read-only view of {db_path} "
                  "(Ctrl-C stops)", highlight=False, soft_wrap=True)
    serve(db_path, host, port)


if __name__ == "__main__":
    app()
