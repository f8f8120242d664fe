from __future__ import annotations

from pathlib import Path

import pytest

from ev_bench.profiling import format_entries, parse_collapsed, short_frame, top_entries

ROOT = "<module> (/venv/lib/app/main.py:1);"
RUN = ROOT + "run (/venv/lib/app/loop.py:10);"
RAW = (
    f"{RUN}parse (/x/ev_schemas/validation.py:57) 30\n"
    f"{RUN}send (/x/redis/connection.py:9) 50\n"
    f"{ROOT}import_all (/venv/lib/app/boot.py:3) 20\n"
)


def test_short_frame_keeps_two_path_parts() -> None:
    assert short_frame("parse (/x/y/ev_schemas/validation.py:57)") == (
        "parse (ev_schemas/validation.py:57)"
    )
    assert short_frame("<idle>") == "<idle>"


def test_parse_collapsed_counts_self_and_total() -> None:
    own, total, samples = parse_collapsed(RAW.splitlines())
    assert samples == 100
    assert own["send (redis/connection.py:9)"] == 50
    assert total["run (app/loop.py:10)"] == 80
    assert total["<module> (app/main.py:1)"] == 100


def test_parse_collapsed_within_keeps_only_stacks_through_a_frame() -> None:
    own, _total, samples = parse_collapsed(RAW.splitlines(), within="run (")
    assert samples == 80
    assert "import_all (app/boot.py:3)" not in own


def test_parse_collapsed_counts_a_recursive_frame_once() -> None:
    _own, total, samples = parse_collapsed(["f (a/b.py:1);f (a/b.py:1) 7"])
    assert (samples, total["f (a/b.py:1)"]) == (7, 7)


def test_top_entries_orders_by_self_share(tmp_path: Path) -> None:
    path = tmp_path / "raw.txt"
    path.write_text(RAW)
    entries = top_entries(path, limit=2)
    assert [e.frame for e in entries] == [
        "send (redis/connection.py:9)",
        "parse (ev_schemas/validation.py:57)",
    ]
    assert entries[0].self_share == pytest.approx(0.5)
    assert "| 50.0% | 50.0% | `send (redis/connection.py:9)` |" in format_entries("t", entries)


def test_parse_collapsed_within_several_markers_keeps_each_threads_stacks() -> None:
    lines = [
        "main (m.py:1);consume (c.py:2);poll (p.py:3) 5",
        "worker (t.py:1);handle (h.py:2);parse (v.py:3) 3",
        "main (m.py:1);import (i.py:1) 7",
    ]
    own, _total, samples = parse_collapsed(lines, within=("consume (", "handle ("))
    assert samples == 8
    assert own == {"poll (p.py:3)": 5, "parse (v.py:3)": 3}
