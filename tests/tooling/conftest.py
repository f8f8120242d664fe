"""Fixtures of the release tooling tests: the scripts importable, and small fake repositories."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
# The scripts run as `python scripts/x.py`, which puts scripts/ first on sys.path; so do the tests.
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

MakeProject = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write a hatchling project (pyproject, version file, changelog) under ``tmp_path``."""

    def make(
        directory: str,
        name: str,
        version: str,
        dependencies: Sequence[str] = (),
        changelog: str | None = None,
    ) -> Path:
        path = tmp_path / directory
        module = name.replace("-", "_")
        (path / "src" / module).mkdir(parents=True)
        (path / "src" / module / "__about__.py").write_text(f'__version__ = "{version}"\n')
        deps = ", ".join(f'"{d}"' for d in dependencies)
        (path / "pyproject.toml").write_text(
            textwrap.dedent(f"""\
                [project]
                name = "{name}"
                dynamic = ["version"]
                dependencies = [{deps}]

                [tool.hatch.version]
                path = "src/{module}/__about__.py"

                [tool.hatch.build.targets.wheel]
                packages = ["src/{module}"]
                """)
        )
        if changelog is None:
            changelog = f"# Changelog: {name}\n\n## {version} (2026-01-02)\n\n- First release.\n"
        (path / "CHANGELOG.md").write_text(changelog)
        return path

    return make
