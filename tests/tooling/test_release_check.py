"""The release check: tag -> project, version and changelog agreement, built artifacts, notes."""

from __future__ import annotations

from pathlib import Path

import pytest
from projects import changelog_sections, discover
from release_check import (
    ReleaseError,
    artifact_problems,
    check,
    is_prerelease,
    main,
    parse_tag,
    release_notes,
    tag_problems,
)

from tests.tooling.conftest import MakeProject

DATED = "# Changelog\n\n## 0.2.0 (2026-03-04)\n\n- Two.\n\n## 0.1.0 (2026-01-02)\n\n- One.\n"


@pytest.fixture
def repo(tmp_path: Path, make_project: MakeProject) -> Path:
    make_project("packages/ev-storage", "ev-storage", "0.2.0", changelog=DATED)
    make_project("packages/ev", "ev", "1.0.0")
    make_project("services/api", "ev-api", "0.1.0", ["ev-storage ~= 0.2"])
    make_project("bench", "ev-bench", "0.1.0")
    return tmp_path


def test_tag_names_a_released_project(repo: Path) -> None:
    projects = discover(repo)

    project, version = parse_tag("ev-storage-v0.2.0", projects)
    assert (project.name, version) == ("ev-storage", "0.2.0")
    # The longest matching name wins: "ev-api-v..." is ev-api, never "ev" at "api-v...".
    assert parse_tag("ev-api-v0.1.0", projects)[0].name == "ev-api"
    assert parse_tag("ev-v1.0.0", projects)[0].name == "ev"


@pytest.mark.parametrize(
    "tag", ["ev-bench-v0.1.0", "ev-storage-0.2.0", "v0.2.0", "ev-storage-v", "ev-cache-v1.0"]
)
def test_unknown_or_malformed_tags_are_refused(repo: Path, tag: str) -> None:
    with pytest.raises(ReleaseError, match="<distribution>-v<version> with one of: ev, ev-api"):
        parse_tag(tag, discover(repo))


def test_a_consistent_tag_passes(repo: Path) -> None:
    project, version, sections = check("ev-storage-v0.2.0", repo)

    assert (project.name, version) == ("ev-storage", "0.2.0")
    assert release_notes(sections, version) == "- Two.\n"


def test_version_mismatch_and_missing_section_are_both_reported(repo: Path) -> None:
    with pytest.raises(ReleaseError) as caught:
        check("ev-storage-v0.3.0", repo)

    assert caught.value.problems == [
        "the tag says 0.3.0 but packages/ev-storage is at 0.2.0 "
        "(bump the version file or fix the tag)",
        "packages/ev-storage/CHANGELOG.md has no '## 0.3.0' section",
    ]
    assert str(caught.value).startswith("cannot release ev-storage-v0.3.0:\n  - the tag says")


@pytest.mark.parametrize(
    ("changelog", "expected"),
    [
        ("## 0.2.0 (unreleased)\n\n- Two.\n", "still calls 0.2.0 unreleased"),
        ("## 0.2.0 (2026-03-04)\n\n", "the 0.2.0 section is empty"),
        ("## Unreleased\n\n- Later.\n\n## 0.2.0 (2026-03-04)\n\n- Two.\n", "under '## Unreleased'"),
    ],
)
def test_changelog_must_be_ready(repo: Path, changelog: str, expected: str) -> None:
    project, version = parse_tag("ev-storage-v0.2.0", discover(repo))

    (problem,) = tag_problems(project, version, changelog_sections(changelog))

    assert expected in problem


def test_an_empty_unreleased_section_above_is_fine(repo: Path) -> None:
    project, version = parse_tag("ev-storage-v0.2.0", discover(repo))
    changelog = "## Unreleased\n\n## 0.2.0 (2026-03-04)\n\n- Two.\n"

    assert tag_problems(project, version, changelog_sections(changelog)) == []


def test_artifacts_must_be_exactly_the_versions_sdist_and_wheel(repo: Path) -> None:
    project = parse_tag("ev-storage-v0.2.0", discover(repo))[0]
    good = ["ev_storage-0.2.0.tar.gz", "ev_storage-0.2.0-py3-none-any.whl", ".gitignore"]

    assert artifact_problems(project, "0.2.0", good) == []
    assert artifact_problems(project, "0.2.0", ["ev_storage-0.1.0-py3-none-any.whl"]) == [
        "expected one sdist ev_storage-0.2.0.tar.gz, found none",
        "expected one wheel ev_storage-0.2.0-*.whl, found ['ev_storage-0.1.0-py3-none-any.whl']",
    ]
    assert artifact_problems(project, "0.2.0", [*good, "notes.txt"]) == [
        "unexpected files: ['notes.txt']"
    ]


def test_check_looks_at_the_artifacts_directory(repo: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "ev_storage-0.2.0.tar.gz").touch()

    with pytest.raises(ReleaseError) as caught:
        check("ev-storage-v0.2.0", repo, dist)

    assert caught.value.problems == ["expected one wheel ev_storage-0.2.0-*.whl, found none"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.0.0", False),
        ("1.0.0rc1", True),
        ("2.0a3", True),
        ("0.3.0.dev1", True),
        ("1.0.post1", False),
    ],
)
def test_prerelease(version: str, expected: bool) -> None:
    assert is_prerelease(version) is expected


def test_main_prints_outputs_and_writes_notes(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.md"

    assert main(["ev-storage-v0.2.0", "--root", str(repo), "--notes", str(notes)]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "name=ev-storage",
        "version=0.2.0",
        "path=packages/ev-storage",
        "prerelease=false",
    ]
    assert notes.read_text() == "- Two.\n"


def test_main_fails_with_every_problem(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ev-storage-v0.9.0", "--root", str(repo)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n  - ") == 2
