"""A seeded generator of hostile traffic: valid readings interleaved with malformed ones.

Each bad message is a valid reading broken one way (cut short, wrong type, non-finite, out of
range, bad id or unit or time, invalid UTF-8, deeply nested, huge, a flipped byte, ...), or noise.
Whether a message is valid is decided by ``ev_schemas.ReadingValidator`` at generation time (the
"oracle"); mutations that can never give a valid reading are marked, and the test checks that
the oracle agrees with those marks, so the generator also tests the validator's strictness.
Timestamps stay far from the validator's clock bounds, so the verdict cannot change by the time
the consumer sees the message; a mutation that moves a valid reading's time far away (a flipped
bit in the year) is left out, since whether storage keeps a reading older than the retention
window depends on the order of arrival.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ev_messaging import routing_key, sensor_type_from_routing_key
from ev_schemas import (
    InvalidReading,
    ReadingValidator,
    default_catalogue,
    format_timestamp,
    timestamp_ms,
)

CATALOGUE = default_catalogue()
TYPES = tuple(CATALOGUE)
FIELDS = ("sensor_id", "sensor_type", "timestamp", "value", "unit")
#: Routing keys no queue is bound to: the alternate exchange keeps them in ev.sensors.unrouted.
UNROUTABLE_KEYS = ("ev.sensor.warp_drive", "ev.sensor.battery.extra", "ev.sensors", "x", "")
#: A header a hostile publisher sets, hoping to pass its own reason along.
FORGED_ERROR = "forged by the publisher"


@dataclass(frozen=True)
class Fuzzed:
    """One message to publish, and where it must end."""

    routing_key: str
    body: bytes
    kind: str
    surely_invalid: bool = False
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str | None = "application/json"


@dataclass
class Traffic:
    """The messages, and the oracle's expectations for them."""

    messages: list[Fuzzed]
    stored: Counter[tuple[str, str]]  # distinct valid readings per (sensor_id, sensor_type)
    duplicates: int  # valid messages whose reading another message already carries
    invalid: list[Fuzzed]
    unrouted: list[Fuzzed]
    disagreements: list[Fuzzed]  # marked surely invalid, yet the oracle accepted them
    left_out: int  # valid, but too far in time from the others: see the module docstring


class Generator:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.base = now - timedelta(hours=2)
        self.sensors = [f"ev_fz_{n:02d}" for n in range(20)]
        self.validator = ReadingValidator(catalogue=CATALOGUE)
        self._tick = 0

    def reading(self) -> dict[str, Any]:
        """A fresh valid reading in canonical units, with a timestamp of its own."""
        rng = self.rng
        sensor_type = CATALOGUE.get(rng.choice(TYPES))
        assert sensor_type is not None
        self._tick += rng.randrange(1, 50)
        return {
            "sensor_id": rng.choice(self.sensors),
            "sensor_type": sensor_type.name,
            "timestamp": format_timestamp(self.base + timedelta(milliseconds=self._tick)),
            "value": round(rng.uniform(sensor_type.minimum, sensor_type.maximum), 3),
            "unit": sensor_type.unit,
        }

    def traffic(self, good: int, bad: int, unroutable: int) -> Traffic:
        rng = self.rng
        messages: list[Fuzzed] = []
        valid_bodies: list[Fuzzed] = []
        for _ in range(good):
            if valid_bodies and rng.random() < 0.03:
                messages.append(rng.choice(valid_bodies))  # the same message again
                continue
            fields = self.reading()
            message = Fuzzed(routing_key(fields["sensor_type"]), encode(fields), "valid")
            valid_bodies.append(message)
            messages.append(message)
        mutations = [getattr(self, name) for name in dir(self) if name.startswith("_bad_")]
        for _ in range(bad):
            messages.append(self._hostile_properties(rng.choice(mutations)(self.reading())))
        for _ in range(unroutable):
            body = encode(self.reading())
            messages.append(Fuzzed(rng.choice(UNROUTABLE_KEYS), body, "unroutable"))
        rng.shuffle(messages)
        return self._judge(messages)

    def _judge(self, candidates: list[Fuzzed]) -> Traffic:
        seen: dict[tuple[str, str, int], float] = {}  # identity: the value stored first
        stored: Counter[tuple[str, str]] = Counter()
        duplicates = left_out = 0
        messages: list[Fuzzed] = []
        invalid, unrouted, disagreements = [], [], []
        near = (self.base - timedelta(hours=1), self.base + timedelta(hours=1))
        for message in candidates:
            expected_type = sensor_type_from_routing_key(message.routing_key)
            if expected_type not in CATALOGUE:
                messages.append(message)
                unrouted.append(message)
                continue
            try:
                reading = self.validator.parse(message.body, expected_type=expected_type)
            except InvalidReading:
                messages.append(message)
                invalid.append(message)
                continue
            if not near[0] <= reading.timestamp <= near[1]:
                left_out += 1
                continue
            messages.append(message)
            if message.surely_invalid:
                disagreements.append(message)
            identity = (reading.sensor_id, reading.sensor_type, timestamp_ms(reading))
            if identity not in seen:
                seen[identity] = reading.value
                stored[identity[:2]] += 1
            elif seen[identity] == reading.value:
                duplicates += 1
            else:  # a mutation that made another valid value for a published reading
                invalid.append(message)
        return Traffic(messages, stored, duplicates, invalid, unrouted, disagreements, left_out)

    def _hostile_properties(self, message: Fuzzed) -> Fuzzed:
        rng = self.rng
        headers: dict[str, Any] = {}
        if rng.random() < 0.2:
            headers["x-ev-error"] = FORGED_ERROR
        if rng.random() < 0.2:
            headers[f"x-noise-{rng.randrange(100)}"] = rng.choice([1, "ü", True, None, b"\x00\xff"])
        content_type = rng.choice(["application/json", None, "text/plain", "\u00e9"])
        return Fuzzed(
            message.routing_key,
            message.body,
            message.kind,
            message.surely_invalid,
            headers,
            content_type,
        )

    # Mutations: each takes a valid reading and returns a message built from it.

    def _bad_noise(self, fields: dict[str, Any]) -> Fuzzed:
        body = self.rng.randbytes(self.rng.randrange(0, 300))
        return Fuzzed(routing_key(fields["sensor_type"]), body, "noise", surely_invalid=True)

    def _bad_truncated(self, fields: dict[str, Any]) -> Fuzzed:
        body = encode(fields)
        return self._sure(fields, body[: self.rng.randrange(0, len(body) - 1)], "truncated")

    def _bad_not_an_object(self, fields: dict[str, Any]) -> Fuzzed:
        other = self.rng.choice([[fields], fields["value"], "reading", None, True, []])
        return self._sure(fields, json.dumps(other).encode(), "not_an_object")

    def _bad_missing_field(self, fields: dict[str, Any]) -> Fuzzed:
        del fields[self.rng.choice(FIELDS)]
        return self._sure(fields, encode(fields), "missing_field")

    def _bad_wrong_json_type(self, fields: dict[str, Any]) -> Fuzzed:
        name = self.rng.choice(FIELDS)
        fields[name] = self.rng.choice([None, [], {}, True, 12, str(fields[name])])
        return self._sure(fields, encode(fields), "wrong_json_type", sure=False)

    def _bad_non_finite(self, fields: dict[str, Any]) -> Fuzzed:
        literal = self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
        body = encode({**fields, "value": 0}).replace(b'"value":0', f'"value":{literal}'.encode())
        return self._sure(fields, body, "non_finite")

    def _bad_out_of_range(self, fields: dict[str, Any]) -> Fuzzed:
        sensor_type = CATALOGUE.get(fields["sensor_type"])
        assert sensor_type is not None
        span = sensor_type.maximum - sensor_type.minimum
        fields["value"] = self.rng.choice([sensor_type.maximum, sensor_type.minimum]) + span * (
            self.rng.choice([1, -1]) * self.rng.uniform(1.01, 10)
        )
        return self._sure(fields, encode(fields), "out_of_range")

    def _bad_sensor_id(self, fields: dict[str, Any]) -> Fuzzed:
        fields["sensor_id"] = self.rng.choice(
            ["", "ev 01", "ev/01", "ev:01", "x" * 65, "évé", "ev_01\n", "{ev}", "a*", "x" * 100_000]
        )
        return self._sure(fields, encode(fields), "bad_sensor_id")

    def _bad_unit(self, fields: dict[str, Any]) -> Fuzzed:
        fields["unit"] = self.rng.choice(["furlong", "", "KM/H", "Celsius", " volt", "%%", "null"])
        return self._sure(fields, encode(fields), "bad_unit")

    def _bad_type(self, fields: dict[str, Any]) -> Fuzzed:
        key = routing_key(fields["sensor_type"])
        other = self.rng.choice([t for t in TYPES if t != fields["sensor_type"]])
        fields["sensor_type"] = self.rng.choice([other, "warp_drive", "history", "summary", ""])
        return Fuzzed(key, encode(fields), "type_mismatch", surely_invalid=True)

    def _bad_timestamp(self, fields: dict[str, Any]) -> Fuzzed:
        moment = datetime.fromisoformat(fields["timestamp"].replace("Z", "+00:00"))
        fields["timestamp"] = self.rng.choice(
            [
                fields["timestamp"].removesuffix("Z"),  # naive
                format_timestamp(moment + timedelta(days=self.rng.randrange(1, 400))),
                "1969-12-31T23:59:59Z",
                "2024-02-30T12:00:00Z",
                "yesterday",
                "",
                "2024-02-01T25:00:00Z",
            ]
        )
        return self._sure(fields, encode(fields), "bad_timestamp")

    def _bad_invalid_utf8(self, fields: dict[str, Any]) -> Fuzzed:
        body = encode(fields).replace(b'"unit":"', b'"unit":"\xff\xfe', 1)
        return self._sure(fields, body, "invalid_utf8")

    def _bad_deeply_nested(self, fields: dict[str, Any]) -> Fuzzed:
        depth = self.rng.randrange(100, 20_000)
        body = self.rng.choice(
            [b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth]
        )
        return self._sure(fields, body, "deeply_nested")

    def _bad_flipped_byte(self, fields: dict[str, Any]) -> Fuzzed:
        body = bytearray(encode(fields))
        body[self.rng.randrange(len(body))] ^= 1 << self.rng.randrange(8)
        return self._sure(fields, bytes(body), "flipped_byte", sure=False)

    def _bad_duplicate_key(self, fields: dict[str, Any]) -> Fuzzed:
        body = encode(fields)[:-1] + b',"value":"twice"}'
        return self._sure(fields, body, "duplicate_key", sure=False)

    def _sure(self, fields: dict[str, Any], body: bytes, kind: str, *, sure: bool = True) -> Fuzzed:
        """The message for ``body``, to its type's queue (any type's, if the type is gone)."""
        sensor_type = fields.get("sensor_type")
        if not isinstance(sensor_type, str) or sensor_type not in TYPES:
            sensor_type = self.rng.choice(TYPES)
        return Fuzzed(routing_key(sensor_type), body, kind, surely_invalid=sure)


def encode(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
