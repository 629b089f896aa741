"""``monitor`` command line: a thin typer layer over the library.

Each command opens the store, calls one library function, prints its plain
data (rich tables for people, ``--json`` for scripts) and turns a MonitorError
into one red line and exit code 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from monitor import store
from monitor.config import Config, load_config
from monitor.errors import MonitorError
from monitor.logs import configure_logging

app = typer.Typer(help="Watch companies' filings and press releases for thesis-moving disclosures.",
                  no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)


class State:
    config_path: Path = Path("config.toml")
    db_path: Path | None = None
    verbose: bool = False

    def config(self) -> Config:
        return load_config(self.config_path)

    def db(self, config: Config | None = None) -> Any:
        path = self.db_path or (config or self.config()).path((config or self.config()).monitor.db)
        return store.open_db(path)


state = State()


def fail(exc: MonitorError) -> typer.Exit:
    errors.print(f"[red]error:[/red] {exc}", highlight=False, markup=True)
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
) -> None:
    """Run the monitor: the daemon, or every job once with --once.

    Without --offline/--online the network setting of the config decides; 'auto' goes online
    only when an SEC contact is configured and SEC is reachable, else replays data/samples/.
    """
    from monitor.daemon import run_daemon
    from monitor.pipeline import build_runtime, ensure_companies, run_once

    if offline and online:
        raise typer.BadParameter("--offline and --online exclude each other")
    try:
        config = state.config()
        configure_logging(config.monitor.log_format, state.verbose)
        ensure_companies(config)
        mode = "offline" if offline else "online" if online else None
        rt = build_runtime(config, state.db_path, mode)
    except MonitorError as exc:
        raise fail(exc) from None
    if not once:
        run_daemon(rt)
        return
    started = time.perf_counter()
    try:
        with console.status("running jobs…") as status:
            results = run_once(rt, on_job=lambda name: status.update(f"running {name}…"))
    finally:
        rt.close()
    table = Table(title=f"monitor run --once ({'offline replay' if rt.offline else 'online'})")
    for column in ("source", "seen", "added", "requests", "errors"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for result in results:
        table.add_row(result.source, str(result.filings_seen), str(result.documents_added),
                      str(result.requests), str(len(result.errors)))
    console.print(table)
    console.print(f"{sum(r.documents_added for r in results)} documents added in "
                  f"{time.perf_counter() - started:.1f}s")


@app.command()
def documents(
    ticker: Annotated[Optional[str], typer.Option("--ticker", "-t", help="Only this company.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List stored documents."""
    try:
        rows = store.list_documents(state.db(), ticker)
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(store.dumps(rows))
        return
    table = Table(title=f"{len(rows)} documents")
    for column in ("id", "ticker", "published", "form", "type", "source", "title", "url"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["id"]), row["ticker"], row["published_at"][:10], row["form"], row["doc_type"],
                      f"{row['source']}/{row['via']}", (row["title"] or "")[:60], row["url"])
    console.print(table)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables.")] = False) -> None:
    """Last poll per source, recent errors and counts."""
    try:
        data = store.status(state.db())
    except MonitorError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(store.dumps(data))
        return
    console.print(f"[bold]{data['documents']}[/bold] documents: " +
                  ", ".join(f"{t} {n}" for t, n in data["documents_by_ticker"].items()))
    sources = Table(title="sources")
    for column in ("source", "last success", "last attempt", "failures", "added", "last error"):
        sources.add_column(column, overflow="fold")
    for row in data["sources"]:
        sources.add_row(row["name"], row["last_success_at"] or "never", row["last_attempt_at"] or "",
                        str(row["consecutive_failures"]), str(row["documents_added"]), row["last_error"] or "")
    console.print(sources)
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
    published: Annotated[str, typer.Option("--published", help="Publication date, YYYY-MM-DD.")] = "",
    form: Annotated[str, typer.Option("--form", help="Form or kind, e.g. 8-K or PR.")] = "",
) -> None:
    """Add documents that arrived outside the watched sources."""
    from monitor.fetch.ingest import ingest_file

    try:
        db = state.db()
        results = [ingest_file(db, path, ticker, url=url, published=published, form=form) for path in files]
    except MonitorError as exc:
        raise fail(exc) from None
    for result in results:
        if result.document_id is None:
            console.print(f"{result.path}: already stored")
        else:
            console.print(f"{result.path}: stored as document {result.document_id} ({result.chars} chars)")


if __name__ == "__main__":
    app()
