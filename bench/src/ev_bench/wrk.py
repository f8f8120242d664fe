"""Running wrk (HTTP load at a fixed concurrency) and reading its report.

wrk is a C load generator: on its own core it can drive far more requests than one uvicorn
worker serves, so the figures are the server's, not the client's. A Python load generator would
need about as much CPU as the server it measures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from ev_bench.errors import BenchError
from ev_bench.processes import pinned

INSTALL_HINT = (
    "the API stage needs wrk: on Debian or Ubuntu `apt-get update && apt-get install -y wrk` "
    "(or skip the stage with --skip api)"
)

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"


@dataclass(frozen=True, slots=True)
class WrkResult:
    """Requests per second, latency percentiles in ms, and requests that went wrong."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def require_wrk() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        raise BenchError(INSTALL_HINT)
    return exe


def to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse(output: str) -> WrkResult:
    """The figures of ``wrk --latency`` output; :class:`BenchError` if they are not there."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p50 = re.search(rf"^\s+50%\s+{_DURATION}", output, re.MULTILINE)
    p99 = re.search(rf"^\s+99%\s+{_DURATION}", output, re.MULTILINE)
    if rps is None or p50 is None or p99 is None:
        raise BenchError(f"unexpected wrk output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket:
        errors += sum(int(part) for part in socket.groups())
    return WrkResult(
        requests_per_s=float(rps.group(1)),
        p50_ms=to_ms(*p50.groups()),
        p99_ms=to_ms(*p99.groups()),
        errors=errors,
    )


def run_wrk(
    url: str, *, seconds: float, connections: int, core: int | None, timeout_s: float = 5.0
) -> WrkResult:
    """One wrk run (one thread, on ``core`` when given) against ``url``."""
    argv = pinned(
        [
            require_wrk(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s:g}s", "--latency", url,
        ],
        core,
    )  # fmt: skip
    done = subprocess.run(  # noqa: S603 - fixed argv
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return parse(done.stdout)
