"""``GET /metrics``: the Prometheus scrape endpoint (no key, not in OpenAPI).

Meant for an internal scrape network, like ``/health``: it needs no API key and is not rate
limited. It shows request counts per route and the number of active alarms by severity and rule
(read from the fleet's alarm index at each scrape), never readings or keys.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ev_api.metrics import ApiMetrics
from ev_storage import AlarmReader, StorageError

log = logging.getLogger("ev_api")

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this process's metrics."""
    found = api_metrics(request)
    resources = getattr(request.state, "resources", None)
    alarms = getattr(resources, "alarm_reader", None)
    if isinstance(alarms, AlarmReader):
        try:
            found.set_active_alarms(await alarms.active_counts())
        except StorageError as exc:
            # Redis down: the scrape still answers (request metrics); the gauges are left out.
            log.debug("active alarms not counted: %s", exc)
            found.alarms_active.clear()
    return Response(generate_latest(found.registry), media_type=CONTENT_TYPE_LATEST)


def api_metrics(request: Request) -> ApiMetrics:
    found = getattr(request.app.state, "metrics", None)
    if not isinstance(found, ApiMetrics):
        raise RuntimeError("the app has no ApiMetrics (built without create_app?)")
    return found
