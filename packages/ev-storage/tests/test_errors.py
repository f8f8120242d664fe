"""Translation of redis-py errors at the package boundary."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.asyncio
from _storage_helpers import CATALOGUE, SENSOR, make_reading
from redis import exceptions as redis_errors

from ev_storage import (
    CredentialsRefused,
    ReadingReader,
    ReadingWriter,
    StorageError,
    StorageRefused,
    StorageSettings,
    StorageTimedOut,
    StorageUnavailable,
    TlsVerificationFailed,
    check_connection,
)
from ev_storage.errors import connection_errors_translated, redis_errors_translated, translate


@pytest.mark.parametrize(
    "exc",
    [
        redis_errors.ConnectionError("Connection refused"),
        redis_errors.TimeoutError("Timeout reading from socket"),
        redis_errors.BusyLoadingError("Redis is loading the dataset in memory"),
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


@pytest.mark.parametrize(
    "exc",
    [
        redis_errors.AuthenticationError("invalid password"),
        redis_errors.AuthenticationError("invalid username-password pair or user is disabled."),
        redis_errors.AuthenticationError("Authentication required."),  # NOAUTH
        redis_errors.AuthorizationError("you are not authorized to view this ocsp certificate"),
    ],
)
def test_refused_credentials_are_a_refusal_that_may_pass(exc: redis_errors.RedisError) -> None:
    # A password rotated on the server before the clients: callers that wait for Redis anyway
    # (health, start-up) wait for this as they did; those that must not retry see a refusal.
    translated = translate(exc)
    assert type(translated) is CredentialsRefused
    assert isinstance(translated, StorageRefused)
    assert isinstance(translated, StorageUnavailable)
    assert translated.reason == str(exc)
    assert str(translated) == f"Redis refused the credentials: {exc}"


@pytest.mark.parametrize(
    "exc",
    [
        redis_errors.NoPermissionError("this user has no permissions to run the 'evalsha' command"),
        redis_errors.AuthenticationWrongNumberOfArgsError(
            "wrong number of arguments for 'auth' command"
        ),
        # Redis 7.0's reply to an ACL refusal inside a script has no code of its own.
        redis_errors.ResponseError(
            "The user executing the script can't run this command or subcommand script: "
            "bd6f3018b28bbdb36260f19d3c44afed740db987, on @user_script:1."
        ),
    ],
)
def test_refused_permissions_are_a_refusal_that_does_not_pass(
    exc: redis_errors.RedisError,
) -> None:
    translated = translate(exc)
    assert type(translated) is StorageRefused
    assert not isinstance(translated, StorageUnavailable)
    assert str(translated) == f"Redis refused: {exc}"


def test_a_cluster_that_refused_the_credentials_is_a_refusal() -> None:
    refused = redis_errors.AuthenticationError("invalid username-password pair")
    with pytest.raises(CredentialsRefused) as caught, redis_errors_translated():
        raise redis_errors.RedisClusterException("Redis Cluster cannot be connected.") from refused
    cause = caught.value.__cause__
    assert cause is not None
    assert cause.__cause__ is refused


# What redis-py raises for each refusal, on the real server: an ACL user of the test's own, with a
# unique name, deleted afterwards (the default user is never changed).

#: Makes an ACL user from ``ACL SETUSER`` rules (password and ``on`` are added): its name.
MakeUser = Callable[..., str]


@pytest.fixture
def acl_user(redis_client: redis.Redis) -> Iterator[MakeUser]:
    names: list[str] = []

    def make(*rules: str, password: str) -> str:
        name = f"evtest-{uuid.uuid4().hex[:12]}"
        names.append(name)
        redis_client.execute_command("ACL", "SETUSER", name, "on", f">{password}", *rules)
        return name

    yield make
    for name in names:
        redis_client.acl_deluser(name)


def _store_one(client: redis.Redis, key_prefix: str) -> None:
    ReadingWriter(client, StorageSettings(key_prefix=key_prefix)).store(make_reading(0, 50.0))


@pytest.mark.integration
def test_a_permitted_acl_user_writes(redis_url: str, key_prefix: str, acl_user: MakeUser) -> None:
    """The rules the refusals below take one thing away from are enough to write."""
    name = acl_user("+@all", f"~{key_prefix}*", "&*", password="pw")
    with redis.Redis.from_url(redis_url, username=name, password="pw") as client:
        _store_one(client, key_prefix)


@pytest.mark.integration
@pytest.mark.parametrize("disabled", [False, True], ids=["wrong-password", "disabled-user"])
def test_refused_credentials_on_the_server(
    redis_url: str, key_prefix: str, acl_user: MakeUser, redis_client: redis.Redis, disabled: bool
) -> None:
    name = acl_user("+@all", f"~{key_prefix}*", "&*", password="right")
    if disabled:
        redis_client.execute_command("ACL", "SETUSER", name, "off")
    password = "right" if disabled else "wrong"
    with redis.Redis.from_url(redis_url, username=name, password=password) as client:
        with pytest.raises(CredentialsRefused, match="invalid username-password") as caught:
            _store_one(client, key_prefix)
        with pytest.raises(CredentialsRefused):
            check_connection(client)
    assert isinstance(caught.value, StorageUnavailable)


@pytest.mark.integration
@pytest.mark.parametrize(
    "rules",
    [
        ("+@all", "-evalsha", "~{prefix}*", "&*"),  # the command
        ("+@all", "~evtest-elsewhere:*", "&*"),  # the keys
        ("+@all", "-hset", "~{prefix}*", "&*"),  # a command inside the write script
        ("+@all", "~{prefix}*", "resetchannels"),  # its PUBLISH of the stored reading
    ],
    ids=["command", "keys", "command-in-script", "channel-in-script"],
)
def test_refused_permissions_on_the_server(
    redis_url: str, key_prefix: str, acl_user: MakeUser, rules: tuple[str, ...]
) -> None:
    name = acl_user(*(rule.format(prefix=key_prefix) for rule in rules), password="pw")
    with (
        redis.Redis.from_url(redis_url, username=name, password="pw") as client,
        pytest.raises(StorageRefused) as caught,
    ):
        _store_one(client, key_prefix)
    assert type(caught.value) is StorageRefused  # not unavailable: waiting will not help
    assert isinstance(caught.value.__cause__, redis_errors.RedisError)


@pytest.mark.integration
@pytest.mark.anyio
async def test_the_reader_translates_refusals_too(
    redis_url: str, key_prefix: str, acl_user: MakeUser
) -> None:
    name = acl_user("+@all", "-get", f"~{key_prefix}*", password="pw")
    settings = StorageSettings(key_prefix=key_prefix)
    client = redis.asyncio.Redis.from_url(redis_url, username=name, password="pw")
    wrong = redis.asyncio.Redis.from_url(redis_url, username=name, password="wrong")
    try:
        with pytest.raises(StorageRefused, match="'get' command"):
            await ReadingReader(client, settings, CATALOGUE).latest_raw(SENSOR, "battery")
        with pytest.raises(CredentialsRefused):
            await ReadingReader(wrong, settings, CATALOGUE).latest_raw(SENSOR, "battery")
    finally:
        await client.aclose()
        await wrong.aclose()


@pytest.mark.integration
def test_noauth_from_a_server_that_wants_a_password(private_redis: redis.Redis) -> None:
    # The shared server's default user is not ours to change; this one is.
    private_redis.config_set("requirepass", uuid.uuid4().hex)
    port = private_redis.connection_pool.connection_kwargs["port"]
    anonymous = redis.Redis(host="127.0.0.1", port=port)
    try:
        # NOAUTH, to PING or (redis-py 8) to its HELLO: "Authentication required", "HELLO must
        # be called with the client already authenticated..."
        with pytest.raises(CredentialsRefused) as caught:
            check_connection(anonymous)
    finally:
        anonymous.close()
    assert isinstance(caught.value.__cause__, redis_errors.AuthenticationError)


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
