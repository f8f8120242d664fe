"""Broker fail-over: connect to the first of the configured nodes that answers.

Every client of the broker connects through :func:`connect_first`: the batch consumer, the
publisher's link and the consumer service's queue-depth poller. One place decides which failures
mean "try the next node" (the node is down, unreachable, resets the connection or never answers
the handshake) and which are raised at once because the next node would answer the same (refused
credentials or permissions, a certificate that does not verify, a conflicting topology).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import pika.connection

from ev_messaging.errors import (
    _CONNECT_ERRORS,
    BrokerUnavailable,
    MessagingError,
    NoBrokerAnswered,
    from_pika,
)
from ev_messaging.pika_logs import install_pika_log_filter
from ev_messaging.settings import AmqpSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Opens one node's connection (or anything built on one) from its parameters, e.g.
#: ``pika.BlockingConnection``.
Opener = Callable[[pika.connection.Parameters], T]


def connect_first(
    settings: AmqpSettings,
    opener: Opener[T],
    *,
    start: int = 0,
    client_name: str = "client",
    log: logging.Logger = logger,
) -> tuple[T, int]:
    """What ``opener`` returns for the first URL of ``settings`` that answers, trying them in
    order from the ``start``-th (then round), and that URL's index.

    The node reached is logged at INFO on ``log`` as "``client_name`` connected to URL" (password
    masked), so a service's log says which of its clients moved where. Failures that another node
    would not fix (:class:`AuthenticationFailed`, :class:`TlsVerificationFailed`,
    :class:`TopologyError`, ...) are raised at once; :class:`NoBrokerAnswered` (a
    :class:`BrokerUnavailable`) names every URL tried, with why, when none answers. An
    ``opener`` that fails cleans up after itself.
    """
    # pika logs each failure it raises to us at ERROR, with tracebacks: here it is one line, ours.
    install_pika_log_filter()
    unavailable: list[tuple[str, MessagingError]] = []
    candidates = list(enumerate(zip(settings.parameters(), settings.safe_urls, strict=True)))
    first = start % len(candidates)
    for index, (params, url) in candidates[first:] + candidates[:first]:
        try:
            opened = opener(params)
        except (MessagingError, *_CONNECT_ERRORS) as exc:
            error = from_pika(exc, address=f"{params.host}:{params.port}")
            if not isinstance(error, BrokerUnavailable):
                if error is exc:
                    raise
                raise error from exc
            unavailable.append((url, error))
            continue
        log.info("%s connected to %s", client_name, url)
        return opened, index
    raise NoBrokerAnswered(unavailable)
