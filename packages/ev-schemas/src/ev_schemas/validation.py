"""Turning a published body into a canonical :class:`Reading`, or a precise reason why not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from ev_schemas.catalogue import Catalogue, default_catalogue
from ev_schemas.errors import InvalidReading
from ev_schemas.reading import SENSOR_ID_RE, SENSOR_ID_RULE, PublishedReading, Reading
from ev_schemas.timestamps import normalise, to_epoch_ms, utc_now

#: Converted values are rounded to this many decimals: 77 °F is 25.0, not 25.000000000000004.
CONVERTED_DECIMALS = 6
_SHOWN_CHARS = 64
_EPOCH_MIN = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def shown(value: object) -> str:
    """``repr`` of untrusted input, cut short so a hostile body cannot bloat a header or a log."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every failing field, e.g. ``value: Input should be a finite number``."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class ReadingValidator:
    """Validates and normalises published readings against a catalogue.

    ``max_future_skew`` bounds how far ahead of ``clock()`` a timestamp may be (vehicle clocks
    drift, but a reading from next week is a bug and would pin "latest" forever).
    """

    catalogue: Catalogue = field(default_factory=default_catalogue)
    max_future_skew: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = utc_now

    def parse(self, body: bytes | str, *, expected_type: str | None = None) -> Reading:
        """Parse a JSON body; raise :class:`InvalidReading` with a human-readable reason."""
        try:
            published = PublishedReading.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidReading(describe_validation_error(exc)) from None
        return self.normalise(published, expected_type=expected_type)

    def normalise(
        self, published: PublishedReading, *, expected_type: str | None = None
    ) -> Reading:
        """Check a structurally valid reading against the catalogue and the clock."""
        if not SENSOR_ID_RE.fullmatch(published.sensor_id):
            raise InvalidReading(f"sensor_id {shown(published.sensor_id)} is not {SENSOR_ID_RULE}")
        sensor_type = self.catalogue.get(published.sensor_type)
        if sensor_type is None:
            raise InvalidReading(
                f"sensor_type {shown(published.sensor_type)} is not configured; "
                f"configured: {', '.join(self.catalogue)}"
            )
        if expected_type is not None and published.sensor_type != expected_type:
            raise InvalidReading(
                f"sensor_type {shown(published.sensor_type)} does not match "
                f"the routing key's type {shown(expected_type)}"
            )
        conversion = sensor_type.conversion(published.unit)
        if conversion is None:
            raise InvalidReading(
                f"unit {shown(published.unit)} is not known for {sensor_type.name}; "
                f"accepted: {', '.join(sensor_type.accepted_units)}"
            )
        value = published.value
        if published.unit != sensor_type.unit:
            value = round(conversion.apply(value), CONVERTED_DECIMALS)
        if not sensor_type.minimum <= value <= sensor_type.maximum:
            converted = (
                ""
                if published.unit == sensor_type.unit
                else f" ({published.value:g} {published.unit})"
            )
            raise InvalidReading(
                f"value {value:g} {sensor_type.unit}{converted} is outside the plausible range "
                f"of {sensor_type.name}: {sensor_type.minimum:g} to {sensor_type.maximum:g}"
            )
        try:
            timestamp = normalise(published.timestamp)
        except ValueError as exc:  # in UTC before year 1 or after 9999
            raise InvalidReading(f"timestamp: {exc}") from None
        if timestamp < _EPOCH_MIN:
            raise InvalidReading(f"timestamp {timestamp.isoformat()} is before 1970")
        latest_allowed = self.clock() + self.max_future_skew
        if timestamp > latest_allowed:
            raise InvalidReading(
                f"timestamp {timestamp.isoformat()} is more than "
                f"{self.max_future_skew.total_seconds():g} s in the future"
            )
        return Reading.trusted(
            published.sensor_id, sensor_type.name, timestamp, value, sensor_type.unit
        )


def timestamp_ms(reading: Reading) -> int:
    """The reading's identity in time: milliseconds since the epoch."""
    return to_epoch_ms(reading.timestamp)
