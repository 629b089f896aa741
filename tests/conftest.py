"""Shared test set-up: fixture paths, local servers, configs pointing at them."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.config import Config
from tests.servers import FixtureServer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SAMPLES = ROOT / "data" / "samples"
RULES = ROOT / "rules"
MODEL = ROOT / "models" / "reader.joblib"  # the shipped reader, as `monitor train` built it
USER_AGENT = "Catalyst Monitor Tests tests@example.com"


@pytest.fixture
def sec_server() -> Iterator[FixtureServer]:
    """The server playing SEC (www.sec.gov and data.sec.gov)."""
    with FixtureServer() as server:
        yield server


@pytest.fixture
def wire_server() -> Iterator[FixtureServer]:
    """The server playing newswires and IR sites."""
    with FixtureServer() as server:
        yield server


def make_config(tmp_path: Path, sec_role: FixtureServer | None = None, **sections: dict[str, Any]) -> Config:
    """A Config for tests: fast timeouts and backoff, SEC role played by ``sec_role``.

    The link policy allows 127.0.0.1, where the local servers are; a test of the policy itself
    passes ``http={"allow_private_addresses": []}``.
    """
    raw: dict[str, Any] = {
        "monitor": {"db": str(tmp_path / "monitor.db"), "network": "online", "samples_dir": str(SAMPLES),
                    "rules_dir": str(RULES), "model_path": str(MODEL)},
        "sec": {"user_agent": USER_AGENT, "tickers_file": str(ROOT / "data" / "company_tickers.json")},
        "http": {"connect_timeout": 2.0, "read_timeout": 1.0, "total_timeout": 5.0, "max_retries": 2,
                 "backoff_base_seconds": 0.05, "backoff_max_seconds": 2.0, "other_hosts_per_second": 50.0,
                 "allow_private_addresses": ["127.0.0.1"]},
        "companies": [],
        "base_dir": str(tmp_path),
    }
    if sec_role is not None:
        raw["sec"].update({"www_url": sec_role.url, "data_url": sec_role.url, "hosts": [sec_role.netloc]})
    for name, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(name, {}).update(values)
        else:
            raw[name] = values
    return Config.model_validate(raw)


@pytest.fixture
def closing() -> Iterator[Any]:
    """``closing(obj)`` returns obj and closes it when the test ends (clients, databases, runtimes)."""
    opened: list[Any] = []

    def keep(obj: Any) -> Any:
        opened.append(obj)
        return obj

    yield keep
    for obj in reversed(opened):
        obj.close()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """CLI commands reconfigure the root logger onto the runner's stderr; put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """An empty store (as a first `monitor run` leaves it): the other commands refuse a missing one."""
    path = tmp_path / "m.db"
    store.open_db(path).close()
    return path


@pytest.fixture(scope="session")
def replayed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One offline `monitor run --once` with the repository's config, made once per test session.

    Tests that need a replayed store as their starting point (not as their subject) copy it
    through ``replayed_db``: a replay stores, extracts and scores every bundled document, which
    takes seconds each time, and ran two dozen times in the suite.
    """
    from typer.testing import CliRunner

    from monitor.cli import app

    path = tmp_path_factory.mktemp("replayed") / "monitor.db"
    result = CliRunner().invoke(app, ["--config", str(ROOT / "config.toml"), "--db", str(path), "run", "--once",
                                      "--offline"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def replayed_db(replayed_template: Path, tmp_path: Path) -> Path:
    """A private copy of the replayed store (closed, so its WAL is checkpointed into the file)."""
    path = tmp_path / "replayed.db"
    shutil.copy(replayed_template, path)
    return path
