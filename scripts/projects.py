"""The in-repo projects as release tooling sees them: name, version, dependencies and changelog.

Standard library only, so a release workflow can run the scripts that import it with a bare
``python``. The version is read the way hatchling's regex source reads it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Where projects live, relative to the repository root. Only the first two are released.
RELEASED_GLOBS = ("packages/*/pyproject.toml", "services/*/pyproject.toml")
UNRELEASED_GLOBS = ("bench/pyproject.toml",)

# hatchling's default pattern for [tool.hatch.version] path (hatchling/version/core.py).
HATCH_VERSION_PATTERN = r'(?i)^(__version__|VERSION) *= *([\'"])v?(?P<version>.+?)\2'

# A changelog section heading: "## 0.2.0", "## 0.2.0 (2026-12-01)", "## [0.2.0] - ...",
# "## 0.2.0 (unreleased)", or a version-less "## Unreleased".
_HEADING = re.compile(r"^##\s+(?P<title>.+?)\s*$")
_VERSIONED_TITLE = re.compile(r"^\[?v?(?P<version>\d[^\s\]()]*)\]?(?P<rest>.*)$")


class ProjectError(Exception):
    """A project's metadata or changelog cannot be read as the release tooling expects."""


@dataclass(frozen=True)
class ChangelogSection:
    """One ``## ...`` section of a CHANGELOG.md: its version (None for "Unreleased") and text."""

    version: str | None
    title: str
    body: str

    @property
    def unreleased(self) -> bool:
        """Whether the heading says the section is not released yet."""
        return "unreleased" in self.title.lower()


@dataclass(frozen=True)
class Project:
    """A hatchling project of the repository (a package, a service or the bench)."""

    path: Path
    """Directory, relative to the repository root."""
    name: str
    """Distribution name, e.g. ``ev-schemas``."""
    version: str
    import_name: str
    """Top-level module the wheel ships, e.g. ``ev_schemas``."""
    dependencies: tuple[str, ...]
    """``[project.dependencies]`` and every ``[project.optional-dependencies]`` entry."""
    released: bool


def load_project(root: Path, pyproject: Path, *, released: bool) -> Project:
    """Read the project whose ``pyproject.toml`` is ``pyproject`` (absolute or under ``root``)."""
    pyproject = root / pyproject
    directory = pyproject.parent
    with pyproject.open("rb") as file:
        data = tomllib.load(file)
    meta = data.get("project", {})
    if "name" not in meta:
        raise ProjectError(f"{pyproject.relative_to(root)}: no [project] name")
    hatch = data.get("tool", {}).get("hatch", {})
    dependencies = list(meta.get("dependencies", []))
    for extra in meta.get("optional-dependencies", {}).values():
        dependencies += extra
    return Project(
        path=directory.relative_to(root),
        name=meta["name"],
        version=_version(root, directory, meta, hatch),
        import_name=_import_name(hatch, meta["name"]),
        dependencies=tuple(dependencies),
        released=released,
    )


def discover(root: Path) -> list[Project]:
    """Every project of the repository, released ones first, each group sorted by path."""
    found = []
    for globs, released in ((RELEASED_GLOBS, True), (UNRELEASED_GLOBS, False)):
        paths = sorted(path for pattern in globs for path in root.glob(pattern))
        found += [load_project(root, path, released=released) for path in paths]
    return found


def changelog_sections(text: str) -> list[ChangelogSection]:
    """The level-2 sections of a changelog, in file order."""
    sections: list[ChangelogSection] = []
    title: str | None = None
    lines: list[str] = []

    def close() -> None:
        if title is not None:
            versioned = _VERSIONED_TITLE.match(title)
            version = versioned["version"] if versioned else None
            sections.append(ChangelogSection(version, title, "\n".join(lines).strip("\n")))

    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            close()
            title, lines = heading["title"], []
        elif title is not None:
            lines.append(line)
    close()
    return sections


def read_changelog(root: Path, project: Project) -> list[ChangelogSection]:
    """The sections of the project's CHANGELOG.md."""
    path = root / project.path / "CHANGELOG.md"
    if not path.is_file():
        raise ProjectError(f"{project.name}: no CHANGELOG.md in {project.path}")
    return changelog_sections(path.read_text(encoding="utf-8"))


def _version(root: Path, directory: Path, meta: dict[str, Any], hatch: dict[str, Any]) -> str:
    if "version" in meta:
        return str(meta["version"])
    config = hatch.get("version", {})
    if "version" not in meta.get("dynamic", []) or "path" not in config:
        raise ProjectError(
            f"{directory.relative_to(root)}: neither a static version nor [tool.hatch.version] path"
        )
    source = directory / config["path"]
    pattern = config.get("pattern", True)
    found = re.search(
        HATCH_VERSION_PATTERN if pattern is True else pattern,
        source.read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    if found is None:
        raise ProjectError(f"{source.relative_to(root)}: no version found")
    return found["version"]


def _import_name(hatch: dict[str, Any], name: str) -> str:
    packages = hatch.get("build", {}).get("targets", {}).get("wheel", {}).get("packages", [])
    if len(packages) == 1:
        return Path(packages[0]).name
    # hatchling's own default: the distribution name as a module name.
    return name.replace("-", "_")
