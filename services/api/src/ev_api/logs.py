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
from typing import TextIO

from ev_service import LogFormat
from ev_service.logs import configure_logging as configure_root
from ev_service.logs import wants_json

__all__ = ["configure_logging", "mask_secrets", "wants_json"]
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


def configure_logging(
    level: str, log_format: LogFormat, stream: TextIO | None = None, *, access_log: bool = True
) -> None:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in ``log_format``,
    secrets masked; without ``access_log``, uvicorn's WebSocket handshake lines are dropped too."""
    stream = sys.stderr if stream is None else stream
    configure_root(level, log_format, stream, wrap=SecretMasking)
    access = logging.getLogger("uvicorn.access")
    if wants_json(log_format, stream):
        access.addFilter(_ACCESS_FIELDS)  # once: a filter already there is not added again
    else:
        access.removeFilter(_ACCESS_FIELDS)  # the text line says it all
    uvicorn_error = logging.getLogger("uvicorn.error")
    if access_log:
        uvicorn_error.removeFilter(_WEBSOCKET_ACCESS_LINES)
    else:
        uvicorn_error.addFilter(_WEBSOCKET_ACCESS_LINES)
