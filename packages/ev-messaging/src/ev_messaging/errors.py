"""Errors of ev-messaging: one root, :class:`MessagingError`; pika's exceptions never leak out."""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence

import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorException

# What pika raises for a failed connect or a lost connection, for this package to translate with
# from_pika (callers outside it catch MessagingError): its AMQPError family; connector errors,
# e.g. the whole handshake timing out (AMQPConnectorStackTimeout) on a broker that accepts TCP
# but never answers; socket errors; and a ValueError ("Expected connected socket, but
# getpeername() failed") when a peer accepts the TCP connection and closes it at once, a broker
# or proxy going away, told apart from other ValueErrors by from_pika.
_CONNECT_ERRORS = (pika.exceptions.AMQPError, AMQPConnectorException, OSError, ValueError)
_SOCKET_GONE = "Expected connected socket"
_NOT_FOUND = 404


class MessagingError(Exception):
    """Root of every error this package raises."""


class BrokerUnavailable(MessagingError):
    """No broker could be reached, or a lost connection was not restored in time."""


class NoBrokerAnswered(BrokerUnavailable):
    """None of the configured nodes answered: ``attempts`` holds each URL tried (password masked)
    with the reason it gave, in the order tried."""

    def __init__(self, attempts: Sequence[tuple[str, MessagingError]]) -> None:
        super().__init__(tuple(attempts))
        self.attempts = tuple(attempts)

    def __str__(self) -> str:
        return "; ".join(f"{url}: {error}" for url, error in self.attempts)


class AuthenticationFailed(MessagingError):
    """The broker refused the credentials or the virtual host; retrying will not help."""


class TlsVerificationFailed(MessagingError):
    """The broker's certificate did not verify (unknown CA, expired, not valid for the host name).

    Only a human can fix this, so it is never retried as :class:`BrokerUnavailable` is, and
    never answered by falling back to plain AMQP. ``reason`` is OpenSSL's, ``address`` the
    broker's ``host:port`` when known.
    """

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(reason, address)
        self.reason = reason
        self.address = address

    def __str__(self) -> str:
        where = f" ({self.address})" if self.address else ""
        return f"RabbitMQ TLS: certificate verify failed: {self.reason.rstrip('.')}{where}"


class TopologyError(MessagingError):
    """The broker refused a declaration, e.g. a queue exists with different arguments."""


class QueueUnavailable(MessagingError):
    """The broker closed the channel when asked about ``queue``: 404 it does not exist (not
    declared yet, or deleted), 403 these credentials may not use it. The connection and other
    queues are not affected."""

    def __init__(self, queue: str, reply_code: int, reply_text: str) -> None:
        super().__init__(queue, reply_code, reply_text)
        self.queue = queue
        self.reply_code = reply_code
        self.reply_text = reply_text

    @property
    def not_found(self) -> bool:
        """Whether the broker does not know the queue (404 NOT_FOUND)."""
        return self.reply_code == _NOT_FOUND

    def __str__(self) -> str:
        return f"queue {self.queue} unavailable: {self.reply_code} {self.reply_text}"


class Unroutable(MessagingError):
    """A mandatory message reached no queue (returned by the broker) or named a missing exchange."""

    def __init__(
        self,
        routing_key: str,
        *,
        exchange: str = "",
        message_id: str | None = None,
        reason: str = "NO_ROUTE",
    ) -> None:
        super().__init__(routing_key, exchange, message_id, reason)
        self.routing_key = routing_key
        self.exchange = exchange
        self.message_id = message_id
        self.reason = reason

    def __str__(self) -> str:
        where = f"exchange {self.exchange!r}" if self.exchange else "the default exchange"
        msg = f" (message_id {self.message_id})" if self.message_id else ""
        return f"unroutable: {self.routing_key!r} on {where}{msg}: {self.reason}"


class PublishNacked(MessagingError):
    """The broker refused to take responsibility for a message (basic.nack)."""

    def __init__(self, routing_key: str, *, exchange: str = "", message_id: str | None = None):
        super().__init__(routing_key, exchange, message_id)
        self.routing_key = routing_key
        self.exchange = exchange
        self.message_id = message_id

    def __str__(self) -> str:
        msg = f" (message_id {self.message_id})" if self.message_id else ""
        return f"broker nacked {self.routing_key!r} on exchange {self.exchange!r}{msg}"


class ConfirmTimeout(MessagingError):
    """``flush`` ran out of time with messages still unconfirmed; they stay queued for retry."""

    def __init__(self, unconfirmed: int, timeout: float) -> None:
        super().__init__(unconfirmed, timeout)
        self.unconfirmed = unconfirmed
        self.timeout = timeout

    def __str__(self) -> str:
        return f"{self.unconfirmed} message(s) still unconfirmed after {self.timeout:g}s"


class Retry(MessagingError):
    """Raised by a batch handler: a dependency is down, deliver the same batch again later."""


class Fatal(MessagingError):
    """Raised by a batch handler: a dependency refuses us for a reason only a human can fix
    (credentials, permissions). The consumer stops without acknowledging the batch and re-raises
    it; requeueing would only move good messages towards the delivery limit."""


# Reply codes meaning "these credentials may not do this": 403 ACCESS_REFUSED, 530 NOT_ALLOWED
# (e.g. no such virtual host).
_REFUSED_CODES = frozenset({403, 530})
# pika guesses "probable authentication error" from the handshake stage at which the stream ended,
# so a network cut during a (re)connect looks like one too. Only a close by the broker with one of
# the codes above, which pika keeps in the message, is a refusal.
_REFUSAL_TEXT = re.compile(r"ConnectionClosedByBroker: \((403|530)\)")


def from_pika(exc: BaseException, *, address: str | None = None) -> MessagingError:
    """The :class:`MessagingError` for a pika exception, for ``raise from_pika(exc) from exc``.

    ``address`` (``host:port``) is named in a :class:`TlsVerificationFailed`.
    """
    if isinstance(exc, TlsVerificationFailed) and exc.address is None and address is not None:
        return TlsVerificationFailed(exc.reason, address)
    if isinstance(exc, MessagingError):
        return exc
    failed = certificate_failure(exc)
    if failed is not None:
        return TlsVerificationFailed(failed.verify_message or failed.reason or str(failed), address)
    if isinstance(
        exc, pika.exceptions.ProbableAuthenticationError | pika.exceptions.ProbableAccessDeniedError
    ):
        if any(_REFUSAL_TEXT.search(str(arg)) for arg in exc.args):
            return AuthenticationFailed(f"broker refused the connection: {exc!r}")
        return BrokerUnavailable(f"connection lost during the handshake: {exc!r}")
    if isinstance(exc, pika.exceptions.AuthenticationError):
        return AuthenticationFailed(f"broker refused the connection: {exc!r}")
    if isinstance(exc, pika.exceptions.ConnectionClosedByBroker | pika.exceptions.ChannelClosed):
        code, text = exc.reply_code, exc.reply_text
        if code in _REFUSED_CODES:
            return AuthenticationFailed(f"broker refused access: {code} {text}")
        if isinstance(exc, pika.exceptions.ChannelClosed):
            return MessagingError(f"channel closed: {code} {text}")
        return BrokerUnavailable(f"connection closed by broker: {code} {text}")
    if isinstance(exc, pika.exceptions.AMQPConnectionError | AMQPConnectorException | OSError):
        return BrokerUnavailable(f"broker unavailable: {_root_cause(exc)!r}")
    if isinstance(exc, ValueError) and _SOCKET_GONE in str(exc):
        return BrokerUnavailable(f"connection closed by the peer while connecting: {exc}")
    return MessagingError(f"messaging failed: {exc!r}")


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error inside ``exc``, if that is what it is about.

    pika wraps it a few layers deep (a connection workflow's list of attempts, each a connector
    error holding the socket's exception); those layers and exception chains are searched.
    """
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "exception", None)]
        pending += list(getattr(current, "exceptions", None) or ())
        pending += list(current.args)
    return None


def _root_cause(exc: BaseException) -> object:
    """The socket-level error inside pika's connection-workflow wrappers, for readable logs."""
    inner: object = exc.args[0] if exc.args else exc
    attempts = getattr(inner, "exceptions", None)  # AMQPConnectionWorkflowFailed
    if attempts:
        last = attempts[-1]
        return getattr(last, "exception", None) or last
    return inner if isinstance(inner, BaseException) else exc
