"""Every check of the EV telemetry monorepo: `nox -l` lists sessions, `nox` runs the defaults."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

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
    "cluster",
    "containers",
    "faults",
]

ROOT = Path(__file__).parent
REPORTS = ROOT / ".reports"
PYTHONS = ["3.11", "3.12", "3.13"]
DEFAULT_PYTHON = "3.11"
PROJECTS = {
    "ev-schemas": "packages/ev-schemas",
    "ev-storage": "packages/ev-storage",
    "ev-messaging": "packages/ev-messaging",
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
API_FAULT_TESTS = [
    "test_redis_outage.py",
    "test_openapi_fuzz.py",
    "test_ratelimit.py",
    "test_main.py",
]


def _expose_pyenv_interpreters() -> None:
    """Let pyenv's shims answer for every installed 3.x of the matrix, not only the selected one.

    (A shim exports PYENV_VERSION to what it runs, so nox sees only its own version otherwise.)
    """
    if shutil.which("pyenv") is None:
        return
    listed = subprocess.run(
        ["pyenv", "versions", "--bare", "--skip-aliases"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    selected = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
    newest: dict[str, str] = {}
    for version in listed:
        minor = ".".join(version.split(".")[:2])
        if minor in PYTHONS and version.replace(".", "").isdigit():
            newest[minor] = max(newest.get(minor, version), version, key=_version_key)
    covered = {".".join(v.split(".")[:2]) for v in selected}
    extra = [newest[minor] for minor in PYTHONS if minor in newest and minor not in covered]
    if extra:
        os.environ["PYENV_VERSION"] = ":".join(selected + extra)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _available(pythons: list[str]) -> list[str]:
    """The interpreters of the matrix that run here; nox would fail on the others when CI is set."""
    found = []
    for version in pythons:
        exe = shutil.which(f"python{version}")
        if (
            exe
            and subprocess.run([exe, "-c", ""], capture_output=True, check=False).returncode == 0
        ):
            found.append(version)
    return found or [DEFAULT_PYTHON]


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


def _local_closure(project: str) -> list[str]:
    """``project`` and every in-repo project it depends on, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        for requirement in _pyproject(name)["project"].get("dependencies", []):
            dep = re.split(r"[\s;\[<>=!~]", requirement, maxsplit=1)[0]
            key = _by_distribution().get(dep)
            if key is not None and key not in order:
                visit(key)
        if name not in order:
            order.append(name)

    visit(project)
    return order


def _install(session: nox.Session, *projects: str, groups: tuple[str, ...] = ("test",)) -> None:
    """Install projects editable with their in-repo dependencies: no sibling from an index."""
    closure: list[str] = []
    for project in projects:
        closure += [p for p in _local_closure(project) if p not in closure]
    args = []
    for project in closure:
        args += ["-e", PROJECTS[project]]
    session.install(*args)
    for project in projects:
        deps = nox.project.dependency_groups(_pyproject(project), *groups)
        if deps:
            session.install(*deps)


def _root_group(name: str) -> tuple[str, ...]:
    """A dependency group of the workspace's own pyproject.toml (tools, not a package)."""
    return tuple(
        nox.project.dependency_groups(nox.project.load_toml(ROOT / "pyproject.toml"), name)
    )


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
    """Ruff lint and format check over the whole repository."""
    session.install(*_root_group("lint"))
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def types(session: nox.Session) -> None:
    """mypy --strict over every package and service, and the release tooling."""
    _install(session, *PROJECTS, groups=("test",))
    session.install(*_root_group("types"))
    for path in PROJECTS.values():
        session.run("mypy", f"{path}/src", *session.posargs)
    session.run("mypy", *TOOLING_SCRIPTS, *session.posargs)


@nox.session(python=MATRIX, tags=[SERVICES_TAG])
@nox.parametrize("project", list(PROJECTS), ids=list(PROJECTS))
def tests(session: nox.Session, project: str) -> None:
    """Unit and integration tests of one project against the real RabbitMQ and Redis."""
    _install(session, project)
    _pytest(session, f"{PROJECTS[project]}/tests")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def e2e(session: nox.Session) -> None:
    """End to end: consumer and API as processes, fed by the simulator, read over HTTP and WS."""
    _install(session, *SERVICES)
    session.install(*_root_group("e2e"))
    _pytest(session, "tests/e2e")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def faults(session: nox.Session) -> None:
    """Fault tests: kills, Redis and broker cuts, hostile input; figures in .reports/faults.json."""
    _install(session, "consumer", "simulator", "api")
    session.install(*_root_group("e2e"))
    # The API's own fault tests (private Redis stopped and restarted, schemathesis, keys and rate
    # limits through the real process) run here too, so this session covers the whole issue.
    api_faults = [f"{PROJECTS['api']}/tests/{name}" for name in API_FAULT_TESTS]
    _pytest(session, "tests/faults", *api_faults)


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def cluster(session: nox.Session) -> None:
    """Scale-out: a private 3-master Redis Cluster (redis-server, redis-cli) and broker failover."""
    _install(session, "consumer", "api")
    session.install(*_root_group("e2e"))
    _pytest(session, "tests/cluster")


@nox.session(python=DEFAULT_PYTHON, tags=[SERVICES_TAG])
def containers(session: nox.Session) -> None:
    """Each Dockerfile's exact command and health check, run here on RabbitMQ and Redis."""
    _install(session, *SERVICES)
    session.install(*_root_group("containers"))
    _pytest(session, "tests/containers")


@nox.session(python=DEFAULT_PYTHON)
def static(session: nox.Session) -> None:
    """Containers and CI without Docker: hadolint the Dockerfiles, schema-check compose and CI."""
    session.install(*_root_group("static"))
    dockerfiles = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob("services/*/Dockerfile"))
    session.run("hadolint", "--failure-threshold", "info", *dockerfiles)
    session.run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    workflows = sorted(
        str(path.relative_to(ROOT))
        for pattern in (".github/workflows/*.yml", ".github/workflows/*.yaml")
        for path in ROOT.glob(pattern)
    )
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)


@nox.session(python=DEFAULT_PYTHON)
def versions(session: nox.Session) -> None:
    """Sibling ranges admit the in-repo versions; each changelog has its version's section."""
    session.install(*_root_group("versions"))
    session.run("python", "scripts/versions_check.py", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def tooling(session: nox.Session) -> None:
    """Unit tests of the release, version and CI matrix scripts under scripts/."""
    session.install(*_root_group("tooling"))
    _pytest(session, "tests/tooling")


@nox.session(python=DEFAULT_PYTHON)
def wheels(session: nox.Session) -> None:
    """Build every project; install each wheel alone in a clean venv and import it from there."""
    if session.venv_backend != "uv":
        session.install("uv")
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    for path in PROJECTS.values():
        # The sdist, then the wheel built from it: proves the sdist holds all the wheel needs.
        session.run("uv", "build", "--quiet", "--out-dir", str(dist), path)
    built = {project: _built_wheel(session, dist, project) for project in PROJECTS}
    # In-repo distributions come from these wheels only, never from an index; a constraint
    # installs nothing by itself, so each venv gets only the siblings its wheel asks for.
    constraints = tmp / "in-repo-wheels.txt"
    constraints.write_text(
        "".join(f"{_distribution(p)} @ {wheel.as_uri()}\n" for p, wheel in built.items()),
        encoding="utf-8",
    )
    for project, wheel in built.items():
        venv = tmp / f"venv-{project}"
        python = _venv_python(venv)
        uv_pip = ("uv", "pip", "--quiet")
        session.run(
            "uv", "venv", "--quiet", "--clear", "--python", _session_python(session), str(venv)
        )
        session.run(*uv_pip, "install", "--python", python, "-c", str(constraints), str(wheel))
        listing = session.run(
            *uv_pip, "list", "--python", python, "--format", "json", silent=True, stderr=None
        )
        _check_in_repo_closure(session, project, json.loads(str(listing)))
        absent = MUST_NOT_IMPORT.get(project, ())
        options = ("--absent", *absent) if absent else ()
        session.run(
            python, "scripts/smoke_import.py", _distribution(project), *options, external=True
        )


@nox.session(python=DEFAULT_PYTHON, default=False)
def schema(session: nox.Session) -> None:
    """Regenerate docs/reading.schema.json from ev-schemas."""
    _install(session, "ev-schemas", groups=())
    with open(ROOT / "docs" / "reading.schema.json", "w", encoding="utf-8") as out:
        session.run("python", "-m", "ev_schemas", stdout=out)


@nox.session(python=DEFAULT_PYTHON, default=False)
def up(session: nox.Session) -> None:
    """Run consumer, API (:8000) and simulator on the local RabbitMQ and Redis until Ctrl-C."""
    _install(session, *SERVICES, groups=())
    session.run("python", "scripts/stack.py", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmark against ceilings measured in the same run (needs wrk); `-- --json PATH`."""
    _install(session, "bench", groups=())
    session.run("python", "-m", "ev_bench", *session.posargs)
