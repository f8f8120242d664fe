"""The project model: versions read as hatch reads them, changelog sections, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from projects import ProjectError, changelog_sections, discover

from tests.tooling.conftest import MakeProject


def test_discover_reads_name_version_module_and_dependencies(
    tmp_path: Path, make_project: MakeProject
) -> None:
    make_project("packages/ev-core", "ev-core", "0.3.1")
    make_project("services/app", "ev-app", "1.0.0", ["ev-core ~= 0.3", "redis>=5"])
    make_project("bench", "ev-bench", "0.1.0")

    core, app, bench = discover(tmp_path)

    assert (core.name, core.version, core.import_name) == ("ev-core", "0.3.1", "ev_core")
    assert core.path == Path("packages/ev-core")
    assert app.dependencies == ("ev-core ~= 0.3", "redis>=5")
    assert (core.released, app.released, bench.released) == (True, True, False)


def test_version_pattern_follows_hatch(tmp_path: Path, make_project: MakeProject) -> None:
    path = make_project("packages/ev-core", "ev-core", "0.0.0")
    # hatch's default pattern: either quote, an optional leading "v", VERSION as well.
    (path / "src/ev_core/__about__.py").write_text("# about\nVERSION = 'v2.0.1'\n")

    assert discover(tmp_path)[0].version == "2.0.1"


def test_static_version_and_optional_dependencies(tmp_path: Path) -> None:
    path = tmp_path / "packages" / "plain"
    path.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        '[project]\nname = "plain"\nversion = "1.2"\n'
        '[project.optional-dependencies]\nfast = ["ev-core ~= 0.3"]\n'
    )

    (project,) = discover(tmp_path)

    assert (project.version, project.import_name) == ("1.2", "plain")
    assert project.dependencies == ("ev-core ~= 0.3",)


def test_missing_version_file_content_is_an_error(
    tmp_path: Path, make_project: MakeProject
) -> None:
    path = make_project("packages/ev-core", "ev-core", "0.1.0")
    (path / "src/ev_core/__about__.py").write_text("version_info = (0, 1)\n")

    with pytest.raises(ProjectError, match="no version found"):
        discover(tmp_path)


def test_changelog_sections() -> None:
    text = (
        "# Changelog: ev-core\n\nIntro.\n\n"
        "## Unreleased\n\n- Pending.\n\n"
        "## 0.2.0 (unreleased)\n\n- Two.\n\n"
        "## [0.1.0] - 2026-01-02\n\n- One.\n### Details\n- More.\n"
    )

    unreleased, two, one = changelog_sections(text)

    assert (unreleased.version, unreleased.unreleased) == (None, True)
    assert unreleased.body == "- Pending."
    assert (two.version, two.unreleased, two.body) == ("0.2.0", True, "- Two.")
    assert (one.version, one.unreleased) == ("0.1.0", False)
    assert one.body == "- One.\n### Details\n- More."
