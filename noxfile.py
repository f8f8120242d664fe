"""Every check of the EV telemetry monorepo: `nox -l` lists sessions, `nox` runs the defaults."""

from __future__ import annotations

import json
import os
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = [
    "lint",
    "types",
    "static",
    "versions",
    "tooling",
    "wheels",
    "tests",
    "e2e",
    "tls",
    "cluster",
    "containers",
    "faults",
]

ROOT = Path(__file__).parent
#: uv for a machine that has only nox (`python -m pip install nox`): installed into the session's
#: venv, then every session installs from uv.lock with it.
UV_REQUIREMENT = "uv>=0.9,<1"
REPORTS = ROOT / ".reports"
PYTHONS = ["3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"
PROJECTS = {
    "ev-schemas": "packages/ev-schemas",
    "ev-storage": "packages/ev-storage",
    "ev-messaging": "packages/ev-messaging",
    "ev-service": "packages/ev-service",
    "consumer": "services/consumer",
    "api": "services/api",
    "simulator": "services/simulator",
    "bench": "bench",
}
SERVICES = ["consumer", "api", "simulator"]
# Sessions tagged "services" talk to RabbitMQ and Redis: CI runs them in the job that starts both
# (scripts/ci_matrix.py). Tag every new such session (tests/cluster, tests/containers) with it.
SERVICES_TAG = "services"
# Modules a project's wheel must not pull in: the layering of the packages, on real installs.
MUST_NOT_IMPORT = {
    "ev-schemas": ("pika", "redis"),
    "ev-storage": ("pika",),
    "ev-messaging": ("redis",),
    "ev-service": ("pika", "redis"),
    "api": ("pika",),
    "simulator": ("redis",),
}
# The release tooling under scripts/ that mypy checks (scripts/stack.py is not strict-clean yet).
TOOLING_SCRIPTS = [
    "scripts/projects.py",
    "scripts/release_check.py",
    "scripts/versions_check.py",
    "scripts/ci_matrix.py",
    "scripts/smoke_import.py",
]


def _expose_pyenv_interpreters() -> None:
    """Let pyenv's shims answer for every installed 3.x of the matrix, not only the selected one.

    (A shim exports PYENV_VERSION to what it runs, so nox sees only its own version otherwise.)
    Reads pyenv's versions directory: no subprocess, so `nox -l` stays fast.
    """
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    if not (root / "shims").is_dir():
        return
    newest: dict[str, str] = {}
    for path in (root / "versions").glob("3.*"):
        version = path.name
        minor = ".".join(version.split(".")[:2])
        if minor in PYTHONS and version.replace(".", "").isdigit():
            newest[minor] = max(newest.get(minor, version), version, key=_version_key)
    selected = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
    covered = {".".join(v.split(".")[:2]) for v in selected}
    if not selected and (root / "version").is_file():
        global_version = (root / "version").read_text(encoding="utf-8").split()
        covered |= {".".join(v.split(".")[:2]) for v in global_version}
        selected = global_version
    extra = [newest[minor] for minor in PYTHONS if minor in newest and minor not in covered]
    if extra:
        os.environ["PYENV_VERSION"] = ":".join(selected + extra)
    _PYENV_MINORS.update(newest)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _available(pythons: list[str]) -> list[str]:
    """The interpreters of the matrix that run here; nox would fail on the others when CI is set.

    A pyenv shim is on PATH for every version pyenv knows of, so a shim counts only for the
    versions pyenv has installed.
    """
    found = []
    for version in pythons:
        exe = shutil.which(f"python{version}")
        if exe is None:
            continue
        if "/shims/" in exe.replace(os.sep, "/") and version not in _PYENV_MINORS:
            continue
        found.append(version)
    return found or [DEFAULT_PYTHON]


_PYENV_MINORS: dict[str, str] = {}
_expose_pyenv_interpreters()
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
MATRIX = _available(PYTHONS)


@cache
def _pyproject(project: str) -> dict:
    return nox.project.load_toml(ROOT / PROJECTS[project] / "pyproject.toml")


@cache
def _by_distribution() -> dict[str, str]:
    """In-repo projects by distribution name (``ev-consumer``) -> their key here (``consumer``)."""
    return {_pyproject(key)["project"]["name"]: key for key in PROJECTS}


def _distribution(project: str) -> str:
    """The distribution name of an in-repo project (``consumer`` -> ``ev-consumer``)."""
    return str(_pyproject(project)["project"]["name"])


def _local_closure(project: str, groups: tuple[str, ...] = ()) -> list[str]:
    """``project`` and every in-repo project it depends on (extras included, and those its
    dependency ``groups`` ask for), dependencies first."""
    order: list[str] = []

    def visit(name: str, extras: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> None:
        metadata = _pyproject(name)["project"]
        requirements = list(metadata.get("dependencies", []))
        for group in groups:  # a test group may ask for the project's own extras
            requirements += nox.project.dependency_groups(_pyproject(name), group)
        for extra in extras:
            requirements += metadata.get("optional-dependencies", {}).get(extra, [])
        for requirement in requirements:
            dep = re.split(r"[\s;\[<>=!~]", requirement, maxsplit=1)[0]
            wanted = re.search(r"\[([^\]]*)\]", requirement)
            dep_extras = tuple(e.strip() for e in wanted.group(1).split(",")) if wanted else ()
            key = _by_distribution().get(dep)
            if key is not None and (key not in order or dep_extras):
                visit(key, dep_extras)
        if name not in order:
            order.append(name)

    visit(project, groups=groups)
    return order


def _sync(
    session: nox.Session,
    *projects: str,
    groups: tuple[str, ...] = ("test",),
    all_projects: bool = False,
) -> None:
    """Install from uv.lock: ``projects`` (editable, with their in-repo dependencies) and groups.

    ``groups`` are the selected projects' dependency groups or the workspace's own. `--locked`
    fails when uv.lock no longer matches the pyproject files, instead of resolving anew; `uv sync`
    is exact, so a reused environment holds nothing else.
    """
    args = ["sync", "--locked", "--no-default-groups"]
    if all_projects:
        args.append("--all-packages")
    for project in projects:
        args += ["--package", _distribution(project)]
    if not projects and not all_projects:
        # The workspace root is virtual: only the groups, no project.
        args += [f"--only-group={group}" for group in groups]
    else:
        args += [f"--group={group}" for group in groups]
    _uv(session, *args, install=True)


def _uv(session: nox.Session, *args: str, install: bool = False, **kwargs: Any) -> Any:
    """Run uv on the session's environment; a machine without uv gets it inside that venv."""
    if session.venv_backend != "uv" and shutil.which("uv", path=session.bin) is None:
        session.install(UV_REQUIREMENT)
    env = {"UV_PROJECT_ENVIRONMENT": session.virtualenv.location, **kwargs.pop("env", {})}
    run = session.run_install if install else session.run
    return run("uv", *args, env=env, **kwargs)


def _built_wheel(session: nox.Session, dist: Path, project: str) -> Path:
    """The one wheel of ``project`` in a build output directory."""
    stem = re.sub(r"[-_.]+", "_", _distribution(project)).lower()
    found = list(dist.glob(f"{stem}-*.whl"))
    if len(found) != 1:
        session.error(f"expected one {stem} wheel in {dist}, found {found}")
    return found[0]


def _venv_python(venv: Path) -> str:
    return str(venv / ("Scripts" if os.name == "nt" else "bin") / "python")


def _session_python(session: nox.Session) -> str:
    return _venv_python(Path(session.virtualenv.location))


def _check_in_repo_closure(
    session: nox.Session, project: str, installed: list[dict[str, str]]
) -> None:
    """Fail unless exactly ``project`` and the in-repo projects it depends on were installed."""
    in_repo = {_distribution(key) for key in PROJECTS}
    found = {entry["name"] for entry in installed} & in_repo
    expected = {_distribution(key) for key in _local_closure(project)}
    if found != expected:
        session.error(
            f"{project}'s wheel installed {sorted(found)} of ours, not {sorted(expected)}"
        )


def _pytest(session: nox.Session, *paths: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    report = REPORTS / f"{session.name}.xml".replace("/", "_")
    session.run("pytest", f"--junitxml={report}", *paths, *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff lint and format check, the import layering, the README's variable table, the lock."""
    _sync(session, all_projects=True, groups=("lint",))
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")
    # The layering (.importlinter): packages never import services, services never each other,
    # only ev-storage imports redis and only ev-messaging imports pika.
    session.run("lint-imports")
    # The README's table of environment variables against the settings models it is made from.
    session.run("python", "-m", "ev_service.variables", "--check", "README.md")
    # A lock that no longer matches the pyproject files fails here first, with uv's own reason.
    _uv(session, "lock", "--check")


@nox.session(python=DEFAULT_PYTHON)
def types(session: nox.Session) -> None:
    """mypy --strict over every package and service, and the release tooling."""
    _sync(session, all_projects=True, groups=("test", "types"))
    for path in PROJECTS.values():
        session.run("mypy", f"{path}/src", *session.posargs)
    session.run("mypy", *TOOLING_SCRIPTS, *session.posargs)


@nox.session(python=MATRIX, tags=[SERVICES_TAG])
@nox.parametrize("project", list(PROJECTS), ids=list(PROJECTS))
def tests(session: nox.Session, project: str) -> None:
    """Unit and integration tests of one project against the real RabbitMQ and Redis."""
    _sync(session, project)
    _pytest(session, f"{PROJECTS[project]}/tests")


def _install_unlocked(session: nox.Session, project: str, *resolver_args: str) -> None:
    """Install ``project`` and its in-repo dependencies editable, its test group, without the lock.

    In-repo siblings always come from this checkout; everything else is resolved anew by uv with
    ``resolver_args`` (the ranges in the pyproject files are all that binds it). The resolution is
    written to ``.reports/`` and synced exactly, so a reused venv keeps nothing of the last one.
    """
    lines = [f"-e {PROJECTS[name]}" for name in _local_closure(project, groups=("test",))]
    lines += nox.project.dependency_groups(_pyproject(project), "test")
    tmp = Path(session.create_tmp())
    wanted = tmp / "requirements.in"
    wanted.write_text("\n".join(lines) + "\n", encoding="utf-8")
    REPORTS.mkdir(exist_ok=True)
    resolved = REPORTS / f"{session.name}.txt".replace("/", "_")
    python = ("--python", _session_python(session))
    _uv(session, "pip", "compile", "--quiet", *python, *resolver_args, "--output-file",
        str(resolved), str(wanted), install=True)  # fmt: skip
    _uv(session, "pip", "sync", "--quiet", *python, str(resolved), install=True)


@nox.session(python=MATRIX[0], default=False, tags=[SERVICES_TAG])
@nox.parametrize("project", list(PROJECTS), ids=list(PROJECTS))
def lowest(session: nox.Session, project: str) -> None:
    """One project's tests on the lowest versions its dependency ranges allow (not the lock)."""
    _install_unlocked(session, project, "--resolution", "lowest-direct")
    _pytest(session, f"{PROJECTS[project]}/tests")


@nox.session(python=MATRIX[-1], default=False, tags=[SERVICES_TAG])
@nox.parametrize("project", list(PROJECTS), ids=list(PROJECTS))
def latest(session: nox.Session, project: str) -> None:
    """One project's tests on the newest releases its ranges allow (not the lock): early warning."""
    _install_unlocked(session, project, "--resolution", "highest")
    _pytest(session, f"{PROJECTS[project]}/tests")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def e2e(session: nox.Session) -> None:
    """End to end: consumer and API as processes, fed by the simulator, read over HTTP and WS."""
    _sync(session, *SERVICES, groups=("test", "e2e"))
    _pytest(session, "tests/e2e")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def tls(session: nox.Session) -> None:
    """TLS with real handshakes: throwaway CA, private TLS redis-servers, an AMQPS terminator."""
    _sync(session, *SERVICES, groups=("test", "e2e"))
    _pytest(session, "tests/tls")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def faults(session: nox.Session) -> None:
    """Fault tests: kills, Redis and broker cuts, hostile input; figures in .reports/faults.json."""
    # The API's own fault tests (private Redis stopped and restarted, schemathesis, keys and rate
    # limits through the real process) run here too, so this session covers the whole issue: they
    # need the services' test groups (httpx2, schemathesis) beside e2e.
    _sync(session, *SERVICES, groups=("test", "e2e"))
    # tests/faults marks its own tests; the API's modules that belong here say so themselves.
    _pytest(session, "tests/faults", f"{PROJECTS['api']}/tests", "-m", "faults")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def cluster(session: nox.Session) -> None:
    """Scale-out: private 3-master Redis Cluster and 3-node RabbitMQ cluster, kills and failover."""
    _sync(session, *SERVICES, groups=("test", "e2e"))
    _pytest(session, "tests/cluster")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def containers(session: nox.Session) -> None:
    """Each Dockerfile's exact command and health check, run here on RabbitMQ and Redis."""
    _sync(session, *SERVICES, groups=("test", "containers"))
    _pytest(session, "tests/containers")


@nox.session(python=DEFAULT_PYTHON)
def static(session: nox.Session) -> None:
    """Containers and CI without Docker: hadolint the Dockerfiles, schema-check compose and CI."""
    _sync(session, groups=("static",))
    dockerfiles = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("services/*/Dockerfile"))
    session.run("hadolint", "--failure-threshold", "info", *session.posargs, *dockerfiles)
    session.run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    workflows = sorted(
        str(path.relative_to(ROOT))
        for pattern in (".github/workflows/*.yml", ".github/workflows/*.yaml")
        for path in ROOT.glob(pattern)
    )
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run(
        "check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"
    )


@nox.session(python=DEFAULT_PYTHON)
def versions(session: nox.Session) -> None:
    """Sibling ranges admit the in-repo versions; each changelog has its version's section."""
    _sync(session, groups=("versions",))
    session.run("python", "scripts/versions_check.py", *session.posargs)


# Tagged "services": scripts/local_services.py's tests start a private redis-server.
@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def tooling(session: nox.Session) -> None:
    """Tests of the scripts under scripts/: release, versions, CI matrix, the local stack."""
    _sync(session, groups=("tooling",))
    _pytest(session, "tests/tooling")


@nox.session(python=DEFAULT_PYTHON)
def wheels(session: nox.Session) -> None:
    """Build every project; install each wheel alone in a clean venv and import it from there."""
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # `nox -s wheels -- api consumer` checks those projects only (their siblings are built too).
    unknown = sorted(set(session.posargs) - set(PROJECTS))
    if unknown:
        session.error(f"unknown projects {unknown}; choose from {sorted(PROJECTS)}")
    chosen = set(session.posargs or PROJECTS)
    for path in PROJECTS.values():
        # The sdist, then the wheel built from it: proves the sdist holds all the wheel needs.
        _uv(session, "build", "--quiet", "--out-dir", str(dist), path)
    built = {project: _built_wheel(session, dist, project) for project in PROJECTS}
    # In-repo distributions come from these wheels only, never from an index, and every other
    # one at its locked version; a constraint installs nothing by itself, so each venv gets only
    # what its wheel asks for.
    locked = tmp / "locked.txt"
    _uv(
        session,
        "export", "--locked", "--quiet", "--all-packages", "--no-default-groups",
        "--no-emit-workspace", "--no-hashes", "--no-header", "--output-file", str(locked),
    )  # fmt: skip
    constraints = tmp / "constraints.txt"
    constraints.write_text(
        locked.read_text(encoding="utf-8")
        + "".join(f"{_distribution(p)} @ {wheel.as_uri()}\n" for p, wheel in built.items()),
        encoding="utf-8",
    )
    for project, wheel in built.items():
        if project not in chosen:
            continue
        venv = tmp / f"venv-{project}"
        python = _venv_python(venv)
        uv_pip = ("pip", "--quiet")
        _uv(session, "venv", "--quiet", "--clear", "--python", _session_python(session), str(venv))
        _uv(session, *uv_pip, "install", "--python", python, "-c", str(constraints), str(wheel))
        listing = _uv(
            session,
            *uv_pip,
            "list",
            "--python",
            python,
            "--format",
            "json",
            silent=True,
            stderr=None,
        )
        _check_in_repo_closure(session, project, json.loads(str(listing)))
        absent = MUST_NOT_IMPORT.get(project, ())
        options = ("--absent", *absent) if absent else ()
        session.run(
            python, "scripts/smoke_import.py", _distribution(project), *options, external=True
        )


@nox.session(python=DEFAULT_PYTHON, default=False)
def schema(session: nox.Session) -> None:
    """Regenerate docs/reading.schema.json and docs/alarm-rules.schema.json from ev-schemas."""
    _sync(session, "ev-schemas", groups=())
    for name in session.posargs or ("reading", "alarm-rules"):
        with open(ROOT / "docs" / f"{name}.schema.json", "w", encoding="utf-8") as out:
            session.run("python", "-m", "ev_schemas", name, stdout=out)


@nox.session(python=DEFAULT_PYTHON, default=False)
def up(session: nox.Session) -> None:
    """Run consumer, API (:8000) and simulator on local RabbitMQ and Redis (started if stopped)."""
    _sync(session, *SERVICES, groups=())
    # Ctrl-C reaches the script too: give it time to stop the services and any Redis or RabbitMQ
    # it started, before nox would terminate it.
    session.run(
        "python", "scripts/stack.py", *session.posargs, interrupt_timeout=60, terminate_timeout=10
    )


@nox.session(python=DEFAULT_PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmark against ceilings measured in the same run (needs wrk); `-- --json PATH`."""
    _sync(session, "bench", groups=())
    session.run("python", "-m", "ev_bench", *session.posargs)
