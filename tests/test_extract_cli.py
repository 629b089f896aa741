"""``monitor extract``, ``reextract`` and ``disclosures``, and the extract line of ``run --once``.

Commands run in-process through typer's CliRunner with the repository's
config.toml and rules/, and a database in tmp_path. The classifier is being
written beside this work, so these tests check the shape of what the commands
print and store, never which disclosures the rules find.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from monitor import store
from monitor.cli import app
from monitor.documents import strip_provenance
from monitor.errors import ParseError
from monitor.extract.model import Disclosure
from monitor.extract.stage import extract_jsonl, read_document_file
from tests.conftest import ROOT, SAMPLES

REPO_CONFIG = ROOT / "config.toml"
RELEASES = SAMPLES / "wire" / "releases"
RELEASE_FILES = [
    RELEASES / "CORZ_2024-06-05_may-2024-production-update-coreweave-200mw.txt",
    RELEASES / "WULF_2025-08-14_fluidstack-200mw-google-backstop.txt",
    RELEASES / "MARA_2025-07-23_950m-zero-coupon-convertible-notes-pricing.txt",
]
GUIDE_KEYS = {"type", "commitment", "direction"}




def monitor(db_path: Path, *args: str, config: Path = REPO_CONFIG, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--config", str(config), "--db", str(db_path), *args], input=input)


def release_text(path: Path) -> str:
    return strip_provenance(path.read_bytes()).decode("utf-8")


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def release_records(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "in.jsonl",
                       [json.dumps({"id": f.stem, "text": release_text(f)}) for f in RELEASE_FILES])


def assert_guide_record(record: dict[str, Any], record_id: Any) -> None:
    assert record["id"] == record_id
    assert isinstance(record["disclosures"], list)
    for disclosure in record["disclosures"]:
        assert GUIDE_KEYS <= set(disclosure)
    assert len({d["type"] for d in record["disclosures"]}) == len(record["disclosures"]), "one per type"


def read_jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# --- extract --jsonl --------------------------------------------------------------------------


def test_extract_jsonl_writes_one_record_per_input_record_in_order(db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    result = monitor(db_path, "extract", "--jsonl", str(release_records(tmp_path)), "--out", str(out))

    assert result.exit_code == 0, result.output
    records = read_jsonl(out.read_text(encoding="utf-8"))
    assert [r["id"] for r in records] == [f.stem for f in RELEASE_FILES]
    for record, path in zip(records, RELEASE_FILES):
        assert_guide_record(record, path.stem)
        assert "error" not in record


def test_extract_jsonl_without_out_writes_only_json_lines_to_stdout(db_path: Path, tmp_path: Path) -> None:
    result = monitor(db_path, "extract", "--jsonl", str(release_records(tmp_path)))

    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(result.stdout)] == [f.stem for f in RELEASE_FILES]


def test_extract_jsonl_reads_stdin_when_given_a_dash(db_path: Path) -> None:
    record = json.dumps({"id": 7, "text": release_text(RELEASE_FILES[1])})

    result = monitor(db_path, "extract", "--jsonl", "-", input=record + "\n")

    assert result.exit_code == 0, result.output
    [line] = read_jsonl(result.stdout)
    assert_guide_record(line, 7)


def test_a_line_that_is_not_json_exits_2_naming_the_line_and_the_others_are_written(
    db_path: Path, tmp_path: Path
) -> None:
    good = json.dumps({"id": "a", "text": release_text(RELEASE_FILES[0])})
    source = write_jsonl(tmp_path / "in.jsonl", [good, '{"id": "b", "text": "unterminated', good.replace('"a"', '"c"')])

    result = monitor(db_path, "extract", "--jsonl", str(source))

    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.stderr
    records = read_jsonl(result.stdout)
    assert [r["id"] for r in records] == ["a", None, "c"]
    assert records[1]["disclosures"] == [] and records[1]["error"].startswith("line 2: not valid JSON")
    assert "error" not in records[0] and "error" not in records[2]


def test_a_record_without_text_is_reported_with_its_id_and_line(db_path: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ['{"id": "x1"}'])

    result = monitor(db_path, "extract", "--jsonl", str(source))

    assert result.exit_code == 2
    assert "line 1: the record has no 'text'" in result.stderr
    assert read_jsonl(result.stdout) == [{"id": "x1", "disclosures": [], "error": "line 1: the record has no 'text'"}]


def test_blank_lines_are_skipped_and_counted_in_line_numbers(db_path: Path, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ['{"id": 1, "text": "Nothing here."}', "", "[1, 2]"])

    result = monitor(db_path, "extract", "--jsonl", str(source))

    assert result.exit_code == 2
    assert "line 3: not a JSON object" in result.stderr
    assert [r["id"] for r in read_jsonl(result.stdout)] == [1, None]


def test_extract_jsonl_of_a_missing_file_exits_2_naming_it(db_path: Path, tmp_path: Path) -> None:
    result = monitor(db_path, "extract", "--jsonl", str(tmp_path / "absent.jsonl"))

    assert result.exit_code == 2
    assert "absent.jsonl" in result.stderr
    assert result.stdout == ""


class _LineByLine:
    """Bytes lines that check, before handing out each next line, that the previous one was answered."""

    def __init__(self, lines: list[bytes], sink: io.StringIO) -> None:
        self.lines, self.sink = lines, sink

    def __iter__(self) -> Iterator[bytes]:
        for number, line in enumerate(self.lines):
            assert self.sink.getvalue().count("\n") == number, "output must follow input line by line"
            yield line


class _OneDisclosurePerTypeMention:
    version = "fake"

    def extract(self, text: str) -> list[Disclosure]:
        return [Disclosure("power", "binding", "positive", text, 0, len(text), mw=1.0)] * text.count("power")


def test_extract_jsonl_streams_each_answer_before_reading_the_next_line() -> None:
    sink = io.StringIO()
    lines = [json.dumps({"id": i, "text": "power " * i}).encode() + b"\n" for i in range(4)]

    result = extract_jsonl(_LineByLine(lines, sink), sink, _OneDisclosurePerTypeMention())  # type: ignore[arg-type]

    assert result.records == 4
    assert [len(r["disclosures"]) for r in read_jsonl(sink.getvalue())] == [0, 1, 1, 1]  # at most one per type


def test_a_line_that_is_not_utf8_is_reported_and_the_next_one_answered() -> None:
    sink = io.StringIO()
    lines = [b'{"id": 1, "text": "caf\xe9"}\n', b'{"id": 2, "text": "power"}\n']
    reported: list[tuple[int, str]] = []

    result = extract_jsonl(lines, sink, _OneDisclosurePerTypeMention(),  # type: ignore[arg-type]
                           lambda line, message: reported.append((line, message)))

    assert (result.records, result.failed) == (2, 1)
    assert reported[0][0] == 1 and "not valid UTF-8" in reported[0][1]
    assert [r["id"] for r in read_jsonl(sink.getvalue())] == [None, 2]


# --- extract --text and --file ------------------------------------------------------------------------------


def test_extract_text_json_prints_one_guide_record(db_path: Path) -> None:
    result = monitor(db_path, "extract", "--text", release_text(RELEASE_FILES[1]), "--json")

    assert result.exit_code == 0, result.output
    assert_guide_record(json.loads(result.stdout), None)


def test_extract_text_prints_a_table_or_says_there_is_none(db_path: Path) -> None:
    result = monitor(db_path, "extract", "--text", "The weather was fine [***].")

    assert result.exit_code == 0, result.output
    assert "disclosure" in result.stdout


def test_extract_needs_exactly_one_input(db_path: Path) -> None:
    result = monitor(db_path, "extract", "--text", "a", "--jsonl", "-")

    assert result.exit_code == 2
    assert "exactly one of --jsonl, --text or --file" in result.output


def test_extract_with_rules_reads_no_config(db_path: Path, tmp_path: Path) -> None:
    result = monitor(db_path, "extract", "--rules", str(ROOT / "rules"), "--text", "Hello.", "--json",
                     config=tmp_path / "absent.toml")

    assert result.exit_code == 0, result.output


def test_extract_with_a_missing_rules_folder_exits_2_naming_the_setting(db_path: Path, tmp_path: Path) -> None:
    result = monitor(db_path, "extract", "--rules", str(tmp_path / "none"), "--text", "Hello.")

    assert result.exit_code == 2
    assert "monitor.rules_dir" in result.stderr


def test_extract_file_of_a_5_mb_document_finishes_with_a_result(db_path: Path, tmp_path: Path) -> None:
    text = release_text(RELEASE_FILES[0])
    big = tmp_path / "big.txt"
    big.write_text("\n\n".join([text] * (5_000_000 // len(text) + 1)), encoding="utf-8")
    assert big.stat().st_size >= 5_000_000

    result = monitor(db_path, "extract", "--file", str(big), "--json")

    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["id"] == str(big) and isinstance(record["disclosures"], list)


@pytest.mark.parametrize("suffix", [".bin", ".htm"])
def test_extract_file_of_random_bytes_is_one_clear_error(db_path: Path, tmp_path: Path, suffix: str) -> None:
    noise = tmp_path / f"noise{suffix}"
    noise.write_bytes(random.Random(0).randbytes(1_000_000))

    result = monitor(db_path, "extract", "--file", str(noise))

    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)  # a handled error, not a traceback
    assert f"{noise}: binary data, not a text or HTML document" in result.stderr
    assert result.stdout == ""


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_text("Eleven MW." * 10, encoding="utf-8")

    with pytest.raises(ParseError, match="100 bytes is more than the 99-byte limit"):
        read_document_file(path, max_bytes=99)


def test_extract_file_reads_an_html_filing(db_path: Path) -> None:
    filing = SAMPLES / "edgar" / "filings" / "mara_8-K_2024-11-21_form8-k.htm"

    result = monitor(db_path, "extract", "--file", str(filing), "--json")

    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout)["disclosures"], list)


# --- run --once, disclosures, reextract ------------------------------------------------------------------------


def ledger(db_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(extractions rows, disclosure rows, documents) straight from the store."""
    db = store.open_db(db_path)
    try:
        return store.list_extractions(db), store.list_disclosures(db), store.status(db)["documents"]
    finally:
        db.close()


def without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != "extracted_at"} for row in rows]


def without_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key not in ("id", "extracted_at")} for row in rows]


def test_run_once_extracts_every_stored_document_and_says_so(db_path: Path) -> None:
    result = monitor(db_path, "run", "--once", "--offline")

    assert result.exit_code == 0, result.output
    extractions, disclosures, documents = ledger(db_path)
    assert len(extractions) == documents > 0
    assert f"extract: {documents} documents extracted, {len(disclosures)} disclosures, 0 errors" in result.stdout
    assert sum(row["disclosures"] for row in extractions) == len(disclosures)


def test_a_second_run_once_extracts_nothing_and_adds_no_disclosures(replayed_db: Path) -> None:
    before = ledger(replayed_db)

    again = monitor(replayed_db, "run", "--once", "--offline")

    assert "extract: 0 documents extracted, 0 disclosures, 0 errors" in again.stdout
    assert ledger(replayed_db) == before


def test_disclosures_json_on_an_empty_store_is_an_object_with_an_empty_list(db_path: Path) -> None:
    result = monitor(db_path, "disclosures", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ticker": None, "disclosures": []}


def test_disclosures_json_lists_what_the_store_holds_for_the_ticker(replayed_db: Path) -> None:
    result = monitor(replayed_db, "disclosures", "--ticker", "corz", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["disclosures"]
    assert rows == [row for row in ledger(replayed_db)[1] if row["ticker"] == "CORZ"]
    for row in rows:
        assert row["sentence"] and row["url"] and row["published_at"]


def test_disclosures_prints_a_table(replayed_db: Path) -> None:
    result = monitor(replayed_db, "disclosures")

    assert result.exit_code == 0, result.output
    assert f"{len(ledger(replayed_db)[1])} disclosure" in result.stdout


def test_reextract_recomputes_every_document_without_duplicates(replayed_db: Path) -> None:
    _, before, documents = ledger(replayed_db)

    result = monitor(replayed_db, "reextract")

    assert result.exit_code == 0, result.output
    assert f"{documents} documents re-extracted, {len(before)} disclosures, 0 errors" in result.stdout
    assert without_ids(ledger(replayed_db)[1]) == without_ids(before)  # same rules, same findings, new rows


def test_reextract_with_two_workers_stores_what_one_worker_stores(tmp_path: Path) -> None:
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    for path in (one, two):
        monitor(path, "run", "--once", "--offline")

    first = monitor(one, "reextract", "--workers", "1")
    second = monitor(two, "reextract", "--workers", "2")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    extractions_one, disclosures_one, _ = ledger(one)
    extractions_two, disclosures_two, _ = ledger(two)
    assert without_times(disclosures_two) == without_times(disclosures_one)
    assert without_times(extractions_two) == without_times(extractions_one)


def test_reextract_with_zero_workers_is_a_usage_error(db_path: Path) -> None:
    result = monitor(db_path, "reextract", "--workers", "0")

    assert result.exit_code == 2


# --- help -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["extract", "reextract", "disclosures"])
def test_every_new_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
