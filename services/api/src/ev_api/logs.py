"""Log output: one JSON object per line for log pipelines, plain lines for a person at a terminal.

``LOG_FORMAT=auto`` (the default) picks text when stderr is a terminal and JSON otherwise. A JSON
line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then the record's
extra fields and ``exception`` with the traceback when there is one; uvicorn's access lines also
carry ``client``, ``method``, ``path`` and ``status``. The text format shows the extras as
``key='value'``. ``python -m ev_api`` configures this for uvicorn's loggers too.

Every line, whatever logged it, has the value of an ``api_key=`` query parameter replaced by
``***``: uvicorn writes a WebSocket's URL, query string included, into its handshake line, and the
key is checked only after that (right and wrong keys alike must never reach a log).
"""

from __future__ import annotations

import logging
import re
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
#: Query parameters whose values never reach a log line.
SECRET_QUERY_PARAMS = ("api_key",)
MASK = "***"


def _param_pattern(name: str) -> str:
    # Starlette percent-decodes parameter names (``%61pi_key=`` is ``api_key=``): any character
    # may come encoded. (``x_api_key=`` is masked too: more than needed is harmless.)
    chars = "".join(f"(?:{re.escape(c)}|%{ord(c):02x})" for c in name)
    return f"{chars}="


# The value ends where a query string, a quoted string or a line would, or at a backslash (a JSON
# escape; keys are URL-safe, so a backslash can end only a wrong one).
_SECRET_VALUE = re.compile(
    f"({'|'.join(_param_pattern(name) for name in SECRET_QUERY_PARAMS)})[^&\\s\"'#\\\\]*",
    re.IGNORECASE,
)
# uvicorn logs each WebSocket handshake ("[accepted]", 403, ...) on its error logger: an access
# line in all but name.
_WEBSOCKET_ACCESS = '%s - "WebSocket %s"'


def mask_secrets(line: str) -> str:
    """``line`` with the value of every ``api_key=`` query parameter replaced by ``***``."""
    if "=" not in line:
        return line
    return _SECRET_VALUE.sub(rf"\g<1>{MASK}", line)


class SecretMasking(logging.Formatter):
    """Formats with ``inner``, then masks secret query parameters in the whole output
    (message, extra fields and traceback alike)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(self.inner.format(record))


class WebSocketAccessLines(logging.Filter):
    """Drops uvicorn's line per WebSocket handshake (``API_ACCESS_LOG=false``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_WEBSOCKET_ACCESS))


class AccessFields(logging.Filter):
    """Copies the arguments of uvicorn's access line into fields of their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            record.client, record.method, record.path, _, record.status = args
        return True


_ACCESS_FIELDS = AccessFields()
_WEBSOCKET_ACCESS_LINES = WebSocketAccessLines()


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
    level: str, log_format: LogFormat, stream: TextIO | None = None, *, access_log: bool = True
) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``,
    secrets masked; without ``access_log``, uvicorn's WebSocket handshake lines are dropped too."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    access = logging.getLogger("uvicorn.access")
    if wants_json(log_format, stream):
        handler.setFormatter(SecretMasking(json_formatter()))
        access.addFilter(_ACCESS_FIELDS)  # once: a filter already there is not added again
    else:
        handler.setFormatter(SecretMasking(TextFormatter(TEXT_FORMAT)))  # the line says it all
        access.removeFilter(_ACCESS_FIELDS)
    uvicorn_error = logging.getLogger("uvicorn.error")
    if access_log:
        uvicorn_error.removeFilter(_WEBSOCKET_ACCESS_LINES)
    else:
        uvicorn_error.addFilter(_WEBSOCKET_ACCESS_LINES)
    root = logging.getLogger()
    for previous in root.handlers[:]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
