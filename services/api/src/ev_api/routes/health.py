"""``GET /health``: whether this process can serve, i.e. whether Redis answers (no key needed)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ev_api.__about__ import __version__
from ev_api.deps import ReaderDep, SettingsDep, StrictQuery
from ev_schemas import DependencyHealth, HealthReport
from ev_storage import StorageError

router = APIRouter(tags=["health"], dependencies=[StrictQuery])


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "Redis does not answer."}},
)
async def health(reader: ReaderDep, settings: SettingsDep) -> JSONResponse:
    """Report whether Redis answers, and how fast."""
    try:
        # The client's own timeouts bound each attempt; this bounds the retries too.
        async with asyncio.timeout(settings.redis_socket_timeout_s):
            latency_ms = await reader.ping()
    except (StorageError, TimeoutError) as exc:
        error = str(exc) or f"no answer within {settings.redis_socket_timeout_s:g} s"
        redis = DependencyHealth(status="unavailable", error=error)
        code = 503
    else:
        redis = DependencyHealth(status="ok", latency_ms=round(latency_ms, 3))
        code = 200
    report = HealthReport(status=redis.status, version=__version__, dependencies={"redis": redis})
    return JSONResponse(report.model_dump(mode="json"), status_code=code)
