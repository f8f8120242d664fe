"""The heartbeat file: what it is stamped with, and what ``--check`` concludes from its age."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from ev_consumer.heartbeat import Heartbeat, check


def stamp(path: Path, wall_time: float) -> None:
    path.touch()
    os.utime(path, (wall_time, wall_time))


def test_fresh_heartbeat_is_alive(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    stamp(path, 1000.0)
    result = check(path, max_age=60, now=1030.0)
    assert result.alive
    assert result.line == "ev-consumer: alive, heartbeat 30.0 s old"


def test_stale_heartbeat_is_not_alive(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    stamp(path, 1000.0)
    result = check(path, max_age=60, now=1075.5)
    assert not result.alive
    assert "is 75.5 s old (max 60 s)" in result.line
    assert "\n" not in result.line


def test_missing_heartbeat_is_not_alive(tmp_path: Path) -> None:
    result = check(tmp_path / "absent", max_age=60)
    assert not result.alive
    assert "no heartbeat file" in result.line


def test_a_stamp_from_the_future_counts_as_fresh(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    stamp(path, 2000.0)
    assert check(path, max_age=60, now=1000.0).alive


def test_beat_stamps_the_loops_last_activity_not_the_threads(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    stuck_since = time.monotonic() - 120  # the run loop last went round two minutes ago
    Heartbeat(path, lambda: stuck_since, max_age=60).beat()
    assert not check(path, max_age=60).alive
    assert check(path, max_age=300).alive


def test_running_keeps_the_file_fresh_and_removes_it_when_stopped(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    heartbeat = Heartbeat(path, time.monotonic, max_age=60)
    assert heartbeat.interval == 5.0
    with heartbeat.running():
        assert check(path, max_age=60).alive
    assert not path.exists()


def test_interval_shrinks_with_a_small_max_age(tmp_path: Path) -> None:
    assert Heartbeat(tmp_path / "h", time.monotonic, max_age=2).interval == 0.5


def test_an_unwritable_file_is_logged_once_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    heartbeat = Heartbeat(tmp_path / "missing-dir" / "heartbeat", time.monotonic, max_age=60)
    with caplog.at_level(logging.WARNING, logger="ev_consumer.heartbeat"):
        heartbeat.beat()
        heartbeat.beat()
    assert len(caplog.records) == 1
    assert "cannot write the heartbeat file" in caplog.records[0].getMessage()
