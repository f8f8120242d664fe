"""CSV export of a sensor's history: the whole range, streamed (``ev_api.csv_export``).

Registered before the sensors router: ``/{sensor_id}/{sensor_type}`` there would otherwise take
``history.csv`` for a sensor type.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ev_api.csv_export import (
    EXAMPLE,
    EXPORT_CHUNK_ROWS,
    CsvRows,
    CsvStreamingResponse,
    attachment,
    csv_export,
    first_chunk,
)
from ev_api.deps import ResourcesDep, StrictQuery
from ev_api.errors import error_responses
from ev_api.history_filter import HistoryFilterDep
from ev_api.params import SensorIdPath

router = APIRouter(prefix="/sensor", tags=["sensors"], dependencies=[StrictQuery])

CSV_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Every reading of the range as CSV (RFC 4180, CRLF), ascending by "
        "(timestamp, type), ending with the line `# complete: <N> rows`. A body without that "
        "line is incomplete: the export failed or the connection broke.",
        "content": {"text/csv": {"schema": {"type": "string"}, "example": EXAMPLE}},
        "headers": {
            "Content-Disposition": {
                "description": '`attachment; filename="<sensor_id>_history.csv"`',
                "schema": {"type": "string"},
            }
        },
    }
}


@router.get(
    "/{sensor_id}/history.csv",
    response_class=CsvStreamingResponse,
    responses={**CSV_RESPONSE, **error_responses(401, 422, 503)},
)
async def history_csv(
    sensor_id: SensorIdPath, resources: ResourcesDep, selected: HistoryFilterDep
) -> Response:
    """Stored readings between two instants as one CSV download, however many there are.

    The history's filters (`start_time`, `end_time`, `sensor_type`: several types merged by
    (timestamp, type)), no paging: the whole range is streamed in constant memory. Columns
    `sensor_id,sensor_type,timestamp,value,unit`, timestamps RFC 3339 UTC with `Z`, values in
    the type's canonical unit. A sensor without data gives the header and `# complete: 0 rows`,
    as the history gives an empty page. Read it with `comment="#"` (pandas) or
    `comment.char="#"` (R). `GET .../history` with `Accept: text/csv` gives one page as CSV.
    """
    catalogue = resources.catalogue
    # Checked before the answer starts: a bad argument is still a 422 here, not a broken stream.
    chunks = resources.reader.history_chunks(
        sensor_id,
        start=selected.start,
        end=selected.end,
        sensor_types=selected.types,
        chunk=EXPORT_CHUNK_ROWS,
    )
    first = await first_chunk(chunks)
    rows = CsvRows(sensor_id, {name: catalogue[name].unit for name in catalogue})
    return CsvStreamingResponse(
        csv_export(sensor_id, first, chunks, rows), headers=attachment(f"{sensor_id}_history.csv")
    )
