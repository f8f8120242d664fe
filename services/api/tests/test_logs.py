"""Log output: JSON lines (uvicorn's access lines with fields of their own), or text at a tty."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ev_api.logs import configure_logging, wants_json


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers (pytest's included): put them back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    access_filters = logging.getLogger("uvicorn.access").filters[:]
    error_filters = logging.getLogger("uvicorn.error").filters[:]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("uvicorn.access").filters[:] = access_filters
    logging.getLogger("uvicorn.error").filters[:] = error_filters


def log_access() -> None:
    # As uvicorn's httptools and h11 protocols log each answered request.
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/health", "1.1", 200
    )


def test_json_lines_with_the_access_fields() -> None:
    out = io.StringIO()
    configure_logging("info", "json", out)
    log_access()
    logging.getLogger("ev_api.errors").warning("storage", extra={"sensor_id": "ev_001"})
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["logger"] == "uvicorn.access"
    assert first["message"] == '127.0.0.1:5000 - "GET /health HTTP/1.1" 200'
    assert (first["client"], first["method"], first["path"], first["status"]) == (
        "127.0.0.1:5000",
        "GET",
        "/health",
        200,
    )
    assert list(second)[:4] == ["timestamp", "level", "logger", "message"]
    assert second["level"] == "WARNING"
    assert second["sensor_id"] == "ev_001"


def test_text_keeps_uvicorns_line_as_it_is() -> None:
    out = io.StringIO()
    configure_logging("info", "text", out)
    log_access()
    line = out.getvalue().rstrip("\n")
    assert line.endswith('INFO uvicorn.access: 127.0.0.1:5000 - "GET /health HTTP/1.1" 200')


def test_auto_is_text_at_a_terminal_and_json_elsewhere() -> None:
    assert not wants_json("auto", Terminal())
    assert wants_json("auto", io.StringIO())


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_api_keys_in_query_strings_are_masked_everywhere(log_format: str) -> None:
    out = io.StringIO()
    configure_logging("info", log_format, out)  # type: ignore[arg-type]
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws/sensor/a?api_key=s3cret-1&x=1"
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/a?%61pi%5Fkey=s3cret-2", "1.1", 401
    )
    try:
        raise ValueError("bad url /a?API_KEY=s3cret-3")
    except ValueError:
        logging.getLogger("ev_api").exception("failed")
    text = out.getvalue()
    assert "s3cret" not in text
    for masked in ("a?api_key=***&x=1", "/a?%61pi%5Fkey=***", "/a?API_KEY=***"):
        assert masked in text
    if log_format == "json":
        assert all(json.loads(line) for line in text.splitlines())  # still valid JSON


def test_websocket_handshake_lines_follow_the_access_log_switch() -> None:
    out = io.StringIO()
    configure_logging("info", "text", out, access_log=False)
    error = logging.getLogger("uvicorn.error")
    error.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws/sensor/a")
    error.info("Application startup complete.")
    assert "WebSocket" not in out.getvalue()
    assert "startup complete" in out.getvalue()
    configure_logging("info", "text", out, access_log=True)
    error.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", "/ws/sensor/b")
    assert "/ws/sensor/b" in out.getvalue()
