"""Log output: one JSON object per line for log pipelines, plain lines for a person at a terminal.

``LOG_FORMAT=auto`` (the default) picks text when stderr is a terminal and JSON otherwise. A JSON
line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then the record's
extra fields and ``exception`` with the traceback when there is one; uvicorn's access lines also
carry ``client``, ``method``, ``path`` and ``status``. The text format shows the extras as
``key='value'``. ``python -m ev_api`` configures this for uvicorn's loggers too.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["auto", "json", "text"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# "timestamp" is no record attribute: naming it first only fixes its place in the object; the
# formatter's ``timestamp=True`` fills it in.
JSON_FIELDS = "%(timestamp)s %(levelname)s %(name)s %(message)s"
JSON_RENAMES = {"levelname": "level", "name": "logger", "exc_info": "exception"}
_STANDARD = frozenset([*RESERVED_ATTRS, "message", "asctime"])


class AccessFields(logging.Filter):
    """Copies the arguments of uvicorn's access line into fields of their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            record.client, record.method, record.path, _, record.status = args
        return True


_ACCESS_FIELDS = AccessFields()


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


def configure_logging(level: str, log_format: LogFormat, stream: TextIO | None = None) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("uvicorn.access")
    if wants_json(log_format, stream):
        handler.setFormatter(json_formatter())
        access.addFilter(_ACCESS_FIELDS)  # once: a filter already there is not added again
    else:
        handler.setFormatter(TextFormatter(TEXT_FORMAT))  # the line itself says it all
        access.removeFilter(_ACCESS_FIELDS)
    root = logging.getLogger()
    for previous in root.handlers[:]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
