"""Check that the separately versioned projects of the repository agree with each other.

    python scripts/versions_check.py

Every dependency on an in-repo distribution must be a compatible range (not ``==``, not
unbounded, not a URL) that admits the sibling's in-repo version, so what is tested together here
can be installed together from an index; every CHANGELOG.md must have a section for its project's
current version. Prints one line per project, or every problem, and exits 1 on any.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from projects import ChangelogSection, Project, ProjectError, discover, read_changelog

ROOT = Path(__file__).resolve().parent.parent


def version_problems(projects: Sequence[Project]) -> list[str]:
    """Projects whose version is not a PEP 440 version (hatch would refuse to build them)."""
    problems = []
    for project in projects:
        try:
            Version(project.version)
        except InvalidVersion:
            problems.append(f"{project.name}: {project.version!r} is not a PEP 440 version")
    return problems


def range_problems(projects: Sequence[Project]) -> list[str]:
    """Why a project's declared range for an in-repo sibling is wrong (empty when none is)."""
    versions = {canonicalize_name(p.name): p.version for p in projects}
    problems = []
    for project in projects:
        for line in project.dependencies:
            try:
                requirement = Requirement(line)
            except InvalidRequirement as exc:
                problems.append(f"{project.name}: cannot parse dependency {line!r}: {exc}")
                continue
            sibling = canonicalize_name(requirement.name)
            if sibling not in versions:
                continue
            problem = _sibling_problem(requirement, versions[sibling])
            if problem:
                problems.append(f"{project.name} depends on {line!r}: {problem}")
    return problems


def changelog_problems(project: Project, sections: Sequence[ChangelogSection]) -> list[str]:
    """Why the project's changelog does not cover its current version (empty when it does)."""
    if any(section.version == project.version for section in sections):
        return []
    return [f"{project.path}/CHANGELOG.md has no '## {project.version}' section"]


def main() -> int:
    """Command line entry: check every project, print a summary or the problems."""
    try:
        projects = discover(ROOT)
        problems = version_problems(projects) + range_problems(projects)
        for project in projects:
            problems += changelog_problems(project, read_changelog(ROOT, project))
    except ProjectError as exc:
        problems = [str(exc)]
    if problems:
        print("version check failed:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    for project in projects:
        released = "" if project.released else " (not released)"
        print(f"{project.name} {project.version}: ranges and changelog agree{released}")
    return 0


def _sibling_problem(requirement: Requirement, version: str) -> str | None:
    if requirement.url:
        return "a direct reference; siblings are released separately, use a version range"
    specifiers = list(requirement.specifier)
    if not specifiers:
        return "no version range; use a compatible one, e.g. '~= X.Y'"
    if any(spec.operator in ("==", "===") and "*" not in spec.version for spec in specifiers):
        return "an exact pin between separately released projects; use '~= X.Y'"
    try:
        admitted = requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return None  # reported by version_problems
    if not admitted:
        return f"does not admit the in-repo version {version}"
    return None


if __name__ == "__main__":
    sys.exit(main())
