"""Writing readings: one atomic, idempotent Lua call per reading, pipelined per batch."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import redis

from ev_schemas import Reading, timestamp_ms
from ev_storage.errors import InvalidArgument, StorageError, redis_errors_translated
from ev_storage.history import pack_value
from ev_storage.keys import KeyLayout
from ev_storage.settings import StorageSettings

SCRIPT_RESOURCE = "store_reading.lua"


class WriteOutcome(enum.StrEnum):
    """What the write script did with one reading."""

    STORED = "stored"
    """New: history, summary and perhaps latest updated, and published on the live channel."""
    DUPLICATE = "duplicate"
    """Same sensor, type and timestamp already stored; nothing changed (first write wins)."""
    EXPIRED = "expired"
    """Older than the retention window behind the newest stored reading of its type; dropped."""


_OUTCOMES = {1: WriteOutcome.STORED, 0: WriteOutcome.DUPLICATE, -1: WriteOutcome.EXPIRED}


@cache
def script_source() -> str:
    """The Lua write script shipped with this package."""
    return resources.files("ev_storage").joinpath(SCRIPT_RESOURCE).read_text(encoding="utf-8")


class ReadingWriter:
    """Stores validated readings in Redis (synchronous: the consumer's batch loop uses it).

    Each reading is one ``EVALSHA`` of the write script, atomic on its own and idempotent, so a
    redelivered batch or a retried call stores and publishes nothing twice. The client is the
    caller's: this class neither connects at construction nor closes it.
    """

    def __init__(self, client: redis.Redis, settings: StorageSettings) -> None:
        self._client = client
        self._keys = KeyLayout(settings.key_prefix)
        # A redis-py Script knows its SHA; pipelines load it first when the server lacks it.
        self._script = client.register_script(script_source())
        # Per deployment, not per reading; "0" tells the script "no expiry".
        self._fixed_args = (
            str(settings.retention_ms),
            str(settings.latest_ttl_ms or 0),
            str(settings.summary_ttl_ms or 0),
        )
        self._bucket_arg = str(settings.history_bucket_ms)

    @property
    def keys(self) -> KeyLayout:
        return self._keys

    def store(self, reading: Reading) -> WriteOutcome:
        """Store one reading; see :meth:`store_many`."""
        return self.store_many([reading])[0]

    def store_many(self, readings: Sequence[Reading]) -> list[WriteOutcome]:
        """Store ``readings`` in one pipeline; outcomes in the same order.

        (redis-py checks with one ``SCRIPT EXISTS`` first that the server has the script.)

        Raises :class:`~ev_storage.StorageUnavailable` when Redis cannot be reached or is busy
        (some readings may then be stored: repeating the call is safe),
        :class:`~ev_storage.InvalidArgument` before anything is sent if a reading cannot be keyed
        or has a non-finite value, :class:`~ev_storage.StorageError` for any other Redis error.
        """
        if not readings:
            return []
        calls = [self._call_of(reading) for reading in readings]
        with redis_errors_translated():
            # Untyped: redis-py's pipeline annotations change between releases.
            pipe: Any = self._client.pipeline(transaction=False)
            for keys, args in calls:
                self._script(keys=keys, args=args, client=pipe)
            replies: list[Any] = pipe.execute()
        return [_outcome(reply) for reply in replies]

    def _call_of(self, reading: Reading) -> tuple[list[str], list[str | bytes]]:
        if not math.isfinite(reading.value):
            # Readings built with model_construct skip validation; inf/NaN would poison the sums.
            raise InvalidArgument(f"reading value must be finite, got {reading.value!r}")
        keys = [
            self._keys.latest(reading.sensor_id, reading.sensor_type),
            self._keys.history(reading.sensor_id, reading.sensor_type),
            self._keys.summary(reading.sensor_id),
        ]
        args: list[str | bytes] = [
            str(timestamp_ms(reading)),
            # repr is the shortest text that parses back to the same float, in Lua and Python.
            repr(float(reading.value)),
            reading.to_json(),
            reading.sensor_type,
            *self._fixed_args,
            self._keys.live_channel(reading.sensor_id),
            # The history stores the double's 8 bytes: exact, whatever Lua makes of the text.
            pack_value(float(reading.value)),
            self._bucket_arg,
        ]
        return keys, args


def _outcome(reply: Any) -> WriteOutcome:
    try:
        return _OUTCOMES[int(reply)]
    except (KeyError, TypeError, ValueError):
        raise StorageError(f"unexpected reply from the write script: {reply!r}") from None
