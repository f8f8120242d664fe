"""The version check: sibling ranges admit in-repo versions, changelogs cover current versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from projects import changelog_sections, discover
from versions_check import changelog_problems, range_problems, version_problems

from tests.tooling.conftest import MakeProject


@pytest.fixture
def siblings(tmp_path: Path, make_project: MakeProject) -> Path:
    make_project("packages/ev-schemas", "ev-schemas", "0.1.0")
    make_project("packages/ev-storage", "ev-storage", "0.2.0", ["ev-schemas ~= 0.1", "redis>=5"])
    return tmp_path


def _problems_of(root: Path, make_project: MakeProject, *dependencies: str) -> list[str]:
    make_project("services/api", "ev-api", "0.1.0", dependencies)
    return range_problems(discover(root))


def test_admitting_ranges_pass(siblings: Path, make_project: MakeProject) -> None:
    deps = ("ev-schemas>=0.1,<1", "ev-storage[hiredis] ~= 0.2; python_version >= '3.11'")

    assert _problems_of(siblings, make_project, *deps) == []


@pytest.mark.parametrize(
    ("dependency", "problem"),
    [
        ("ev-storage ~= 0.3", "does not admit the in-repo version 0.2.0"),
        ("ev-storage >= 0.1, < 0.2", "does not admit the in-repo version 0.2.0"),
        ("ev-storage == 0.2.0", "an exact pin between separately released projects"),
        ("ev_storage", "no version range"),
        ("ev-storage @ file:///wheels/ev_storage-0.2.0-py3-none-any.whl", "a direct reference"),
    ],
)
def test_wrong_sibling_ranges_are_reported(
    siblings: Path, make_project: MakeProject, dependency: str, problem: str
) -> None:
    (message,) = _problems_of(siblings, make_project, dependency)

    assert message.startswith(f"ev-api depends on {dependency!r}: {problem}")


def test_wildcard_equality_is_a_range(siblings: Path, make_project: MakeProject) -> None:
    assert _problems_of(siblings, make_project, "ev-storage == 0.2.*") == []


def test_third_party_dependencies_are_not_checked(
    siblings: Path, make_project: MakeProject
) -> None:
    assert _problems_of(siblings, make_project, "redis == 5.0.1", "pika") == []


def test_unparsable_dependency_is_reported(siblings: Path, make_project: MakeProject) -> None:
    (problem,) = _problems_of(siblings, make_project, "ev-storage >>> 1")

    assert problem.startswith("ev-api: cannot parse dependency 'ev-storage >>> 1'")


def test_versions_must_be_pep_440(tmp_path: Path, make_project: MakeProject) -> None:
    make_project("packages/ev-schemas", "ev-schemas", "0.1-final-really")

    assert version_problems(discover(tmp_path)) == [
        "ev-schemas: '0.1-final-really' is not a PEP 440 version"
    ]


def test_changelog_needs_the_current_version(siblings: Path) -> None:
    storage = discover(siblings)[1]

    assert changelog_problems(storage, changelog_sections("## 0.2.0 (unreleased)\n- x\n")) == []
    assert changelog_problems(storage, changelog_sections("## Unreleased\n\n## 0.1.0\n")) == [
        "packages/ev-storage/CHANGELOG.md has no '## 0.2.0' section"
    ]
