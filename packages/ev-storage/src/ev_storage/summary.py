"""Reading the per-sensor aggregates hash written by the write script.

Layout: one hash per sensor, six fields per type, ``<type>:count``, ``<type>:min``, ``<type>:max``,
``<type>:sum`` (decimal text that parses back to the exact float), ``<type>:first`` and
``<type>:last`` (timestamps in ms). The mean is computed on read, so a write updates plain fields.
The write script also keeps ``<type>:latest`` there (the ms of the stored latest reading), which
readers ignore.
"""

from __future__ import annotations

from collections.abc import Mapping

from ev_schemas import Catalogue, SensorSummary, TypeSummary, from_epoch_ms
from ev_storage.errors import StorageError

STATS = ("count", "min", "max", "sum", "first", "last")


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def summary_from_hash(
    sensor_id: str, fields: Mapping[bytes, bytes] | Mapping[str, str], catalogue: Catalogue
) -> SensorSummary | None:
    """The :class:`SensorSummary` of a summary hash, or None if it has no type of ``catalogue``.

    Types missing from the catalogue (no longer configured) are left out: their unit is unknown.
    """
    by_type: dict[str, dict[str, str]] = {}
    for name, value in fields.items():
        sensor_type, _, stat = _text(name).rpartition(":")
        by_type.setdefault(sensor_type, {})[stat] = _text(value)
    types: dict[str, TypeSummary] = {}
    for sensor_type in catalogue:
        stats = by_type.get(sensor_type)
        if stats:
            types[sensor_type] = _type_summary(sensor_id, sensor_type, stats, catalogue)
    return SensorSummary(sensor_id=sensor_id, types=types) if types else None


def _type_summary(
    sensor_id: str, sensor_type: str, stats: dict[str, str], catalogue: Catalogue
) -> TypeSummary:
    try:
        count = int(stats["count"])
        total = float(stats["sum"])
        if count < 1:
            raise ValueError(f"count {count}")
        return TypeSummary(
            count=count,
            min=float(stats["min"]),
            max=float(stats["max"]),
            mean=total / count,
            first=from_epoch_ms(int(stats["first"])),
            last=from_epoch_ms(int(stats["last"])),
            unit=catalogue[sensor_type].unit,
        )
    except (KeyError, ValueError) as exc:
        # The script writes all six fields at once; anything else was written by someone else.
        raise StorageError(
            f"damaged summary of {sensor_type!r} for sensor {sensor_id!r}: {exc}"
        ) from exc
