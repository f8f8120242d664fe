"""What the fleet emits: a message to publish, and what kind of message it is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Kind(StrEnum):
    """Every kind of message the simulator publishes.

    ``valid`` is a fresh reading. ``duplicate`` and ``out_of_order`` are valid but tricky: a
    duplicate re-publishes an earlier valid body byte for byte (stored once, counted once); an
    out-of-order reading is new but older than one its sensor already sent (stored in history,
    never "latest"). ``unknown_type`` is published with the routing key of a type no queue is
    bound to, so it lands in ``ev.sensors.unrouted``. Every other kind is invalid and ends in
    ``ev.sensors.invalid`` with a reason.
    """

    VALID = "valid"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    MALFORMED_JSON = "malformed_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    OUT_OF_RANGE = "out_of_range"
    BAD_UNIT = "bad_unit"
    UNKNOWN_TYPE = "unknown_type"
    TYPE_MISMATCH = "type_mismatch"
    NAIVE_TIMESTAMP = "naive_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    BAD_VALUE = "bad_value"
    BAD_SENSOR_ID = "bad_sensor_id"


#: The kinds ``--bad-kinds`` chooses from: everything but a fresh valid reading.
BAD_KINDS: tuple[Kind, ...] = tuple(kind for kind in Kind if kind is not Kind.VALID)
#: Kinds whose reading is valid and stored (a duplicate is stored once, by its original).
STORED_KINDS = frozenset({Kind.VALID, Kind.OUT_OF_ORDER})
#: Kinds the consumer moves to the invalid queue.
INVALID_KINDS = frozenset(BAD_KINDS) - {Kind.DUPLICATE, Kind.OUT_OF_ORDER, Kind.UNKNOWN_TYPE}


class SimReading(NamedTuple):
    """A valid reading as published (value in the published unit)."""

    sensor_id: str
    sensor_type: str
    timestamp_ms: int
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish.

    ``sim_time_ms`` is the simulated moment that produced it (the runner never publishes ahead of
    the wall clock); ``reading`` is set for valid, duplicate and out-of-order messages.
    """

    routing_key: str
    body: bytes
    kind: Kind
    sim_time_ms: int
    reading: SimReading | None = None
