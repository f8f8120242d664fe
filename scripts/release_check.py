"""Check a release tag (``ev-schemas-v0.2.0``) against the project it names, before and after build.

    python scripts/release_check.py ev-schemas-v0.2.0 [--artifacts DIR] [--notes FILE]

The tag names a released project (packages/*, services/*) by distribution name; its version must
equal the one hatch reads, and the project's CHANGELOG.md must have a released section for it
(no "unreleased" in its heading, no non-empty "Unreleased" section above it). With
``--artifacts`` the directory must hold exactly that version's sdist and wheel; ``--notes`` writes
the changelog section (the GitHub release text). On success prints ``key=value`` lines for
``$GITHUB_OUTPUT``; otherwise every problem found, and exits 1. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from projects import ChangelogSection, Project, ProjectError, discover, read_changelog

ROOT = Path(__file__).resolve().parent.parent
_PRERELEASE = re.compile(r"(a|b|rc|\.dev)\d*")


class ReleaseError(Exception):
    """The tag cannot be released; ``problems`` says every reason found."""

    def __init__(self, tag: str, problems: Sequence[str]) -> None:
        super().__init__(tag, problems)
        self.tag = tag
        self.problems = list(problems)

    def __str__(self) -> str:
        lines = [f"cannot release {self.tag}:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def parse_tag(tag: str, projects: Sequence[Project]) -> tuple[Project, str]:
    """The released project a tag names and the version it claims."""
    released = [p for p in projects if p.released]
    # Longest name first, so "ev-api-v1" can never be read as a project "ev" at "api-v1".
    for project in sorted(released, key=lambda p: len(p.name), reverse=True):
        prefix = f"{project.name}-v"
        if tag.startswith(prefix) and len(tag) > len(prefix):
            return project, tag[len(prefix) :]
    names = ", ".join(sorted(p.name for p in released))
    raise ReleaseError(tag, [f"a tag is <distribution>-v<version> with one of: {names}"])


def tag_problems(
    project: Project, tag_version: str, sections: Sequence[ChangelogSection]
) -> list[str]:
    """Why ``project`` at ``tag_version`` is not releasable (empty when it is)."""
    problems = []
    if tag_version != project.version:
        problems.append(
            f"the tag says {tag_version} but {project.path} is at {project.version} "
            "(bump the version file or fix the tag)"
        )
    changelog = project.path / "CHANGELOG.md"
    index = _section_index(sections, tag_version)
    if index is None:
        problems.append(f"{changelog} has no '## {tag_version}' section")
        return problems
    section = sections[index]
    if section.unreleased:
        problems.append(
            f"{changelog} still calls {tag_version} unreleased ('## {section.title}'): "
            f"date it, e.g. '## {tag_version} (YYYY-MM-DD)'"
        )
    if not section.body.strip():
        problems.append(f"{changelog}: the {tag_version} section is empty")
    pending = [s for s in sections[:index] if s.version is None and s.body.strip()]
    if pending:
        problems.append(
            f"{changelog} lists changes under '## {pending[0].title}' above {tag_version}: "
            "move them into the release's section or release them later"
        )
    return problems


def artifact_problems(project: Project, version: str, filenames: Sequence[str]) -> list[str]:
    """Why a build output directory is not exactly that version's sdist and wheel."""
    stem = f"{re.sub(r'[-_.]+', '_', project.name).lower()}-{version}"
    wheels = [name for name in filenames if name.endswith(".whl")]
    sdists = [name for name in filenames if name.endswith(".tar.gz")]
    problems = []
    if sdists != [f"{stem}.tar.gz"]:
        problems.append(f"expected one sdist {stem}.tar.gz, found {sdists or 'none'}")
    if len(wheels) != 1 or not wheels[0].startswith(f"{stem}-"):
        problems.append(f"expected one wheel {stem}-*.whl, found {wheels or 'none'}")
    # Dot files are a build tool's own (uv writes dist/.gitignore).
    others = sorted(set(filenames) - set(wheels) - set(sdists))
    others = [name for name in others if not name.startswith(".")]
    if others:
        problems.append(f"unexpected files: {others}")
    return problems


def release_notes(sections: Sequence[ChangelogSection], version: str) -> str:
    """The changelog text of ``version``, as the release's description."""
    index = _section_index(sections, version)
    return "" if index is None else sections[index].body.strip() + "\n"


def is_prerelease(version: str) -> bool:
    """Whether a PEP 440 version is an alpha, beta, release candidate or development release."""
    return _PRERELEASE.search(version) is not None


def check(
    tag: str, root: Path, artifacts: Path | None = None
) -> tuple[Project, str, list[ChangelogSection]]:
    """Every check of ``tag``; raises ReleaseError with all problems found."""
    try:
        projects = discover(root)
    except ProjectError as exc:
        raise ReleaseError(tag, [str(exc)]) from exc
    project, version = parse_tag(tag, projects)
    try:
        sections = read_changelog(root, project)
    except ProjectError as exc:
        raise ReleaseError(tag, [str(exc)]) from exc
    problems = tag_problems(project, version, sections)
    if artifacts is not None:
        names = sorted(p.name for p in artifacts.iterdir()) if artifacts.is_dir() else []
        problems += artifact_problems(project, version, names)
    if problems:
        raise ReleaseError(tag, problems)
    return project, version, sections


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: check, optionally write notes, print the outputs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("tag", help="release tag, e.g. ev-schemas-v0.2.0")
    parser.add_argument("--artifacts", type=Path, help="hatch build's output directory to check")
    parser.add_argument("--notes", type=Path, help="write the changelog section to this file")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        project, version, sections = check(args.tag, args.root, args.artifacts)
    except ReleaseError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.notes is not None:
        args.notes.write_text(release_notes(sections, version), encoding="utf-8")
    print(f"name={project.name}")
    print(f"version={version}")
    print(f"path={project.path.as_posix()}")
    print(f"prerelease={str(is_prerelease(version)).lower()}")
    return 0


def _section_index(sections: Sequence[ChangelogSection], version: str) -> int | None:
    return next((i for i, s in enumerate(sections) if s.version == version), None)


if __name__ == "__main__":
    sys.exit(main())
