"""The fleet: N vehicles ticking in simulated time, turned into a stream of messages.

Deterministic given the seed: each vehicle draws from its own random stream (so adding vehicles
does not change the others), as do sensor noise and faults. Each tick advances every vehicle by
``tick`` seconds of simulated time and emits one reading per configured type. Vehicles tick at
their own offset within the tick, so their timestamps interleave as real ones would.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from ev_messaging import routing_key
from ev_schemas import (
    SENSOR_ID_RE,
    Catalogue,
    default_catalogue,
    format_timestamp,
    from_epoch_ms,
    to_epoch_ms,
    utc_now,
)
from ev_simulator.errors import ConfigurationError
from ev_simulator.faults import FaultMaker
from ev_simulator.message import BAD_KINDS, Kind, Message, SimReading
from ev_simulator.sensors import SIMULATED_TYPES, UNIT_PROFILES, Channel, channels
from ev_simulator.vehicle import Vehicle

#: Ticks shorter than this would make an out-of-order reading (half a tick early) collide.
MIN_TICK_S = 0.01
_TRICKY = frozenset({Kind.DUPLICATE, Kind.OUT_OF_ORDER})


@dataclass(frozen=True, slots=True)
class _Output:
    """A channel with its JSON pre-rendered around the timestamp and the value."""

    channel: Channel
    routing_key: str
    head: str  # up to the opening quote of the timestamp
    tail: str  # after the value


@dataclass(frozen=True, slots=True)
class _Member:
    vehicle: Vehicle
    offset_ms: int
    profile: str
    outputs: tuple[_Output, ...]


def sensor_ids(vehicles: int, prefix: str = "ev_") -> list[str]:
    """``ev_0001``, ``ev_0002``, ...: at least four digits, more for larger fleets."""
    width = max(4, len(str(vehicles)))
    return [f"{prefix}{number:0{width}d}" for number in range(1, vehicles + 1)]


def parse_kinds(names: Iterable[str | Kind]) -> tuple[Kind, ...]:
    """Bad kinds from their names; ``ConfigurationError`` lists the known ones."""
    kinds = []
    for name in names:
        try:
            kind = Kind(name)
        except ValueError:
            kind = Kind.VALID
        if kind is Kind.VALID:
            known = ", ".join(BAD_KINDS)
            raise ConfigurationError(f"unknown bad kind {str(name)!r}; known: {known}")
        kinds.append(kind)
    return tuple(dict.fromkeys(kinds))


class Fleet:
    """``vehicles`` simulated EVs reporting ``types``; iterate :meth:`messages` to get traffic.

    ``bad_ratio`` of the messages are of a kind drawn from ``bad_kinds``: an invalid kind replaces
    the reading it was made from (a corrupted transmission), a duplicate or out-of-order reading
    comes in addition. ``alt_unit_ratio`` of the vehicles report some types in alternative units.
    ``now`` (default: the clock) anchors future timestamps; ``start`` (default: ``now``) is the
    simulated time of the first tick.
    """

    def __init__(
        self,
        vehicles: int,
        seed: int,
        types: Sequence[str] | None = None,
        *,
        start: datetime | None = None,
        tick: float = 1.0,
        bad_ratio: float = 0.0,
        bad_kinds: Iterable[Kind | str] | None = None,
        alt_unit_ratio: float = 0.0,
        id_prefix: str = "ev_",
        now: datetime | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        if vehicles < 1:
            raise ConfigurationError("a fleet needs at least one vehicle")
        if tick < MIN_TICK_S:
            raise ConfigurationError(f"tick must be at least {MIN_TICK_S} s")
        if not 0.0 <= bad_ratio <= 1.0 or not 0.0 <= alt_unit_ratio <= 1.0:
            raise ConfigurationError("bad_ratio and alt_unit_ratio must be between 0 and 1")
        self.catalogue = catalogue or default_catalogue()
        self.types = tuple(dict.fromkeys(types or SIMULATED_TYPES))
        self.seed = seed
        self.tick = tick
        self.bad_ratio = bad_ratio
        self.bad_kinds = parse_kinds(BAD_KINDS if bad_kinds is None else bad_kinds)
        if bad_ratio > 0.0 and not self.bad_kinds:
            raise ConfigurationError("bad_ratio > 0 needs at least one bad kind")
        if bad_ratio >= 1.0 and set(self.bad_kinds) <= _TRICKY:
            raise ConfigurationError("duplicates and late readings need valid readings too")
        now = now or utc_now()
        self.start_ms = to_epoch_ms(start or now)
        self.tick_ms = round(tick * 1000)
        self._now_ms = to_epoch_ms(now)
        self._members = self._build(vehicles, seed, id_prefix, alt_unit_ratio)

    def _build(self, count: int, seed: int, prefix: str, alt_ratio: float) -> list[_Member]:
        layout = random.Random(f"{seed}:layout")
        members = []
        for sensor_id in sensor_ids(count, prefix):
            if not SENSOR_ID_RE.fullmatch(sensor_id):
                raise ConfigurationError(f"sensor id {sensor_id!r} is not valid; change the prefix")
            vehicle = Vehicle.random(sensor_id, random.Random(f"{seed}:vehicle:{sensor_id}"))
            profile = "metric"
            if layout.random() < alt_ratio:
                profile = layout.choice(sorted(UNIT_PROFILES))
            offset = layout.randrange(self.tick_ms)
            outputs = []
            for channel in channels(self.types, profile, self.catalogue):
                names = {"sensor_id": sensor_id, "sensor_type": channel.sensor_type}
                head = json.dumps(names, separators=(",", ":"))[:-1] + ',"timestamp":"'
                tail = f'"unit":{json.dumps(channel.unit)}}}'
                outputs.append(_Output(channel, routing_key(channel.sensor_type), head, tail))
            members.append(_Member(vehicle, offset, profile, tuple(outputs)))
        return members

    @property
    def vehicles(self) -> list[Vehicle]:
        return [member.vehicle for member in self._members]

    def profile(self, sensor_id: str) -> str:
        """The unit profile ("metric", "imperial" or "raw") of a vehicle."""
        for member in self._members:
            if member.vehicle.sensor_id == sensor_id:
                return member.profile
        raise KeyError(sensor_id)

    def readings(self) -> Iterator[Message]:
        """Valid readings only, forever: every vehicle, every type, tick after tick."""
        noise = random.Random(f"{self.seed}:noise")
        dt = self.tick_ms / 1000.0
        tick_start = self.start_ms
        first = True
        while True:
            for member in self._members:
                vehicle = member.vehicle
                if not first:
                    vehicle.advance(dt)
                at_ms = tick_start + member.offset_ms
                stamp = format_timestamp(from_epoch_ms(at_ms))
                sensor_id = vehicle.sensor_id
                for output in member.outputs:
                    channel = output.channel
                    value = channel.value(vehicle, noise)
                    body = f'{output.head}{stamp}","value":{value!r},{output.tail}'
                    reading = SimReading(sensor_id, channel.sensor_type, at_ms, value, channel.unit)
                    yield Message(output.routing_key, body.encode(), Kind.VALID, at_ms, reading)
            first = False
            tick_start += self.tick_ms

    def messages(self, count: int | None = None) -> Iterator[Message]:
        """``count`` messages (forever when None), valid and bad mixed at ``bad_ratio``."""
        rng = random.Random(f"{self.seed}:faults")
        faults = FaultMaker(
            rng, self.catalogue, self.types, tick_ms=self.tick_ms, now_ms=self._now_ms
        )
        ratio, kinds = self.bad_ratio, self.bad_kinds
        valid = self.readings()
        template = next(valid)
        produced = 0
        while count is None or produced < count:
            if ratio and rng.random() < ratio:
                assert template.reading is not None
                message = faults.make(rng.choice(kinds), template.reading)
                if message is not None:
                    if message.kind is Kind.OUT_OF_ORDER:
                        faults.remember(message)
                    elif message.kind is not Kind.DUPLICATE:
                        template = next(valid)  # the corrupted reading is never sent
                    produced += 1
                    yield message
                    continue
            faults.remember(template)
            produced += 1
            yield template
            template = next(valid)
