"""Turn ``nox -l --json`` into the GitHub Actions job matrices, so CI never copies the session list.

    nox -l --json | python scripts/ci_matrix.py >> "$GITHUB_OUTPUT"

Prints two outputs, each a JSON list of ``{"session", "python"}``: ``services``, the sessions
tagged ``services`` (they need RabbitMQ and Redis, so their job starts both), and
``standalone``, every other selected session. Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

SERVICES_TAG = "services"
FALLBACK_PYTHON = "3.11"


class MatrixError(Exception):
    """The listing cannot become a matrix."""


def matrices(listing: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """The ``services`` and ``standalone`` matrices of a ``nox -l --json`` listing."""
    if not listing:
        raise MatrixError("nox selected no session")
    split: dict[str, list[dict[str, str]]] = {SERVICES_TAG: [], "standalone": []}
    for entry in listing:
        python = entry.get("python")
        if isinstance(python, list):
            raise MatrixError(f"{entry['session']}: one Python per session expected, got {python}")
        group = SERVICES_TAG if SERVICES_TAG in entry.get("tags", []) else "standalone"
        split[group].append({"session": entry["session"], "python": python or FALLBACK_PYTHON})
    return split


def main() -> int:
    """Command line entry: read the listing on stdin, print ``name=json`` lines."""
    try:
        result = matrices(json.load(sys.stdin))
    except (MatrixError, ValueError, KeyError) as exc:
        print(f"cannot build the CI matrix: {exc}", file=sys.stderr)
        return 1
    for name, entries in result.items():
        print(f"{name}={json.dumps(entries, separators=(',', ':'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
