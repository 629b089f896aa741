"""The extraction stage: stored documents → ``disclosures``, once per document and rules version.

``extract_pending`` runs after every fetch (``monitor run`` and the daemon's
``extract`` job): it extracts each document that has no ``extractions`` row or
one written with other rules, and replaces that document's disclosures and its
ledger row in one transaction (``store.save_extraction``), so a kill at any
point leaves every document either fully extracted with one rules version or
still pending, and a re-run adds nothing.

A document whose extraction fails gets a ledger row carrying the error and no
disclosures, is logged, and does not stop the others; it is tried again when
the rules change or on ``reextract``, not on every run (a deterministic failure
would otherwise be logged every minute).

``reextract_parallel`` extracts texts in worker processes and writes their
results in the parent, in document order, one transaction per document, so its
store ends up equal to ``reextract_all``'s. A worker exits when its parent
dies, however it dies (SIGKILL included), so no worker outlives a killed run. Workers build their own extractor
from a picklable factory (``functools.partial(Extractor.from_paths, rules_dir, model_path)``).

The ``monitor extract`` helpers (``extract_jsonl``, ``read_document_file``)
live here too, so the CLI stays a thin layer.
"""

from __future__ import annotations

import collections
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import sqlite_utils

from monitor import store
from monitor.documents import normalise_text, strip_provenance
from monitor.errors import ConfigError, MonitorError
from monitor.extract.model import Disclosure
from monitor.fetch.html_text import body_to_text
from monitor.fetch.ingest import read_local_document

log = logging.getLogger(__name__)


class ExtractorLike(Protocol):
    """What the stage needs of an extractor (``monitor.extract.extractor.Extractor`` or a test double)."""

    version: str

    def extract(self, text: str) -> list[Disclosure]: ...


@dataclass
class ExtractResult:
    """What one pass of the stage did: documents extracted (failures included), disclosures stored, errors."""

    documents: int = 0
    disclosures: int = 0
    errors: list[str] = field(default_factory=list)
    rules_version: str = ""
    aborted: bool = False  # the stage failed as a whole (store, rules, a bug), not one document


def load_extractor(rules_dir: Path, model_path: Path) -> ExtractorLike:
    """The Extractor of ``rules_dir`` and the reader model; a missing one is a ConfigError naming the setting."""
    from monitor.extract.extractor import Extractor

    if not rules_dir.is_dir():
        raise ConfigError(f"monitor.rules_dir: {rules_dir} is not a folder of rules (*.toml)")
    if not model_path.is_file():
        raise ConfigError(f"monitor.model_path: {model_path} is not a reader model file; build it with `monitor train`")
    return Extractor.from_paths(rules_dir, model_path)


def disclosure_row(disclosure: Disclosure) -> dict[str, Any]:
    """A disclosure as the store's plain row: stated fields as given (``"withheld"`` included)."""
    fields = disclosure.fields()
    return {
        "type": disclosure.type,
        "commitment": disclosure.commitment,
        "direction": disclosure.direction,
        "counterparty": fields.get("counterparty"),
        "mw": fields.get("mw"),
        "usd": fields.get("usd"),
        "term_years": fields.get("term_years"),
        "sentence": disclosure.sentence,
        "start": disclosure.start,
        "end": disclosure.end,
    }


def passage_disclosures(extractor: ExtractorLike, text: str) -> list[Disclosure]:
    """A passage's disclosures as the GUIDE counts them: at most one per type.

    The extractor's own ``extract_passage`` when it has one (the scorer's unit), else the first
    disclosure of each type in text order, which is what the acceptance scorer keeps anyway.
    """
    per_passage = getattr(extractor, "extract_passage", None)
    if callable(per_passage):
        return list(per_passage(text))
    first: dict[str, Disclosure] = {}
    for disclosure in extractor.extract(text):
        first.setdefault(disclosure.type, disclosure)
    return list(first.values())


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, MonitorError) else f"{type(exc).__name__}: {exc}"


# --- the stage ---------------------------------------------------------------------------------


def extract_pending(db: sqlite_utils.Database, extractor: ExtractorLike, limit: int | None = None) -> ExtractResult:
    """Extract every document not yet extracted with ``extractor.version`` (at most ``limit`` of them)."""
    return _extract(db, extractor, store.documents_to_extract(db, extractor.version, limit))


def reextract_all(db: sqlite_utils.Database, extractor: ExtractorLike) -> ExtractResult:
    """Recompute the disclosures of every stored document, whatever rules produced them."""
    return _extract(db, extractor, store.documents_to_extract(db, None))


def _extract(db: sqlite_utils.Database, extractor: ExtractorLike, document_ids: list[int]) -> ExtractResult:
    result = ExtractResult(rules_version=extractor.version)
    for document_id in document_ids:
        text = store.document_text(db, document_id)
        if text is None:  # removed since the ids were read
            continue
        rows, error = _extract_text(extractor, text)
        _save(db, result, document_id, extractor.version, rows, error)
    return result


def _extract_text(extractor: ExtractorLike, text: str) -> tuple[list[dict[str, Any]], str]:
    try:
        return [disclosure_row(d) for d in extractor.extract(text)], ""
    except Exception as exc:  # one bad document must not stop the others; its error is recorded
        return [], _describe(exc)


def _save(
    db: sqlite_utils.Database,
    result: ExtractResult,
    document_id: int,
    version: str,
    rows: list[dict[str, Any]],
    error: str,
) -> None:
    result.documents += 1
    if not error:
        try:
            result.disclosures += store.save_extraction(db, document_id, version, rows)
            return
        except Exception as exc:  # the transaction rolled back; record the failure instead
            error = f"storing its disclosures failed: {_describe(exc)}"
    log.warning("document %s: extraction failed: %s", document_id, error)
    result.errors.append(f"document {document_id}: {error}")
    try:
        store.save_extraction(db, document_id, version, [], error=error)
    except Exception as exc:  # the store itself is failing: the document stays pending
        log.error("document %s: could not record the extraction failure: %s", document_id, _describe(exc))


# --- the same, texts extracted in worker processes ------------------------------------------------------

_worker_extractor: ExtractorLike | None = None


def _start_worker(factory: Callable[[], ExtractorLike]) -> None:
    global _worker_extractor
    _exit_with_parent()
    _worker_extractor = factory()


def _exit_with_parent() -> None:
    """End this worker as soon as the parent process is gone.

    A parent killed with SIGKILL cannot shut its pool down: the workers would wait on the call queue
    for ever (and keep multiprocessing's resource tracker alive with them). The parent's sentinel (a
    pipe the parent holds open) becomes readable when it dies, whatever killed it.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _extract_in_worker(text: str) -> tuple[str, list[dict[str, Any]], str]:
    assert _worker_extractor is not None
    rows, error = _extract_text(_worker_extractor, text)
    return _worker_extractor.version, rows, error


IN_FLIGHT_PER_WORKER = 16  # results are written in document order; a deep queue hides a slow document


def reextract_parallel(
    db: sqlite_utils.Database,
    factory: Callable[[], ExtractorLike],
    workers: int,
) -> ExtractResult:
    """``reextract_all`` with texts extracted in ``workers`` processes; the parent does every write.

    ``factory`` must be picklable (a module-level function or class, or a ``functools.partial`` of
    one, e.g. ``partial(Extractor.from_paths, rules_dir, model_path)``); each worker calls it once. Results are
    written in document order, so the store ends up as ``reextract_all`` leaves it. At most
    ``IN_FLIGHT_PER_WORKER * workers`` texts are in flight, so memory does not grow with the store, yet
    one long filing at the head of the queue does not leave the other workers idle while it is read.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    parent = factory()  # fails here, clearly, if the rules cannot be loaded
    ids = store.documents_to_extract(db, None)
    result = ExtractResult(rules_version=parent.version)
    if workers == 1:
        return _extract(db, parent, ids)
    pending: collections.deque[tuple[int, Future[tuple[str, list[dict[str, Any]], str]]]] = collections.deque()
    context = multiprocessing.get_context("spawn")  # no inherited threads, locks or SQLite handles
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(factory,)) as pool:
        try:
            for document_id in ids:
                text = store.document_text(db, document_id)
                if text is None:
                    continue
                pending.append((document_id, pool.submit(_extract_in_worker, text)))
                if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                    _save_next(db, result, pending)
            while pending:
                _save_next(db, result, pending)
        except BrokenProcessPool as exc:
            where = f" while extracting document {pending[0][0]}" if pending else ""
            raise MonitorError(f"reextract: a worker process died{where} ({exc}); "
                               "documents written so far are kept, run it again") from exc
        finally:
            for _, future in pending:
                future.cancel()
    return result


def _save_next(
    db: sqlite_utils.Database,
    result: ExtractResult,
    pending: collections.deque[tuple[int, Future[tuple[str, list[dict[str, Any]], str]]]],
) -> None:
    document_id, future = pending[0]
    version, rows, error = future.result()
    pending.popleft()
    _save(db, result, document_id, version, rows, error)


# --- monitor extract: JSON Lines and files --------------------------------------------------------------


@dataclass
class JsonlResult:
    records: int = 0
    disclosures: int = 0
    failed: int = 0


def extract_jsonl(
    source: IO[bytes],
    sink: IO[str],
    extractor: ExtractorLike,
    on_error: Callable[[int, str], None] = lambda line, message: None,
) -> JsonlResult:
    """One output line ``{"id", "disclosures"}`` per input record ``{"id", "text"}``, streaming.

    Input is read line by line (memory is bounded by the longest line). A blank line is skipped;
    a line that is not a JSON object with an ``id`` and a string ``text``, or whose extraction
    fails, is reported through ``on_error(line_number, message)`` and still gets an output line,
    ``{"id": <id or null>, "disclosures": [], "error": message}``, so output lines match input
    records one to one. Each text is a passage (``passage_disclosures``: at most one disclosure per
    type, the GUIDE's rule) and is normalised as stored documents are (``normalise_text``).
    """
    result = JsonlResult()
    for number, raw in enumerate(source, start=1):
        if not raw.strip():
            continue
        result.records += 1
        try:
            record_id, text = _parse_record(raw)
        except ValueError as exc:
            _fail(sink, result, on_error, number, _id_of(raw), f"line {number}: {exc}")
            continue
        try:
            disclosures = [d.to_guide() for d in passage_disclosures(extractor, normalise_text(text))]
            line = json.dumps({"id": record_id, "disclosures": disclosures})
        except Exception as exc:  # the extractor failed on this text: report it, go on with the others
            _fail(sink, result, on_error, number, record_id, f"line {number}: extraction failed: {_describe(exc)}")
            continue
        sink.write(line + "\n")
        result.disclosures += len(disclosures)
    return result


def _parse_record(raw: bytes) -> tuple[Any, str]:
    try:
        record = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from exc
    except RecursionError:
        raise ValueError("not a record: JSON nested too deeply") from None
    if not isinstance(record, dict):
        raise ValueError(f"not a JSON object with id and text, but a JSON {type(record).__name__}")
    missing = [key for key in ("id", "text") if key not in record]
    if missing:
        raise ValueError(f"the record has no {' and no '.join(repr(key) for key in missing)}")
    if not isinstance(record["text"], str):
        raise ValueError(f"'text' must be a string, not a JSON {type(record['text']).__name__}")
    return record["id"], record["text"]


def _id_of(raw: bytes) -> Any:
    """The id of a record that is valid JSON but not a valid record, so its output line can carry it."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return record.get("id") if isinstance(record, dict) else None


def _fail(sink: IO[str], result: JsonlResult, on_error: Callable[[int, str], None], number: int,
          record_id: Any, message: str) -> None:
    result.failed += 1
    on_error(number, message)
    sink.write(json.dumps({"id": record_id, "disclosures": [], "error": message}) + "\n")


def read_document_file(path: Path, max_bytes: int) -> str:
    """The text of an HTML or text file, parsed as fetched bodies are; ParseError when it is not one."""
    data = read_local_document(path, max_bytes)
    content_type = "text/html" if path.suffix.lower() in (".htm", ".html", ".xhtml") else ""
    return body_to_text(strip_provenance(data), content_type, str(path)).text
