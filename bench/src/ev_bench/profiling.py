"""Sampling profiles of the services while they are measured (py-spy), summarised as top entries.

py-spy attaches to a running process by pid and samples it from outside (``--nonblocking``: the
target is never paused), so the service runs its real code path. Its raw output is one collapsed
stack per line (``outer;...;leaf count``); the summary is the share of samples per function, by
itself (self) and with what it calls (total).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ev_bench.errors import BenchError

SAMPLE_RATE = 200


@dataclass(frozen=True, slots=True)
class Entry:
    """One function's share of the samples."""

    frame: str
    self_share: float
    total_share: float


def parse_collapsed(
    lines: Iterable[str], within: str | tuple[str, ...] | None = None
) -> tuple[Counter[str], Counter[str], int]:
    """(self samples per frame, total samples per frame, all samples) of collapsed stacks;
    with ``within``, only of the stacks that pass through a frame containing that text (or one
    of those texts: a process's threads have different stacks)."""
    markers = (within,) if isinstance(within, str) else within
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if markers is not None and not any(marker in stack for marker in markers):
            continue
        count = int(count_text)
        frames = [short_frame(frame) for frame in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    return own, total, samples


def short_frame(frame: str) -> str:
    """``name (…/pkg/module.py:12)`` with only the last two path parts, readable in a table."""
    name, sep, where = frame.partition(" (")
    if not sep:
        return frame
    path, _, line = where.rstrip(")").rpartition(":")
    tail = "/".join(Path(path).parts[-2:]) if path else where.rstrip(")")
    return f"{name} ({tail}:{line})" if line else f"{name} ({tail})"


def top_entries(
    path: Path, limit: int = 12, within: str | tuple[str, ...] | None = None
) -> list[Entry]:
    """The ``limit`` functions with the most samples of their own, from a raw py-spy file."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        own, total, samples = parse_collapsed(lines, within)
    if not samples:
        return []
    return [
        Entry(frame, count / samples, total[frame] / samples)
        for frame, count in own.most_common(limit)
    ]


def format_entries(title: str, entries: list[Entry]) -> str:
    """A Markdown table of ``entries`` under ``title``."""
    lines = [f"**{title}**", "", "| self | total | function |", "| ---: | ---: | --- |"]
    for entry in entries:
        frame = entry.frame.replace("|", "\\|")
        lines.append(f"| {entry.self_share:.1%} | {entry.total_share:.1%} | `{frame}` |")
    return "\n".join(lines)


class Profiler:
    """``py-spy record`` attached to ``pid`` until :meth:`stop`; writes ``<out_dir>/<name>.txt``."""

    def __init__(self, name: str, pid: int, out_dir: Path) -> None:
        # The harness's own venv first: py-spy is one of its dependencies.
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if exe is None:
            raise BenchError("--profile needs py-spy: pip install py-spy")
        self.name = name
        self.path = out_dir / f"{name}.txt"
        self._log = (out_dir / f"{name}.py-spy.log").open("wb")
        argv = [
            exe, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE), "--function",
            "--nonblocking", "--format", "raw", "--output", str(self.path),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv
            argv, stdout=self._log, stderr=subprocess.STDOUT
        )

    def stop(self, within: str | tuple[str, ...] | None = None) -> list[Entry]:
        """Stop sampling (SIGINT makes py-spy write its file) and summarise the profile."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
        if not self.path.exists():
            return []
        return top_entries(self.path, within=within)
