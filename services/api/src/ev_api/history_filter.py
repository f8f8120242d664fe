"""The filters every history representation takes: the time range and the types.

One dependency, so the JSON pages (``/history``) and the CSV export (``/history.csv``) accept the
same parameters with the same defaults and answer a bad one with the same 422 ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

from ev_api.deps import ResourcesDep
from ev_api.params import TimeQuery, TypesQuery, invalid_query, parse_type_filter
from ev_schemas import utc_now

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Inclusive bounds (aware datetimes) and the types asked for (None: every configured one)."""

    start: datetime
    end: datetime
    types: tuple[str, ...] | None


async def history_filter(
    resources: ResourcesDep,
    start_time: TimeQuery = None,
    end_time: TimeQuery = None,
    sensor_type: TypesQuery = None,
) -> HistoryFilter:
    """``end_time`` defaults to now and ``start_time`` to the Unix epoch (all that is retained);
    422 when the start is after the end or a type is not configured."""
    end = end_time if end_time is not None else utc_now()
    start = start_time if start_time is not None else EPOCH
    if start > end:
        raise invalid_query("start_time", "start_time is after end_time", start_time)
    try:
        types = parse_type_filter(sensor_type, resources.catalogue)
    except ValueError as exc:
        raise invalid_query("sensor_type", str(exc), sensor_type) from None
    return HistoryFilter(start=start, end=end, types=types)


HistoryFilterDep = Annotated[HistoryFilter, Depends(history_filter)]
