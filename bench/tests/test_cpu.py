from __future__ import annotations

import os
import time

from ev_bench.cpu import CpuMeter, CpuShares, cpu_seconds, pids_named


def test_cpu_seconds_of_this_process_grows_while_it_works() -> None:
    before = cpu_seconds(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    after = cpu_seconds(os.getpid())
    assert after is not None
    assert after >= before


def test_cpu_seconds_of_a_missing_process_is_none() -> None:
    assert cpu_seconds(2**22 + 12345) is None


def test_meter_reports_share_of_a_busy_process() -> None:
    meter = CpuMeter({"me": [os.getpid()], "nobody": []})
    meter.start()
    deadline = time.perf_counter() + 0.2
    while time.perf_counter() < deadline:
        pass
    shares = meter.stop().shares
    assert set(shares) == {"me"}  # empty groups are left out
    assert 0.0 < shares["me"] <= 1.5


def test_pids_named_finds_nothing_for_an_unknown_name() -> None:
    assert pids_named(["no-such-process-name"]) == []


def test_shares_text() -> None:
    assert CpuShares({"a": 0.5, "b": 1.0}).text() == "a 0.50, b 1.00"
