"""Each image's build stage installs exactly what uv.lock holds: its `uv sync` run here, on the
files the Dockerfile copies and .dockerignore lets through, into a venv of this test's own."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from tests.containers.dockerfile import env_assignments, instructions
from tests.containers.support import ROOT, dockerfile

SERVICES = {"consumer": "ev-consumer", "api": "ev-api", "simulator": "ev-simulator"}


def _build_stage(service: str) -> list[tuple[str, str]]:
    """The instructions of the first stage (the one that builds the venv)."""
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(dockerfile(service).read_text(encoding="utf-8")):
        if keyword == "FROM":
            stages.append([])
        stages[-1].append((keyword, args))
    return stages[0]


def _ignored(path: PurePosixPath) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context (our file's subset: a
    leading ``*``, ``!name`` exceptions at the top and ``**/pattern`` anywhere below)."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!")
        if pattern.startswith("**/"):
            sub = pattern.removeprefix("**/")
            hit = any(
                fnmatch.fnmatch("/".join(path.parts[i : i + len(PurePosixPath(sub).parts)]), sub)
                for i in range(len(path.parts))
            )
        else:
            hit = fnmatch.fnmatch(path.parts[0], pattern)
        if hit:
            ignored = not negate
    return ignored


def _context(target: Path) -> None:
    """The build context as Docker would send it: tracked and new files less the ignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file() and not _ignored(PurePosixPath(name)):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _lock() -> tuple[set[str], dict[str, str]]:
    """uv.lock's workspace members (versioned by their own files) and every other pinned version."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    members = set(lock["manifest"]["members"])
    pinned = {p["name"]: p["version"] for p in lock["package"] if p["name"] not in members}
    return members, pinned


@pytest.mark.parametrize("service", list(SERVICES))
def test_build_stage_installs_exactly_the_lock(service: str, tmp_path: Path) -> None:
    if shutil.which("uv") is None:
        pytest.fail("uv is needed to run the image's build step (python -m pip install uv)")
    stage = _build_stage(service)
    env: dict[str, str] = {}
    workdir = "/"
    copies: list[str] = []
    runs: list[str] = []
    for keyword, args in stage:
        if keyword == "ENV":
            env = env_assignments(args, env)
        elif keyword == "WORKDIR":
            workdir = args
        elif keyword == "COPY" and not args.startswith("--from"):
            copies += shlex.split(args)[:-1]
        elif keyword == "RUN":
            runs.append(args)
    assert {"pyproject.toml", "uv.lock"} <= set(copies), "the workspace's lock is in the stage"
    (sync,) = [run for run in runs if "uv sync" in run]
    argv = [word for word in shlex.split(sync) if not word.startswith("--mount=")]
    assert argv[:2] == ["uv", "sync"]
    assert "--locked" in argv, "a stale lock must fail the build, not be re-resolved"
    assert argv[argv.index("--package") + 1] == SERVICES[service]

    assert workdir == "/src", "the build context is copied to /src"
    context = tmp_path / "context"
    _context(context)
    for source in copies:
        assert (context / source).exists(), f"COPY {source}: not in the build context"
    venv = tmp_path / "venv"
    run_env = {
        **os.environ,
        **env,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": sys.executable,  # the image's base Python stands in as this one
    }
    subprocess.run(argv, cwd=context, env=run_env, check=True)

    listed = subprocess.run(
        ["uv", "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {entry["name"]: entry for entry in json.loads(listed)}
    assert SERVICES[service] in installed
    assert not [name for name, entry in installed.items() if "editable_project_location" in entry]
    members, pinned = _lock()
    wrong = {
        name: (entry["version"], pinned.get(name))
        for name, entry in installed.items()
        if name not in members and pinned.get(name) != entry["version"]
    }
    assert not wrong, f"installed vs locked: {wrong}"
    assert len(set(installed) - members) >= 5, "the service's third-party dependencies"
