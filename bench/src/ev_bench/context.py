"""What every stage shares: the sandbox, where Redis is, where logs and profiles go."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ev_bench.profiling import Entry, Profiler
from ev_bench.sandbox import Sandbox

log = logging.getLogger("ev_bench")


@dataclass
class RunContext:
    """The run's shared state. ``profile_dir`` None means no profiling."""

    sandbox: Sandbox
    redis_url: str
    log_dir: Path
    profile_dir: Path | None = None
    #: Extra environment of every consumer process (tuning experiments, e.g. CONSUMER_BATCH_MS).
    consumer_env: dict[str, str] = field(default_factory=dict)
    profiles: dict[str, list[Entry]] = field(default_factory=dict)
    #: time.monotonic() by which the run should be done (``--budget-minutes``).
    deadline: float = math.inf
    #: Seconds the stages after the current one are expected to take (set by the CLI).
    reserved_after: float = 0.0

    def time_left(self) -> float:
        """Seconds of the budget left for the current stage, the later ones' share set aside."""
        return self.deadline - time.monotonic() - self.reserved_after

    def say(self, message: str) -> None:
        """Progress on stderr, so stdout carries only the table."""
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def profiled(
        self, name: str, pid: int, *, within: str | tuple[str, ...] | None = None
    ) -> Iterator[None]:
        """Sample process ``pid`` with py-spy meanwhile, when profiling is on.

        ``within`` keeps only stacks through a frame containing that text (e.g. the consume
        loop, leaving out start-up imports).
        """
        if self.profile_dir is None:
            yield
            return
        profiler = Profiler(name, pid, self.profile_dir)
        try:
            yield
        finally:
            self.profiles[name] = profiler.stop(within=within)
