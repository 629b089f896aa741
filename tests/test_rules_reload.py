"""A broken edit of rules/ is reported with file, line and problem, and the daemon keeps the last good rules."""

from __future__ import annotations

import shutil
import time

import pytest
import regex

from monitor import store
from monitor.errors import RuleTimeout
from monitor.extract.rules import Cue, load_rules
from monitor.pipeline import Runtime, job_extract, job_replay, job_score
from monitor.tickers import WatchedCompany
from tests.conftest import ROOT, make_config


def runtime(tmp_path, closing) -> Runtime:
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    config = make_config(tmp_path, None, monitor={"rules_dir": str(tmp_path / "rules"),
                                                  "theses_dir": str(tmp_path / "rules" / "theses")})
    return closing(Runtime(config, config.path(config.monitor.db), [WatchedCompany("APLD", 1144879, "", ())],
                           offline=True))


def errors(rt: Runtime) -> list[dict]:
    db = store.open_db(rt.db_path)
    try:
        return store.status(db)["recent_errors"]
    finally:
        db.close()


def test_a_broken_thesis_edit_keeps_the_last_good_thesis_and_names_file_and_line(tmp_path, closing):
    rt = runtime(tmp_path, closing)
    job_replay(rt)
    job_extract(rt)
    assert job_score(rt).errors == []
    thesis_file = tmp_path / "rules" / "theses" / "mara_ai_pivot.toml"
    thesis_file.write_text(thesis_file.read_text().replace('kind = "backing"', 'kind = = "backing"', 1))
    result = job_score(rt)
    assert result.errors == []  # scored with the last good thesis
    [logged] = [e for e in errors(rt) if e["source"] == "rules:theses"]
    assert "mara_ai_pivot.toml" in logged["cause"] and "line" in logged["cause"]
    assert "last good" in logged["cause"]


def test_a_broken_extraction_rule_keeps_the_last_good_rules(tmp_path, closing):
    rt = runtime(tmp_path, closing)
    job_replay(rt)
    assert job_extract(rt).errors == []
    types = tmp_path / "rules" / "types.toml"
    types.write_text(types.read_text().replace("'\\bhalving\\b',", "'(unclosed',", 1))
    assert job_extract(rt).errors == []
    [logged] = [e for e in errors(rt) if e["source"] == "rules:rules"]
    assert "types.toml: mining.strong[" in logged["cause"] and "bad pattern" in logged["cause"]


def test_broken_rules_at_start_up_are_an_error_not_a_silent_default(tmp_path, closing):
    rt = runtime(tmp_path, closing)
    (tmp_path / "rules" / "theses" / "mara_ai_pivot.toml").write_text("id = [")
    job_replay(rt)
    job_extract(rt)
    result = job_score(rt)
    assert result.errors and "mara_ai_pivot.toml" in result.errors[0]


# --- issue 14.10: one rule edit must not be able to freeze the daemon ------------------------------------


ATTACK = "'(?:\\w+\\s?)+ of contracted critical it capacity',"  # the cue of the attack, verbatim
CATASTROPHIC = "'(?:a|aa)+ capacity',"  # overlapping alternatives under a repeat: exponential on "aaa…!"


def test_the_attack_cue_reads_a_sentence_in_milliseconds(tmp_path, closing):
    """It made a 95-character sentence run past 20 s with every job stalled and SIGTERM ignored; the cue
    engine (regex, with guards on repeats and a time budget per match) reads it at once."""
    runtime(tmp_path, closing)  # a copy of the project's rules to edit
    types = tmp_path / "rules" / "types.toml"
    types.write_text(types.read_text().replace("'\\bhalving\\b',", ATTACK + " '\\bhalving\\b',", 1))
    [cue] = [c for c in load_rules(tmp_path / "rules").types["mining"].strong if "contracted" in c.pattern]
    sentence = "The Company expects to bring online additional data center capacity across its campuses in 2026"
    started = time.monotonic()
    assert cue.search(sentence) is None
    assert time.monotonic() - started < 0.5


def test_a_cue_that_backtracks_catastrophically_is_refused_and_the_last_good_rules_kept(tmp_path, closing):
    rt = runtime(tmp_path, closing)
    job_replay(rt)
    assert job_extract(rt).errors == []
    types = tmp_path / "rules" / "types.toml"
    types.write_text(types.read_text().replace("'\\bhalving\\b',", CATASTROPHIC + " '\\bhalving\\b',", 1))
    started = time.monotonic()
    assert job_extract(rt).errors == []  # with the last good rules
    assert time.monotonic() - started < 5
    [logged] = [e for e in errors(rt) if e["source"] == "rules:rules"]
    assert "types.toml: mining.strong[" in logged["cause"] and "catastrophic backtracking" in logged["cause"]


def test_a_cue_that_overruns_on_one_text_fails_that_read_within_its_budget():
    """A cue the load-time probes let through still cannot hang on a text that trips it: the match stops
    at CUE_SECONDS and names the cue."""
    cue = Cue(regex.compile(r"(?:b|bb)+ capacity", regex.V0 | regex.IGNORECASE), "rules/types.toml: power.weak[0]")
    assert not cue.overruns()
    started = time.monotonic()
    with pytest.raises(RuleTimeout, match=r"power\.weak\[0\]: cue .* ran past"):
        cue.search("b" * 60 + "!")
    assert time.monotonic() - started < 1
