"""Figures of a complete run, for the tests of the report and the table."""

from __future__ import annotations

from ev_bench.api import ApiFigures
from ev_bench.cpu import CpuShares
from ev_bench.ingest import IngestFigures
from ev_bench.latency import LatencyFigure
from ev_bench.machine import Machine
from ev_bench.memory import MemoryFigures
from ev_bench.report import Results
from ev_bench.simulator import SimulatorFigures
from ev_bench.stats import Distribution
from ev_bench.wrk import WrkResult

MACHINE = Machine(2, "3.11.7", "3.10.8", "7.0.15", "1.4.4", "8.1.0", "3.5.0", "0.54.0", "0.165.0")


def full_results() -> Results:
    results = Results(date="2026-11-27 09:00Z", machine=MACHINE, load=(1.5, 2.0))
    results.ingest = IngestFigures(
        backlog=100_000,
        naive_backlog=10_000,
        bare_publish=[30_000.0],
        ceiling=[50_000.0, 60_000.0, 70_000.0],
        consumer=[40_000.0, 45_000.0, 50_000.0],
        two_consumers=50_000.0,
        naive=3_000.0,
        cpu={"ev_consumer": CpuShares({"consumer": 0.9})},
    )
    results.latency = [
        LatencyFigure(500, 500, 10, Distribution(100, 5.0, 9.0, 12.0), 0, None),
        LatencyFigure(2000, 1990, 10, Distribution(400, 6.0, 25.0, 40.0), 1, None),
        LatencyFigure(36_000, 20_000, 1, None, 5, None),
    ]
    results.api = ApiFigures(connections=32, seconds=10, pinned=True)
    results.api.results = {
        "bare": WrkResult(10_000, 2.0, 4.0, 0),
        "latest": WrkResult(7_500, 3.0, 7.0, 0),
    }
    results.memory = MemoryFigures(100_000, 1_300_000, 20_000.0, True, 1000, 500, 10)
    results.simulator = SimulatorFigures(40_000, 30_000.0, 24_000.0, 28_000.0)
    return results
