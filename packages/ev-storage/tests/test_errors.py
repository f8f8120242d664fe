"""Translation of redis-py errors at the package boundary."""

from __future__ import annotations

import ssl

import pytest
from redis import exceptions as redis_errors

from ev_storage import StorageError, StorageTimedOut, StorageUnavailable, TlsVerificationFailed
from ev_storage.errors import connection_errors_translated, redis_errors_translated, translate


@pytest.mark.parametrize(
    "exc",
    [
        redis_errors.ConnectionError("Connection refused"),
        redis_errors.TimeoutError("Timeout reading from socket"),
        redis_errors.BusyLoadingError("Redis is loading the dataset in memory"),
        redis_errors.AuthenticationError("invalid password"),
        redis_errors.ReadOnlyError("You can't write against a read only replica."),
        redis_errors.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis_errors.ResponseError("BUSY Redis is busy running a script."),
        redis_errors.ClusterDownError("The cluster is down"),
        redis_errors.TryAgainError("Multiple keys request during rehashing of slot"),
        redis_errors.NoScriptError("No matching script. Please use EVAL."),
    ],
)
def test_passing_states_become_storage_unavailable(exc: redis_errors.RedisError) -> None:
    translated = translate(exc)
    # A timeout is the one kind told apart: StorageTimedOut, a StorageUnavailable too.
    timed_out = isinstance(exc, redis_errors.TimeoutError)
    assert type(translated) is (StorageTimedOut if timed_out else StorageUnavailable)
    assert str(translated) == f"Redis unavailable: {exc}"


@pytest.mark.parametrize(
    "exc",
    [
        redis_errors.ResponseError("WRONGTYPE Operation against a key holding the wrong kind"),
        redis_errors.ResponseError("ERR Error running script"),
        redis_errors.NoPermissionError("this user has no permissions"),
        redis_errors.DataError("Invalid input"),
    ],
)
def test_other_errors_become_storage_error(exc: redis_errors.RedisError) -> None:
    translated = translate(exc)
    assert type(translated) is StorageError
    assert str(exc) in str(translated)


def test_context_manager_chains_the_original() -> None:
    original = redis_errors.ConnectionError("reset by peer")
    with pytest.raises(StorageUnavailable) as caught, redis_errors_translated():
        raise original
    assert caught.value.__cause__ is original
    assert caught.value.reason == "reset by peer"


def test_context_manager_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), redis_errors_translated():
        raise KeyError("x")


def _cannot_connect() -> redis_errors.RedisClusterException:
    """What redis-py's cluster client raises when no node answers (not a RedisError)."""
    try:
        try:
            raise redis_errors.ConnectionError("Error 111 connecting to 127.0.0.1:7000.")
        except redis_errors.ConnectionError as exc:
            raise redis_errors.RedisClusterException("Redis Cluster cannot be connected.") from exc
    except redis_errors.RedisClusterException as exc:
        return exc


UNAVAILABLE, ERROR = StorageUnavailable, StorageError


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_cannot_connect(), UNAVAILABLE),
        (redis_errors.SlotNotCoveredError('Slot "5" is not covered by the cluster.'), UNAVAILABLE),
        (redis_errors.RedisClusterException("All slots are not covered after query"), UNAVAILABLE),
        (redis_errors.RedisClusterException("MGET - all keys must map to the same slot"), ERROR),
    ],
)
def test_cluster_client_errors_are_translated(
    exc: redis_errors.RedisClusterException, kind: type[StorageError]
) -> None:
    with pytest.raises(StorageError) as caught, redis_errors_translated():
        raise exc
    assert type(caught.value) is kind
    assert caught.value.__cause__ is exc


def _from_socket_error(cause: OSError) -> redis_errors.ConnectionError:
    """A ConnectionError as redis-py raises it for a failed connect: from the socket's error."""
    try:
        raise redis_errors.ConnectionError(
            f"Error {cause.args[0]} connecting to redis.internal:6380. {cause.args[1]}."
        ) from cause
    except redis_errors.ConnectionError as exc:
        return exc


def test_a_certificate_that_does_not_verify_is_not_unavailability() -> None:
    cause = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] ...")
    cause.verify_message = "certificate has expired"
    translated = translate(_from_socket_error(cause))
    assert type(translated) is TlsVerificationFailed
    assert not isinstance(translated, StorageUnavailable)
    assert (translated.reason, translated.address) == (
        "certificate has expired",
        "redis.internal:6380",
    )
    assert str(translated) == (
        "Redis TLS: certificate verify failed: certificate has expired (redis.internal:6380)"
    )


def test_other_tls_errors_stay_unavailability() -> None:
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert type(translate(_from_socket_error(eof))) is StorageUnavailable


def test_a_timeout_is_storage_timed_out_and_still_unavailability() -> None:
    translated = translate(redis_errors.TimeoutError("Timeout reading from socket"))
    assert isinstance(translated, StorageUnavailable)
    assert translated.reason == "Timeout reading from socket"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (redis_errors.ConnectionError("reset by peer"), StorageUnavailable),
        (redis_errors.TimeoutError("Timeout reading from socket"), StorageTimedOut),
        (TimeoutError("timed out"), StorageTimedOut),
        (ConnectionResetError(104, "Connection reset by peer"), StorageUnavailable),
        (OSError(113, "No route to host"), StorageUnavailable),
        (redis_errors.ResponseError("WRONGTYPE Operation against a key"), StorageError),
    ],
)
def test_connection_errors_translated_also_takes_socket_errors(
    exc: Exception, kind: type[StorageError]
) -> None:
    with pytest.raises(StorageError) as caught, connection_errors_translated():
        raise exc
    assert type(caught.value) is kind
    assert caught.value.__cause__ is exc


def test_connection_errors_translated_leaves_other_exceptions_alone() -> None:
    with pytest.raises(KeyError), connection_errors_translated():
        raise KeyError("x")
