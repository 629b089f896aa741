"""A broken edit of rules/ is reported with file, line and problem, and the daemon keeps the last good rules."""

from __future__ import annotations

import shutil

from monitor import store
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
