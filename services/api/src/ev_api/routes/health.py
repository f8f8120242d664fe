"""Health, no key needed: ``/health/live`` (the process serves), ``/health/ready`` (Redis answers).

``GET /health`` is the contract's combined check and answers as ``/health/ready``. An orchestrator
restarts on a failed liveness probe and only stops routing traffic on a failed readiness probe:
Redis being down is a readiness problem, which a restart would not fix.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ev_api.__about__ import __version__
from ev_api.deps import ReaderDep, SettingsDep, StrictQuery
from ev_api.settings import Settings
from ev_schemas import DependencyHealth, HealthReport
from ev_storage import ReadingReader, StorageError

router = APIRouter(tags=["health"], dependencies=[StrictQuery])


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": HealthReport, "description": "Redis does not answer."}
}


@router.get("/health", response_model=HealthReport, responses=_NOT_READY)
async def health(reader: ReaderDep, settings: SettingsDep) -> JSONResponse:
    """Report whether Redis answers, and how fast."""
    return await redis_report(reader, settings)


@router.get("/health/ready", response_model=HealthReport, responses=_NOT_READY)
async def ready(reader: ReaderDep, settings: SettingsDep) -> JSONResponse:
    """Readiness: 200 when Redis answers, 503 naming the failing dependency otherwise."""
    return await redis_report(reader, settings)


@router.get("/health/live", response_model=HealthReport)
async def live() -> JSONResponse:
    """Liveness: 200 whenever the process serves requests; checks no dependency."""
    report = HealthReport(status="ok", version=__version__, dependencies={})
    return JSONResponse(report.model_dump(mode="json"))


async def redis_report(reader: ReadingReader, settings: Settings) -> JSONResponse:
    """200 with Redis' latency when it answers, else 503 with its error."""
    try:
        # The client's own timeouts bound each attempt; this bounds the retries too.
        async with asyncio.timeout(settings.redis.socket_timeout_s):
            latency_ms = await reader.ping()
    except (StorageError, TimeoutError) as exc:
        error = str(exc) or f"no answer within {settings.redis.socket_timeout_s:g} s"
        redis = DependencyHealth(status="unavailable", error=error)
        code = 503
    else:
        redis = DependencyHealth(status="ok", latency_ms=round(latency_ms, 3))
        code = 200
    report = HealthReport(status=redis.status, version=__version__, dependencies={"redis": redis})
    return JSONResponse(report.model_dump(mode="json"), status_code=code)
