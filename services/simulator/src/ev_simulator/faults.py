"""Bad and tricky messages, each derived from a real reading of the fleet.

Every invalid kind breaks exactly one rule of the contract, so the consumer's reason for it is
predictable (see :data:`EXPECTED_REASONS`). Duplicates and out-of-order readings are valid: they
exercise idempotent storage and "latest by timestamp, not arrival".
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Sequence
from typing import Any

from ev_messaging import routing_key
from ev_schemas import Catalogue, format_timestamp, from_epoch_ms
from ev_simulator.message import Kind, Message, SimReading

#: Types no queue is bound to (the catalogue's own names are filtered out at run time).
UNKNOWN_TYPES = ("cabin_humidity", "coolant_flow", "wiper_speed", "seat_heater", "ambient_light")
#: Units no sensor type accepts, in the spellings a careless firmware would use.
BAD_UNITS = ("Celsius", "volts", "kmh", "kW ", "percentage_points", "psig", "")
#: A substring of the reason ev_schemas.ReadingValidator gives for each invalid kind.
EXPECTED_REASONS: dict[Kind, tuple[str, ...]] = {
    Kind.MALFORMED_JSON: ("Invalid JSON",),
    Kind.NOT_OBJECT: ("Input should be an object",),
    Kind.MISSING_FIELD: ("Field required",),
    Kind.OUT_OF_RANGE: ("outside the plausible range",),
    Kind.BAD_UNIT: ("is not known for",),
    Kind.UNKNOWN_TYPE: ("is not configured",),
    Kind.TYPE_MISMATCH: ("does not match the routing key",),
    Kind.NAIVE_TIMESTAMP: ("timezone",),
    Kind.FUTURE_TIMESTAMP: ("in the future",),
    Kind.BAD_VALUE: ("finite number", "valid number"),
    Kind.BAD_SENSOR_ID: ("sensor_id",),
}
_FIELDS = ("sensor_id", "sensor_type", "timestamp", "value", "unit")
_DAY_MS = 86_400_000
_PLACEHOLDER = "@value@"
_BAD_VALUES = (b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"85.5"', b"true", b"null")
#: How many recent valid messages are kept to draw duplicates and out-of-order readings from.
MEMORY = 256


def encode(fields: dict[str, Any]) -> bytes:
    """Compact JSON, the way devices send it."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def reading_fields(reading: SimReading) -> dict[str, Any]:
    return {
        "sensor_id": reading.sensor_id,
        "sensor_type": reading.sensor_type,
        "timestamp": format_timestamp(from_epoch_ms(reading.timestamp_ms)),
        "value": reading.value,
        "unit": reading.unit,
    }


class FaultMaker:
    """Builds a message of a chosen kind from the reading that would have been published next.

    ``now_ms`` anchors future timestamps: they are at least a day after both the reading and
    ``now_ms``, so they stay invalid even when the simulated time lies in the past.
    """

    def __init__(
        self,
        rng: random.Random,
        catalogue: Catalogue,
        types: Sequence[str],
        *,
        tick_ms: int,
        now_ms: int,
    ) -> None:
        self.rng = rng
        self.catalogue = catalogue
        self.types = tuple(types)
        self.tick_ms = tick_ms
        self.now_ms = now_ms
        self.unknown_types = tuple(name for name in UNKNOWN_TYPES if name not in catalogue)
        self._published: deque[Message] = deque(maxlen=MEMORY)  # valid bodies, for duplicates
        self._fresh: deque[SimReading] = deque(maxlen=MEMORY)  # never yet sent out of order

    def remember(self, message: Message) -> None:
        """Note a valid message that went out, as material for duplicates and late readings."""
        self._published.append(message)
        if message.kind is Kind.VALID and message.reading is not None:
            self._fresh.append(message.reading)

    def make(self, kind: Kind, template: SimReading) -> Message | None:
        """A message of ``kind``, or None when it cannot be made yet (nothing to duplicate)."""
        rng, key = self.rng, routing_key(template.sensor_type)
        if kind is Kind.DUPLICATE:
            if not self._published:
                return None
            original = self._published[rng.randrange(len(self._published))]
            return Message(
                original.routing_key, original.body, kind, template.timestamp_ms, original.reading
            )
        if kind is Kind.OUT_OF_ORDER:
            if not self._fresh:
                return None
            index = rng.randrange(len(self._fresh))
            earlier = self._fresh[index]
            del self._fresh[index]  # each late reading must be a distinct one
            late = earlier._replace(timestamp_ms=earlier.timestamp_ms - self.tick_ms // 2)
            body = encode(reading_fields(late))
            return Message(routing_key(late.sensor_type), body, kind, template.timestamp_ms, late)
        fields = reading_fields(template)
        if kind is Kind.UNKNOWN_TYPE:
            fields["sensor_type"] = rng.choice(self.unknown_types)
            key = routing_key(fields["sensor_type"])
            body = encode(fields)
        elif kind is Kind.TYPE_MISMATCH:
            others = [name for name in self.types if name != template.sensor_type]
            others = others or [name for name in self.catalogue if name != template.sensor_type]
            fields["sensor_type"] = rng.choice(others)
            body = encode(fields)
        else:
            body = self._invalid_body(kind, fields, template)
        return Message(key, body, kind, template.timestamp_ms)

    def _invalid_body(self, kind: Kind, fields: dict[str, Any], template: SimReading) -> bytes:
        rng = self.rng
        if kind is Kind.MALFORMED_JSON:
            good = encode(fields)
            variant = rng.randrange(4)
            if variant == 0:  # cut short, as by a lost packet
                return good[: rng.randrange(1, len(good) - 1)]
            if variant == 1:  # Python's repr instead of JSON
                return repr(fields).encode()
            if variant == 2:  # trailing comma
                return good[:-1] + b",}"
            return good.replace(b'"sensor_id"', b'"sensor_\xff\xfeid"')  # not UTF-8
        if kind is Kind.NOT_OBJECT:
            good = encode(fields)
            return rng.choice(
                (b"[" + good + b"]", json.dumps(good.decode()).encode(), b"42", b"null")
            )
        if kind is Kind.MISSING_FIELD:
            del fields[rng.choice(_FIELDS)]
        elif kind is Kind.OUT_OF_RANGE:
            sensor_type = self.catalogue[template.sensor_type]
            span = sensor_type.maximum - sensor_type.minimum
            above = rng.random() < 0.5
            excess = span * rng.uniform(0.01, 0.5)
            value = sensor_type.maximum + excess if above else sensor_type.minimum - excess
            fields["value"], fields["unit"] = round(value, 1), sensor_type.unit
        elif kind is Kind.BAD_UNIT:
            accepted = set(self.catalogue[template.sensor_type].accepted_units)
            foreign = {unit for other in self.catalogue.values() for unit in other.accepted_units}
            choices = sorted((foreign | set(BAD_UNITS)) - accepted)
            fields["unit"] = rng.choice(choices)
        elif kind is Kind.NAIVE_TIMESTAMP:
            fields["timestamp"] = fields["timestamp"].removesuffix("Z")
        elif kind is Kind.FUTURE_TIMESTAMP:
            ahead = rng.randrange(_DAY_MS, 30 * _DAY_MS)
            moment = max(template.timestamp_ms, self.now_ms) + ahead
            fields["timestamp"] = format_timestamp(from_epoch_ms(moment))
        elif kind is Kind.BAD_VALUE:
            # Python's json would refuse most of these, so they are spliced into the text.
            fields["value"] = _PLACEHOLDER
            replacement = rng.choice(_BAD_VALUES)
            return encode(fields).replace(f'"{_PLACEHOLDER}"'.encode(), replacement)
        elif kind is Kind.BAD_SENSOR_ID:
            sensor_id = template.sensor_id
            fields["sensor_id"] = rng.choice(
                ("", sensor_id.replace("_", " "), f"fleet/{sensor_id}", sensor_id + "!", "x" * 65)
            )
        else:  # pragma: no cover - every kind is handled above
            raise AssertionError(kind)
        return encode(fields)
