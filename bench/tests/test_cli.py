from __future__ import annotations

import argparse

import pytest

from ev_bench.cli import STAGES, _validate, build_parser
from ev_bench.errors import BenchError


def test_defaults_run_every_stage_with_the_issue_sizes() -> None:
    args = build_parser().parse_args([])
    assert args.only is None
    assert args.skip == []
    assert args.backlog >= 100_000
    assert args.memory_readings >= 100_000
    assert args.e2e_rates == [500.0, 2000.0]


def test_stage_lists_are_checked() -> None:
    args = build_parser().parse_args(["--only", "memory,api", "--skip", "api"])
    assert args.only == ["memory", "api"]
    assert _validate(args) == ["memory"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--only", "nonsense"])


def test_consumer_env_pairs() -> None:
    args = build_parser().parse_args(["--consumer-env", "CONSUMER_BATCH_MS=5"])
    assert dict(args.consumer_env) == {"CONSUMER_BATCH_MS": "5"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--consumer-env", "novalue"])


def test_nothing_left_to_run_is_an_error() -> None:
    args = build_parser().parse_args(["--skip", ",".join(STAGES)])
    with pytest.raises(BenchError, match="no stage"):
        _validate(args)


def test_json_option_is_a_path(tmp_path: object) -> None:
    args = build_parser().parse_args(["--json", "out.json"])
    assert isinstance(args, argparse.Namespace)
    assert str(args.json) == "out.json"
