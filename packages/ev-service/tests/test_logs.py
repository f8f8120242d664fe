"""Log output: JSON lines with the extra fields, or text at a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ev_service.logs import configure_logging, wants_json


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers (pytest's included): put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_moved_aside() -> None:
    logging.getLogger("ev_consumer.pipeline").info(
        "reading moved aside",
        extra={"routing_key": "ev.sensor.speed", "message_id": "m-1", "reason": 'bad "unit"'},
    )


@pytest.mark.usefixtures("root_logging")
def test_json_is_one_object_per_line_with_the_extras() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    log_moved_aside()
    logging.getLogger("ev_consumer").debug("below the level")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert list(event)[:4] == ["timestamp", "level", "logger", "message"]
    assert event["timestamp"].endswith("+00:00")
    assert event["level"] == "INFO"
    assert event["logger"] == "ev_consumer.pipeline"
    assert event["message"] == "reading moved aside"
    assert event["routing_key"] == "ev.sensor.speed"
    assert event["message_id"] == "m-1"
    assert event["reason"] == 'bad "unit"'


@pytest.mark.usefixtures("root_logging")
def test_json_carries_the_traceback_in_one_line() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("ev_consumer").exception("batch failed")
    (line,) = out.getvalue().splitlines()
    event = json.loads(line)
    assert event["level"] == "ERROR"
    assert "ValueError: boom" in event["exception"]


@pytest.mark.usefixtures("root_logging")
def test_text_shows_the_extras_after_the_message() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", out)
    log_moved_aside()
    line = out.getvalue().rstrip("\n")
    assert "INFO ev_consumer.pipeline: reading moved aside" in line
    assert line.endswith("routing_key='ev.sensor.speed' message_id='m-1' reason='bad \"unit\"'")


def test_auto_is_text_at_a_terminal_and_json_elsewhere() -> None:
    assert not wants_json("auto", Terminal())
    assert wants_json("auto", io.StringIO())
    assert wants_json("json", Terminal())
    assert not wants_json("text", io.StringIO())
