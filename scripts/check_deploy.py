#!/usr/bin/env python3
"""Check the deployment recipes on this machine: no Docker engine or systemd PID 1 needed.

``docker build`` cannot run here, so this replays what the recipes say, as root, in a temp root:

1. lay the app out as the Dockerfile's COPY steps do (``/src`` → ROOT/src, ``/app`` → ROOT/app);
2. create the systemd unit's ``User=`` (useradd --system) when missing, give it ``data/``;
3. as that user, install the package from ROOT/src into a fresh venv where the unit's ExecStart
   expects it (``/opt/catalyst-monitor`` → ROOT/app), non-editable. By default the venv sees this
   interpreter's site-packages through a ``.pth`` file and installs ``--no-deps`` (seconds); ``--full``
   installs every dependency from the registry as the Dockerfile does (minutes);
4. ``systemd-analyze verify`` the units, copied with their paths pointing into ROOT (verify insists
   that ExecStart's binary exists, and it does only there), when the binary is available;
5. as that user, with no privileges to gain and only the unit's ``Environment=`` lines and its
   ``EnvironmentFile=`` (deploy/env.example stands in for /etc/catalyst-monitor/env), run the unit's
   ExecStart with ``--once --offline`` in its WorkingDirectory, then ``monitor status --json``.

Usage: ``sudo python3 scripts/check_deploy.py [--full] [--keep]``; exit 0 when every step passed.
tests/test_deploy.py imports ``deploy_check`` and asserts on what it returns.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "catalyst-monitor.service"
UNITS = [REPO / "deploy" / name for name in
         ("catalyst-monitor.service", "catalyst-monitor-health.service", "catalyst-monitor-health.timer")]
ENV_EXAMPLE = REPO / "deploy" / "env.example"
DOCKERFILE = REPO / "Dockerfile"
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # what systemd gives services
PYTHONS = ["/usr/local/bin/python3.11", "/usr/bin/python3.11"]  # the images' and Debian's interpreters


class DeployCheckError(Exception):
    """A step of the recipe failed; the message names the step and its output."""


@dataclass
class Completed:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class DeployRun:
    """What the check saw, for the tests to assert on."""

    root: Path
    app: Path
    user: str
    uid: int
    verify: Completed | None  # None when systemd-analyze is not installed
    run: Completed
    status: Completed
    imported_from: str  # where the deployed venv imports ``monitor`` from


def parse_unit(path: Path) -> dict[str, list[str]]:
    """``[Service]`` settings of a unit file: key → values in order (Environment= may repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def read_environment_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= reads them (comments, blank lines, optional quotes)."""
    env = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise DeployCheckError(f"{path}: {raw!r} is not KEY=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def unit_environment(unit: dict[str, list[str]], env_file: Path, prefix: str, app: Path) -> dict[str, str]:
    """The variables the unit's process would get: systemd's basics, EnvironmentFile=, then Environment=."""
    user = unit["User"][0]
    env = {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "USER": user, "LOGNAME": user, "HOME": str(app)}
    env.update(read_environment_file(env_file))
    for line in unit.get("Environment", []):
        for assignment in shlex.split(line):
            key, _, value = assignment.partition("=")
            env[key] = value.replace(prefix, str(app))
    return env


def lay_out_from_dockerfile(dockerfile: Path, context: Path, root: Path) -> None:
    """Apply the Dockerfile's ``COPY src... dest`` steps with ``/`` mapped to ``root``."""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, dest = shlex.split(line)[1:]
        target = root / dest.lstrip("/")
        for source in sources:
            path = context / source
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into = target / path.name if dest.endswith("/") or len(sources) > 1 else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, into)


def ensure_user(name: str, home: str) -> tuple[int, int]:
    """The service account (created as the unit's install comment says, when missing)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        sh(["useradd", "--system", "--user-group", "--home-dir", home, "--no-create-home",
            "--shell", "/usr/sbin/nologin", name])
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def sh(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None, check: bool = True,
       timeout: float = 900) -> Completed:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    result = Completed(args, done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        raise DeployCheckError(f"{shlex.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return result


def as_user(uid: int, gid: int, args: list[str], *, env: dict[str, str] | None = None,
            cwd: Path | None = None, check: bool = True) -> Completed:
    """Run as the service user with no way to gain privileges (the unit's NoNewPrivileges=)."""
    switch = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--"]
    return sh([*switch, *args], env=env, cwd=cwd, check=check)


def user_can(uid: int, gid: int, test: str, path: str) -> bool:
    """``test -r``/``-x`` as the service user: can it read or execute ``path``?"""
    return as_user(uid, gid, ["test", test, path], check=False).returncode == 0


def base_python(uid: int, gid: int) -> str:
    """An interpreter the service user may execute (this one may live under /root)."""
    for candidate in [getattr(sys, "_base_executable", sys.executable), *PYTHONS]:
        if os.path.exists(candidate) and user_can(uid, gid, "-x", candidate):
            return candidate
    raise DeployCheckError(f"no Python 3.11 the service user can run (tried {', '.join(PYTHONS)})")


def install(root: Path, venv: Path, uid: int, gid: int, full: bool) -> None:
    """Create the venv and install the package from ROOT/src, as the service user, non-editable."""
    env = {"PATH": SYSTEMD_PATH, "HOME": str(root), "PIP_NO_CACHE_DIR": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    python = base_python(uid, gid)
    pip_install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if full:
        as_user(uid, gid, [python, "-m", "venv", str(venv)], env=env)
        as_user(uid, gid, [*pip_install, str(root / "src")], env=env)
        return
    # Fast: the dependencies, pip and the build backend already installed here are made visible to the
    # new venv (after its own packages) by a .pth file, instead of being downloaded again.
    here = sysconfig.get_paths()["purelib"]
    if not user_can(uid, gid, "-r", str(Path(here) / "pip" / "__init__.py")):
        raise DeployCheckError(f"the service user cannot read {here}; use --full")
    as_user(uid, gid, [python, "-m", "venv", "--without-pip", str(venv)], env=env)
    site = as_user(uid, gid, [str(venv / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"], env=env)
    (Path(site.stdout.strip()) / "_deploy_check_dependencies.pth").write_text(here + "\n")
    as_user(uid, gid, [*pip_install, "--no-deps", "--no-build-isolation", "--no-index", "--ignore-installed",
                       str(root / "src")], env=env)


def verify_units(root: Path, prefix: str, app: Path) -> Completed | None:
    """``systemd-analyze verify`` copies of the units whose paths point at the installed app."""
    binary = shutil.which("systemd-analyze")
    if binary is None:
        return None
    units = root / "units"
    units.mkdir()
    for unit in UNITS:
        (units / unit.name).write_text(unit.read_text(encoding="utf-8").replace(prefix, str(app)))
    return sh([binary, "verify", *(str(units / unit.name) for unit in UNITS)], check=False)


def deploy_check(root: Path, full: bool = False) -> DeployRun:
    """Every step of the module docstring, in ``root`` (which must be traversable by the service user)."""
    unit = parse_unit(UNIT)
    prefix = unit["WorkingDirectory"][0]
    app = root / "app"
    user = unit["User"][0]
    uid, gid = ensure_user(user, prefix)
    if unit["Group"][0] != grp.getgrgid(gid).gr_name:
        raise DeployCheckError(f"the unit's Group={unit['Group'][0]} is not {user}'s group")
    lay_out_from_dockerfile(DOCKERFILE, REPO, root)
    venv = Path(shlex.split(unit["ExecStart"][0])[0].replace(prefix, str(app))).parent.parent
    venv.mkdir(parents=True)
    for path in (root / "src", venv, app / "data"):  # the Dockerfile's chown; the rest stays root's
        sh(["chown", "-R", f"{uid}:{gid}", str(path)])
    install(root, venv, uid, gid, full)
    where = "import monitor.cli; print(monitor.cli.__file__)"
    imported = as_user(uid, gid, [str(venv / "bin" / "python"), "-c", where], env={"PATH": SYSTEMD_PATH},
                       cwd=app)
    verify = verify_units(root, prefix, app)
    env = unit_environment(unit, ENV_EXAMPLE, prefix, app)
    command = [word.replace(prefix, str(app)) for word in shlex.split(unit["ExecStart"][0])]
    cwd = Path(unit["WorkingDirectory"][0].replace(prefix, str(app)))
    run = as_user(uid, gid, [*command, "--once", "--offline"], env=env, cwd=cwd, check=False)
    status = as_user(uid, gid, [command[0], "status", "--json"], env=env, cwd=cwd, check=False)
    return DeployRun(root, app, user, uid, verify, run, status, imported.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="install every dependency from the registry")
    parser.add_argument("--keep", action="store_true", help="keep the temp root for inspection")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("check_deploy: run as root (it creates the service user and switches to it)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="catalyst-deploy-"))
    root.chmod(0o755)
    started = time.perf_counter()
    try:
        result = deploy_check(root, full=args.full)
    except DeployCheckError as exc:
        print(f"check_deploy: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    problems = []
    if result.verify is not None and result.verify.returncode != 0:
        problems.append(f"systemd-analyze verify: {result.verify.stdout}{result.verify.stderr}")
    if result.run.returncode != 0:
        problems.append(f"monitor run --once --offline exited {result.run.returncode}: {result.run.stderr}")
    if result.status.returncode != 0:
        problems.append(f"monitor status --json exited {result.status.returncode}: {result.status.stdout}")
    verdict = "FAILED: " + "; ".join(problems) if problems else "passed"
    status = json.loads(result.status.stdout) if result.status.stdout.startswith("{") else {}
    documents = status.get("documents")
    kept = f", kept {root}" if args.keep else ""
    print(f"check_deploy ({'full' if args.full else 'fast'} install, user {result.user}): {verdict}; "
          f"verify: {'skipped' if result.verify is None else result.verify.returncode}, "
          f"documents: {documents}, {time.perf_counter() - started:.1f}s{kept}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
