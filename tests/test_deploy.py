"""The deployment recipes: the systemd unit and the Dockerfile, exercised without a Docker engine.

``scripts/check_deploy.py`` lays the app out as the Dockerfile's COPY steps do, installs the package
non-editable into a fresh venv as the unit's non-root user, and runs the unit's ExecStart (with
``--once --offline``) under the unit's Environment=/EnvironmentFile= only; these tests assert on what it
saw. The install is the fast one (the dependencies already here are made visible to the new venv);
``python scripts/check_deploy.py --full`` does the real download.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_deploy", ROOT / "scripts" / "check_deploy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_deploy"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_deploy = load_script()
UNIT = check_deploy.parse_unit(check_deploy.UNIT)
SECRETS = {"MONITOR_SEC_USER_AGENT", "MONITOR_SLACK_WEBHOOK", "MONITOR_SMTP_PASSWORD"}


@pytest.fixture(scope="module")
def deployed() -> Iterator[object]:
    if os.geteuid() != 0 or not (shutil.which("setpriv") and shutil.which("useradd")):
        pytest.skip("needs root with setpriv and useradd to create and become the service user")
    root = Path(tempfile.mkdtemp(prefix="catalyst-deploy-"))  # not tmp_path: the service user must reach it
    root.chmod(0o755)
    try:
        yield check_deploy.deploy_check(root)
    except check_deploy.DeployCheckError as exc:
        pytest.fail(str(exc))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the recipes as written ---------------------------------------------------------------


def test_the_unit_runs_as_a_non_root_user_with_secrets_only_from_its_environment_file() -> None:
    assigned = {word.partition("=")[0] for line in UNIT["Environment"] for word in line.split()}

    assert UNIT["User"] == ["catalyst"] and UNIT["Group"] == ["catalyst"]
    assert UNIT["EnvironmentFile"] == ["/etc/catalyst-monitor/env"]
    assert not assigned & SECRETS
    assert set(check_deploy.read_environment_file(check_deploy.ENV_EXAMPLE)) <= SECRETS


def test_the_unit_restarts_on_failure_and_stops_with_sigterm_and_a_timeout() -> None:
    assert (UNIT["Restart"], UNIT["KillSignal"]) == (["on-failure"], ["SIGTERM"])
    assert int(UNIT["TimeoutStopSec"][0]) >= 120


def test_the_unit_may_write_only_its_data_dir() -> None:
    assert UNIT["ProtectSystem"] == ["strict"] and UNIT["NoNewPrivileges"] == ["yes"]
    assert UNIT["ReadWritePaths"] == [f"{UNIT['WorkingDirectory'][0]}/data"]


def test_the_dockerfile_runs_monitor_as_a_non_root_user_with_a_data_volume_and_a_health_check() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()

    assert "USER catalyst" in lines
    assert 'VOLUME ["/app/data"]' in lines
    assert any(line.startswith("HEALTHCHECK") and line.endswith('CMD ["monitor", "status", "--json"]')
               for line in lines)
    assert lines[-1] == 'CMD ["monitor", "run"]'
    assert not any(line.startswith("ENV") and secret in line for line in lines for secret in SECRETS)


# --- the recipes carried out --------------------------------------------------------------


def test_the_units_pass_systemd_analyze_verify(deployed) -> None:
    if deployed.verify is None:
        pytest.skip("systemd-analyze is not installed")
    assert deployed.verify.returncode == 0, deployed.verify.stdout + deployed.verify.stderr
    # systemd-analyze prints warnings (unsafe settings, unknown keys) with the unit's name
    assert "catalyst-monitor" not in deployed.verify.stdout + deployed.verify.stderr


def test_the_package_is_installed_into_the_fresh_venv_not_run_from_the_source(deployed) -> None:
    assert deployed.imported_from.startswith(str(deployed.app / ".venv" / "lib"))


def test_run_once_offline_as_the_service_user_exits_0(deployed) -> None:
    assert deployed.run.returncode == 0, deployed.run.stderr
    assert "offline replay" in deployed.run.stdout


def test_the_service_logs_json_lines_as_the_unit_asks(deployed) -> None:
    lines = deployed.run.stderr.splitlines()

    assert lines
    assert all(json.loads(line)["level"] for line in lines)


def test_the_store_lands_in_the_data_dir_owned_by_the_service_user(deployed) -> None:
    database = deployed.app / "data" / "monitor.db"

    assert database.stat().st_uid == deployed.uid
    assert database.stat().st_size > 0


def test_status_json_as_the_service_user_exits_0_with_the_replayed_documents(deployed) -> None:
    assert deployed.status.returncode == 0, deployed.status.stdout + deployed.status.stderr
    status = json.loads(deployed.status.stdout)
    assert status["healthy"] is True and status["documents"] > 0
    assert {source["name"] for source in status["sources"]} == {"replay", "market-replay"}
