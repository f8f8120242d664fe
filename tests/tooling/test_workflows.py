"""The workflows agree with the repository: one release tag pattern per released project."""

from __future__ import annotations

from pathlib import Path

import yaml
from projects import discover

ROOT = Path(__file__).resolve().parents[2]


def test_release_workflow_has_a_tag_pattern_per_released_project() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    triggers = workflow.get("on", workflow.get(True))

    patterns = triggers["push"]["tags"]

    released = [project.name for project in discover(ROOT) if project.released]
    assert sorted(patterns) == sorted(f"{name}-v*" for name in released)
