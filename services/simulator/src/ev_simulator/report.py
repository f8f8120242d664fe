"""What a run published, and what the pipeline should therefore contain.

Counts are of messages handed to the broker, by kind and by routing key (so queue depths can be
checked), plus, per sensor and type, how many distinct valid readings were sent and the newest:
exactly what the consumer should store (``count`` distinct readings, "latest" = ``last_ms``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ev_schemas import format_timestamp, from_epoch_ms
from ev_simulator.message import INVALID_KINDS, Kind, Message


@dataclass(slots=True)
class SensorExpectation:
    """The distinct valid readings of one sensor and type: how many, first and newest."""

    count: int
    first_ms: int
    last_ms: int
    last_value: float  # in ``last_unit``, as published
    last_unit: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": format_timestamp(from_epoch_ms(self.first_ms)),
            "last": format_timestamp(from_epoch_ms(self.last_ms)),
            "last_value": self.last_value,
            "last_unit": self.last_unit,
        }


@dataclass(slots=True)
class Tally:
    """Counts messages as they are published; cheap enough to call once per message."""

    kinds: Counter[Kind] = field(default_factory=Counter)
    routing_keys: Counter[str] = field(default_factory=Counter)
    sensors: dict[tuple[str, str], SensorExpectation] = field(default_factory=dict)

    def add(self, message: Message) -> None:
        self.kinds[message.kind] += 1
        self.routing_keys[message.routing_key] += 1
        reading = message.reading
        if reading is None or message.kind is Kind.DUPLICATE:
            return
        key = (reading.sensor_id, reading.sensor_type)
        seen = self.sensors.get(key)
        at = reading.timestamp_ms
        if seen is None:
            self.sensors[key] = SensorExpectation(1, at, at, reading.value, reading.unit)
            return
        seen.count += 1
        seen.first_ms = min(seen.first_ms, at)
        if at > seen.last_ms:
            seen.last_ms, seen.last_value, seen.last_unit = at, reading.value, reading.unit


@dataclass(slots=True)
class Report:
    """The outcome of a run; ``to_json`` is what ``--report-json`` writes."""

    seed: int
    vehicles: int
    types: tuple[str, ...]
    sent: int  # handed to the publisher
    confirmed: int  # acknowledged by the broker (publisher confirms)
    returned: int
    nacked: int
    elapsed_s: float
    tally: Tally
    interrupted: bool = False
    error: str | None = None

    @property
    def valid(self) -> int:
        return self.tally.kinds[Kind.VALID]

    @property
    def duplicates(self) -> int:
        return self.tally.kinds[Kind.DUPLICATE]

    @property
    def out_of_order(self) -> int:
        return self.tally.kinds[Kind.OUT_OF_ORDER]

    @property
    def invalid(self) -> dict[str, int]:
        """Counts of each invalid kind (including ``unknown_type``), only those that occurred."""
        tricky = (Kind.VALID, Kind.DUPLICATE, Kind.OUT_OF_ORDER)
        return {str(kind): n for kind, n in sorted(self.tally.kinds.items()) if kind not in tricky}

    @property
    def rate(self) -> float:
        """Confirmed messages per second of wall-clock time."""
        return self.confirmed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def complete(self) -> bool:
        """Whether everything sent was confirmed."""
        return self.error is None and self.confirmed == self.sent

    def expected(self) -> dict[str, int]:
        """What the pipeline should hold once the consumer has drained the queues."""
        kinds = self.tally.kinds
        return {
            "stored_readings": kinds[Kind.VALID] + kinds[Kind.OUT_OF_ORDER],
            "invalid_queue": sum(kinds[kind] for kind in INVALID_KINDS),
            "unrouted_queue": kinds[Kind.UNKNOWN_TYPE],
        }

    def to_dict(self, *, sensors: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = {
            "seed": self.seed,
            "vehicles": self.vehicles,
            "types": list(self.types),
            "published": self.confirmed,
            "sent": self.sent,
            "returned": self.returned,
            "nacked": self.nacked,
            "complete": self.complete,
            "interrupted": self.interrupted,
            "error": self.error,
            "valid": self.valid,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "invalid": self.invalid,
            "by_routing_key": dict(sorted(self.tally.routing_keys.items())),
            "expected": self.expected(),
            "elapsed_s": round(self.elapsed_s, 3),
            "rate": round(self.rate, 1),
        }
        if sensors:
            by_sensor: dict[str, dict[str, Any]] = {}
            for (sensor_id, sensor_type), seen in sorted(self.tally.sensors.items()):
                by_sensor.setdefault(sensor_id, {})[sensor_type] = seen.as_dict()
            result["sensors"] = by_sensor
        return result

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    def summary(self) -> str:
        """A few human-readable lines for the end of a run."""
        state = "interrupted" if self.interrupted else "done"
        lines = [
            f"simulator {state}: {self.confirmed} published (confirmed) of {self.sent} sent "
            f"in {self.elapsed_s:.2f} s, {self.rate:.0f} msg/s "
            f"({self.vehicles} vehicles, seed {self.seed})",
            f"  valid {self.valid}, duplicates {self.duplicates}, out of order {self.out_of_order}",
        ]
        if self.invalid:
            lines.append("  bad: " + ", ".join(f"{k} {n}" for k, n in self.invalid.items()))
        if self.returned or self.nacked:
            lines.append(f"  returned {self.returned}, nacked {self.nacked}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)
