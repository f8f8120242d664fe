"""Log output: one JSON object per line for log pipelines, plain lines for a person at a terminal.

``LOG_FORMAT=auto`` (the default) picks text when stderr is a terminal and JSON otherwise. A JSON
line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then the record's
extra fields (``sensor_id``, ``message_id``, ``routing_key``, ``reason``, ...) and ``exception``
with the traceback when there is one. The text format shows the same extras as ``key='value'``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from ev_service.shared import LogFormat

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# "timestamp" is no record attribute: naming it first only fixes its place in the object; the
# formatter's ``timestamp=True`` fills it in.
JSON_FIELDS = "%(timestamp)s %(levelname)s %(name)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger", "exc_info": "exception"}
_STANDARD = frozenset([*RESERVED_ATTRS, "message", "asctime"])
#: Libraries that narrate every connect at INFO: raised to WARNING unless the level is DEBUG
#: (ev-messaging logs the node reached, and moves pika's records of handled failures to DEBUG).
CHATTY_LIBRARIES = ("pika",)


class TextFormatter(logging.Formatter):
    """The classic one-line format, followed by the record's extra fields."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extras = [
            f"{key}={value!r}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        return " ".join([line, *extras])


def json_formatter() -> logging.Formatter:
    """One JSON object per record, extras included."""
    return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMES, timestamp=True)


def wants_json(log_format: LogFormat, stream: TextIO) -> bool:
    """JSON unless asked for text, or ``auto`` and ``stream`` is a terminal."""
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"


def configure_logging(
    level: str,
    log_format: LogFormat,
    stream: TextIO | None = None,
    *,
    wrap: Callable[[logging.Formatter], logging.Formatter] | None = None,
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``;
    ``wrap`` may decorate the formatter (the API masks secrets with it). Returns the handler."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    formatter = json_formatter() if wants_json(log_format, stream) else TextFormatter(TEXT_FORMAT)
    handler.setFormatter(formatter if wrap is None else wrap(formatter))
    root = logging.getLogger()
    for previous in root.handlers[:]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = logging.WARNING if root.getEffectiveLevel() > logging.DEBUG else logging.NOTSET
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    return handler
