"""Where the cores went during a measurement: CPU time of the client, the broker and Redis.

On 2 cores shared by broker, Redis and clients, a throughput figure means little without it: it
tells a consumer that waits (round trips, batching) from one that is out of CPU, and whether a
second process can add anything. Read from ``/proc`` (Linux); elsewhere the meter stays empty.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
#: Process names of the servers, as /proc/<pid>/comm shows them.
SERVERS = {"broker": ("beam.smp",), "redis": ("redis-server",)}


def _ticks_per_s() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far; None if it is gone or unreadable."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _ticks_per_s()


def pids_named(names: Iterable[str]) -> list[int]:
    """Pids of the processes whose command name is one of ``names``."""
    wanted = set(names)
    found: list[int] = []
    if not _PROC.is_dir():
        return found
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in wanted:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@dataclass(frozen=True, slots=True)
class CpuShares:
    """Cores used per group over a window (1.0 = one core busy the whole time)."""

    shares: Mapping[str, float]

    def text(self) -> str:
        return ", ".join(f"{name} {share:.2f}" for name, share in self.shares.items())


class CpuMeter:
    """CPU time of groups of processes between :meth:`start` and :meth:`stop`."""

    def __init__(self, groups: Mapping[str, Iterable[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._start: dict[str, float] = {}
        self._started_at = 0.0

    @classmethod
    def with_servers(cls, clients: Mapping[str, Iterable[int]]) -> CpuMeter:
        """``clients`` plus the broker and Redis of this machine (when they run here)."""
        groups = {name: list(pids) for name, pids in clients.items()}
        for name, names in SERVERS.items():
            groups[name] = pids_named(names)
        return cls(groups)

    def _total(self, pids: list[int]) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in pids)

    def start(self) -> None:
        self._started_at = time.perf_counter()
        self._start = {name: self._total(pids) for name, pids in self._groups.items()}

    def stop(self) -> CpuShares:
        elapsed = time.perf_counter() - self._started_at
        if elapsed <= 0:
            return CpuShares({})
        return CpuShares(
            {
                name: (self._total(pids) - self._start[name]) / elapsed
                for name, pids in self._groups.items()
                if pids
            }
        )
