"""pika's log records of connection failures that ev-messaging handles, moved down to DEBUG.

pika logs every lost connection and failed connect at ERROR, several times over and with
tracebacks (21-36 lines per broker blip), then raises the same failure to its caller. Where the
caller is ev-messaging, that failure is translated, retried and logged once as a WARNING, so
pika's records are noise: :class:`HandledPikaErrors` makes them DEBUG records (kept, traceback
included, when the pika logger is enabled for DEBUG; dropped otherwise). Everything else pika logs
at WARNING or above passes unchanged: a record is moved down only when it is about connectivity
(it carries a socket or AMQP connection error, or it is one of pika's connect-failure messages
that carry none) or is the broker's 404 closing a channel (a passive declare of a queue that does
not exist yet, a publish to a missing exchange), which the caller gets as an exception too.
"""

from __future__ import annotations

import logging

import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorException

#: What pika raises for a connection that failed or was lost: the caller sees these.
_CONNECTIVITY_ERRORS = (OSError, pika.exceptions.AMQPConnectionError, AMQPConnectorException)
#: pika's connect-failure messages that carry no exception object (their format strings).
_CONNECTIVITY_MESSAGES = frozenset(
    {
        "Socket failed to connect: %s; error=%s (%s)",
        "Socket EOF; %s",
        "Transport indicated EOF.",
    }
)
_CHANNEL_CLOSE = "Received remote Channel.Close (%s): %r on %s"
_NOT_FOUND = 404


class HandledPikaErrors(logging.Filter):
    """A filter for pika's loggers: connection failures the caller handles become DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not _handled(record):
            return True
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return True


def install_pika_log_filter() -> None:
    """Put :class:`HandledPikaErrors` on every pika logger (idempotent).

    A logger's filters see only the records logged to that logger, not those of its children,
    so each of pika's module loggers gets one. ev-messaging's consumer and publisher call this
    when they start; a service that uses pika directly beside them may call it too.
    """
    names = [name for name in list(logging.Logger.manager.loggerDict) if name.startswith("pika.")]
    for name in ["pika", *names]:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, HandledPikaErrors) for existing in logger.filters):
            logger.addFilter(HandledPikaErrors())


def _handled(record: logging.LogRecord) -> bool:
    if record.msg == _CHANNEL_CLOSE:
        return isinstance(record.args, tuple) and record.args[:1] == (_NOT_FOUND,)
    if record.msg in _CONNECTIVITY_MESSAGES:
        return True
    carried: list[object] = [record.exc_info[1]] if record.exc_info else []
    if isinstance(record.args, tuple):
        carried += record.args
    return any(isinstance(item, _CONNECTIVITY_ERRORS) for item in carried)
