"""The fault tests' figures: collected per scenario into ``.reports/faults.json``, and rendered as
the Markdown table of docs/reliability.md (``python -m tests.faults.report``).

Scenarios not run this time keep their previous entry, each with the time it was measured.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.faults.accounting import Figures

REPORT = Path(__file__).resolve().parents[2] / ".reports" / "faults.json"


class FaultReport:
    """Figures of this session, merged into the report file by ``write()``."""

    def __init__(self, path: Path = REPORT) -> None:
        self.path = path
        self.scenarios: dict[str, dict[str, Any]] = {}

    def record(self, figures: Figures) -> None:
        entry = figures.as_dict()
        entry["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.scenarios[figures.scenario] = entry

    def write(self) -> None:
        if not self.scenarios:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous: dict[str, Any] = {}
        if self.path.exists():
            try:
                previous = json.loads(self.path.read_text(encoding="utf-8")).get("scenarios", {})
            except (ValueError, AttributeError):
                previous = {}
        merged = {**previous, **self.scenarios}
        document = {
            "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scenarios": dict(sorted(merged.items())),
        }
        self.path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def markdown(document: dict[str, Any]) -> str:
    """The table of docs/reliability.md."""
    rows = [
        "| scenario | faults | published | stored | duplicates absorbed | moved aside | lost "
        "| duplicated | recovery (max s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, entry in document["scenarios"].items():
        recovery = entry.get("max_recovery_s")
        rows.append(
            f"| {name} | {entry['faults']} | {entry['published']} | {entry['stored']} "
            f"| {entry['duplicates_absorbed']} | {entry['moved_aside']} | {entry['lost']} "
            f"| {entry['duplicated']} | {'-' if recovery is None else f'{recovery:.2f}'} |"
        )
    return "\n".join(rows)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPORT
    print(markdown(json.loads(path.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
