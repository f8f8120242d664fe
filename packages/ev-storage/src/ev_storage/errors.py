"""Errors of ev-storage: one root, :class:`StorageError`, and the translation of redis-py's errors.

Callers catch these, never ``redis.exceptions``: the consumer backs off and redelivers on
:class:`StorageUnavailable` and stops on :class:`StorageRefused`, the API answers 503 for the
first and 4xx for :class:`InvalidArgument`.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_errors

# Server states that pass: the caller should retry later, not give up on the data.
_TRANSIENT_REPLIES = tuple(
    f"{code} " for code in ("BUSY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY")
)
_TRANSIENT_TYPES: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # also refused, reset, auth (see below), LOADING, max clients
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # failover left us on a replica
    redis_errors.OutOfMemoryError,  # maxmemory reached with noeviction
    redis_errors.ClusterDownError,  # also MASTERDOWN
    redis_errors.TryAgainError,
    # The script cache was emptied (failover, SCRIPT FLUSH) after the pipeline checked it; the
    # next batch loads the script again.
    redis_errors.NoScriptError,
    # A cluster client's request for a slot no primary serves (a failover under way).
    redis_errors.SlotNotCoveredError,
)
# Refused credentials: WRONGPASS, NOAUTH, "invalid password", an AUTH to a server without one,
# all AuthenticationError, and AuthorizationError (a certificate's OCSP status refused). redis-py
# makes them ConnectionErrors.
_CREDENTIAL_REFUSALS = (redis_errors.AuthenticationError, redis_errors.AuthorizationError)
# Refused permissions: NOPERM (a command, key or channel outside the user's ACL), and an AUTH with
# a user name on a server that has no users (before Redis 6), should it reach us.
_PERMISSION_REFUSALS = (
    redis_errors.NoPermissionError,
    redis_errors.AuthenticationWrongNumberOfArgsError,
)
#: How Redis 7.0 reports an ACL refusal inside a script (newer releases may reply NOPERM): plain
#: error, "The user executing the script can't run this command or subcommand script: <sha>...".
_SCRIPT_REFUSAL = "The user executing the script can't "
#: How redis-py's cluster client says that the slot map it read has holes (nodes down).
_UNCOVERED = "All slots are not covered"
#: What redis-py may raise: its cluster client's own errors are not RedisErrors.
RedisFailure = redis_errors.RedisError | redis_errors.RedisClusterException


class StorageError(Exception):
    """Root of every error this package raises."""


class StorageUnavailable(StorageError):
    """Redis cannot serve the request now (unreachable, timed out, busy, loading, read-only, full).

    The condition is expected to pass: retry later. Nothing is known about whether a write that
    failed this way was applied; the write script is idempotent, so repeating it is safe.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"Redis unavailable: {self.reason}"


class StorageRefused(StorageError):
    """Redis refused this client: its credentials (WRONGPASS, NOAUTH) or its ACL permissions
    (NOPERM), whatever it asked for.

    No request of this client will do better until someone changes the password, the user or
    its ACL: a caller that would retry the same data forever, or count it against a delivery
    limit, should stop instead. ``reason`` is Redis's (or redis-py's) reply.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"Redis refused: {self.reason}"


class CredentialsRefused(StorageRefused, StorageUnavailable):
    """Redis refused the credentials (a wrong or missing password, an unknown or disabled user).

    Unlike a missing permission, this may pass by itself, e.g. while a password is rotated on
    the server before the clients, so it is also a :class:`StorageUnavailable`: callers that wait
    for Redis anyway (health checks, start-up probes, an API answering 503) wait for this too.
    Callers for which retrying only looks alive catch :class:`StorageRefused` first.
    """

    def __str__(self) -> str:
        return f"Redis refused the credentials: {self.reason}"


class StorageTimedOut(StorageUnavailable):
    """Redis did not answer in time: it may be hung rather than down.

    A :class:`StorageUnavailable` like the others, for callers that only retry later. A caller
    that would otherwise go on to wait for the same Redis again (a rate limiter in front of a
    read) can tell it apart and give up at once.
    """


class TlsVerificationFailed(StorageError):
    """Redis's certificate did not verify (unknown CA, expired, not valid for the host name).

    Only a human can fix this: unlike :class:`StorageUnavailable` it does not pass by itself,
    so callers stop rather than retry. ``reason`` is OpenSSL's, ``address`` the server's
    ``host:port`` when known.
    """

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(reason, address)
        self.reason = reason
        self.address = address

    def __str__(self) -> str:
        where = f" ({self.address})" if self.address else ""
        return f"Redis TLS: certificate verify failed: {self.reason.rstrip('.')}{where}"


class InvalidArgument(StorageError, ValueError):
    """A value given to this package cannot be used (bad settings, key part, cursor, type, time)."""


class CorruptRecord(StorageError):
    """Something stored that this package cannot read back (written by hand, or by a version
    with other rules); ``key`` says where."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(key, reason)
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class InvalidKey(InvalidArgument):
    """A sensor id, sensor type or prefix that must not become part of a Redis key."""


class InvalidCursor(InvalidArgument):
    """A history cursor that this package did not produce."""


class UnknownSensorType(InvalidArgument):
    """A sensor type that the reader's catalogue does not define."""

    def __init__(self, sensor_type: str, known: list[str]) -> None:
        super().__init__(sensor_type, known)
        self.sensor_type = sensor_type
        self.known = known

    def __str__(self) -> str:
        return f"unknown sensor type {self.sensor_type!r}; known: {', '.join(self.known)}"


def _cluster_cause(exc: RedisFailure) -> RedisFailure | None:
    """The node's error that a cluster client's "cannot be connected" was raised from, if any."""
    cause = exc.__cause__
    if isinstance(exc, redis_errors.RedisClusterException) and isinstance(
        cause, redis_errors.RedisError | redis_errors.RedisClusterException
    ):
        return cause
    return None


def refusal(exc: RedisFailure) -> type[StorageRefused] | None:
    """Which :class:`StorageRefused` ``exc`` stands for, if it is a refusal of this client."""
    if isinstance(exc, _CREDENTIAL_REFUSALS):
        return CredentialsRefused
    if isinstance(exc, _PERMISSION_REFUSALS):
        return StorageRefused
    if isinstance(exc, redis_errors.ResponseError) and _SCRIPT_REFUSAL in str(exc):
        return StorageRefused
    cause = _cluster_cause(exc)
    return None if cause is None else refusal(cause)


def is_transient(exc: RedisFailure) -> bool:
    """Whether ``exc`` reports a server or network state that passes, rather than a bad request."""
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, redis_errors.RedisClusterException):
        # "Redis Cluster cannot be connected" carries the last node's error as its cause.
        cause = _cluster_cause(exc)
        if cause is not None:
            return is_transient(cause)
        return str(exc).startswith(_UNCOVERED)
    # redis-py has no class for some replies (BUSY: a script runs too long); the code leads.
    return isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


#: How redis-py names the server in a failed connect: "Error 1 connecting to host:port. ..."
_CONNECTING_TO = re.compile(r"connecting to (\S+?)\.(?:\s|$)")


def certificate_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification error that ``exc`` was raised from, if any (redis-py
    raises its ConnectionError from the socket's error)."""
    current: BaseException | None = exc
    for _ in range(8):  # a chain, not a cycle; bounded all the same
        if current is None:
            return None
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        current = current.__cause__ or current.__context__
    return None


def translate(exc: RedisFailure) -> StorageError:
    """The :class:`StorageError` that stands for a redis-py error at this package's boundary."""
    failed = certificate_failure(exc)
    if failed is not None:
        address = _CONNECTING_TO.search(str(exc))
        reason = failed.verify_message or failed.reason or str(failed)
        return TlsVerificationFailed(reason, address.group(1) if address else None)
    detail = str(exc) or type(exc).__name__
    refused = refusal(exc)
    if refused is not None:
        return refused(detail)
    if isinstance(exc, redis_errors.TimeoutError):
        return StorageTimedOut(detail)
    if is_transient(exc):
        return StorageUnavailable(detail)
    return StorageError(f"Redis error: {detail}")


@contextmanager
def redis_errors_translated() -> Iterator[None]:
    """Re-raise redis-py errors of the block as :class:`StorageError` (also around awaits)."""
    try:
        yield
    except (redis_errors.RedisError, redis_errors.RedisClusterException) as exc:
        raise translate(exc) from exc


@contextmanager
def connection_errors_translated() -> Iterator[None]:
    """:func:`redis_errors_translated`, and a socket's own error, should redis-py let one through,
    as :class:`StorageTimedOut` (a ``TimeoutError``) or :class:`StorageUnavailable` (any other
    ``OSError``): for a connection's life or a per-request check, where no third-party error
    may reach the caller."""
    try:
        with redis_errors_translated():
            yield
    except TimeoutError as exc:
        raise StorageTimedOut(str(exc) or "timed out") from exc
    except OSError as exc:
        raise StorageUnavailable(str(exc) or type(exc).__name__) from exc
