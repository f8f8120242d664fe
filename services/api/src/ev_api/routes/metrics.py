"""``GET /metrics``: the Prometheus scrape endpoint (no key, not in OpenAPI).

Meant for an internal scrape network, like ``/health``: it needs no API key and is not rate
limited. It shows request counts per route, never readings or keys.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ev_api.metrics import ApiMetrics

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    registry = api_metrics(request).registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def api_metrics(request: Request) -> ApiMetrics:
    found = getattr(request.app.state, "metrics", None)
    if not isinstance(found, ApiMetrics):
        raise RuntimeError("the app has no ApiMetrics (built without create_app?)")
    return found
