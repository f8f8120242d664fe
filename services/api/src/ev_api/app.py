"""The application factory and its lifespan, which owns the Redis client, the reader and the hub.

``uvicorn ev_api.app:app`` serves an app built on first access from the environment's settings;
tests call :func:`create_app` with their own. Nothing connects at import time.
"""

from __future__ import annotations

import gc
import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute

from ev_api.__about__ import __version__
from ev_api.auth import require_admin_key, require_api_key
from ev_api.deps import Resources, enforce_rate_limit, get_settings, resolve_settings
from ev_api.errors import InternalErrors, install_error_handlers
from ev_api.limiter import RateLimiter
from ev_api.live_fanout import LiveFanout
from ev_api.metrics import ApiMetrics, MetricsMiddleware
from ev_api.routes import (
    aggregate,
    alarm_rules,
    alarms,
    export,
    fleet_aggregate,
    health,
    live,
    live_alarms,
    metrics,
    sensors,
)
from ev_api.routes import catalogue as fleet
from ev_api.settings import Settings
from ev_api.storage_client import pubsub_client, redis_client
from ev_storage import AlarmReader, AlarmRulesStore, CatalogueReader, KeyLayout, ReadingReader

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DESCRIPTION = """\
Latest values, history and aggregates of EV fleet telemetry stored in Redis, its alarms, and
WebSocket streams (not listed below: WebSockets have no OpenAPI operations):

- `WS /api/v1/ws/sensor/{sensor_id}`: the sensor's latest readings, then each newly stored one
  (Reading JSON); `?types=` filters them; with `?alarms=true` also the sensor's alarm events
  (`{"event": "alarm", "kind", "at", "alarm": Alarm}`), after `{"event": "subscribed"}`.
- `WS /api/v1/ws/alarms`: every alarm event of the fleet, filters `severity`, `sensor_type`,
  `rule`, `prefix`; first `{"event": "subscribed"}`, and `{"event": "gap"}` when events may
  have been lost. Bad parameters close with 1008 and the reason.

Every `/api/v1` route needs header `X-API-Key` when the server runs with `API_KEYS`; the
WebSocket also accepts `?api_key=`. Errors are JSON with a `detail` field; Redis being unavailable
is a 503.
"""
TAGS = [
    {"name": "sensors", "description": "Readings of one sensor."},
    {
        "name": "catalogue",
        "description": "The fleet: which sensors exist, how many, and their readings aggregated "
        "over many sensors.",
    },
    {
        "name": "alarms",
        "description": "The alarm rules in force; reading and replacing them needs an admin key "
        "(API_ADMIN_KEYS).",
    },
    {"name": "health", "description": "Liveness and readiness; never needs a key."},
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Open the Redis client, reader and live hub for the process; close them at shutdown."""
    settings = resolve_settings(app)
    catalogue = settings.catalogue()
    client = redis_client(settings)
    live_client = pubsub_client(settings, client)
    reader = ReadingReader(client, settings.storage(), catalogue)
    catalogue_reader = CatalogueReader(client, settings.storage(), catalogue)
    hub = LiveFanout(
        live_client,
        channel_for=reader.keys.live_channel,
        keys=reader.keys,
        queue_size=settings.ws_queue_size,
        subscribe_timeout=2 * settings.redis.socket_timeout_s,
    )
    limiter = None
    if settings.rate_limit_per_minute:
        limiter = RateLimiter.on_redis(
            client,
            prefix=settings.redis.key_prefix,
            limit=settings.rate_limit_per_minute,
            fail_open=settings.rate_limit_fail_open,
            timeout=settings.redis.socket_timeout_s,
        )
    await hub.start()
    # Names and switches only: never the password or the API keys.
    log.info(
        "ev-api %s: Redis %s:%s db %s (TLS %s, password %s), key prefix %r, %s sensor types, "
        "authentication %s (%d keys, %d admin keys), %d alarm rules from the file, rate limit %s",
        __version__,
        settings.redis.host,
        settings.redis.port,
        settings.redis.db,
        "on" if settings.redis.tls else "off",
        "set" if settings.redis.password is not None else "unset",
        settings.redis.key_prefix,
        len(catalogue),
        "on" if settings.auth_enabled else "off",
        len(settings.api_keys),
        len(settings.api_admin_keys),
        len(settings.alarm_rules().rules) + len(settings.alarm_rules().stale),
        _describe_limit(settings),
    )
    if app.state.freeze_gc:
        # Long-lived startup objects leave the GC's generations: fewer, shorter full collections,
        # which otherwise dominate the tail latency of this service.
        gc.freeze()
    try:
        yield {
            "resources": Resources(
                catalogue=catalogue,
                reader=reader,
                hub=hub,
                limiter=limiter,
                catalogue_reader=catalogue_reader,
                alarm_reader=AlarmReader(client, settings.storage()),
                alarm_rules_store=AlarmRulesStore(client, KeyLayout(settings.redis.key_prefix)),
            )
        }
    finally:
        await hub.aclose()
        if live_client is not client:
            await live_client.aclose()
        await client.aclose()


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> FastAPI:
    """The API, with ``settings`` (default: the environment's) shared by routes and lifespan."""
    app = FastAPI(
        title="EV telemetry API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings if settings is not None else get_settings()
    app.state.freeze_gc = freeze_gc
    app.state.metrics = api_metrics = ApiMetrics()
    install_error_handlers(app)
    routers = (
        health.router,
        alarms.router,
        export.router,
        aggregate.router,
        sensors.router,
        fleet.router,
        fleet_aggregate.router,
        alarm_rules.router,
    )
    for router in (*routers, live.router, live_alarms.router):
        _summaries_from_docstrings(router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    # Before the sensors router, whose /{sensor_id}/{sensor_type} would take "history.csv" and
    # "aggregate".
    app.include_router(export.router, prefix=API_PREFIX, dependencies=_guards(app.state.settings))
    app.include_router(
        aggregate.router, prefix=API_PREFIX, dependencies=_guards(app.state.settings)
    )
    app.include_router(alarms.router, prefix=API_PREFIX, dependencies=_guards(app.state.settings))
    app.include_router(sensors.router, prefix=API_PREFIX, dependencies=_guards(app.state.settings))
    app.include_router(fleet.router, prefix=API_PREFIX, dependencies=_guards(app.state.settings))
    app.include_router(
        fleet_aggregate.router, prefix=API_PREFIX, dependencies=_guards(app.state.settings)
    )
    app.include_router(
        alarm_rules.router, prefix=API_PREFIX, dependencies=_admin_guards(app.state.settings)
    )
    app.include_router(live.router, prefix=API_PREFIX)
    app.include_router(live_alarms.router, prefix=API_PREFIX)
    # Metrics label requests by route template, which needs each router's prefix.
    api_metrics.routes.add(health.router)
    api_metrics.routes.add(metrics.router)
    api_metrics.routes.add(export.router, API_PREFIX)
    api_metrics.routes.add(aggregate.router, API_PREFIX)
    api_metrics.routes.add(sensors.router, API_PREFIX)
    api_metrics.routes.add(fleet.router, API_PREFIX)
    api_metrics.routes.add(fleet_aggregate.router, API_PREFIX)
    api_metrics.routes.add(alarm_rules.router, API_PREFIX)
    api_metrics.routes.add(live.router, API_PREFIX)
    api_metrics.routes.add(live_alarms.router, API_PREFIX)
    # Inside the metrics, so that they count the 500 it answers.
    app.add_middleware(InternalErrors)
    app.add_middleware(MetricsMiddleware, metrics=api_metrics)
    return app


def _guards(settings: Settings) -> list[Any]:
    """The REST routes' checks this server's settings call for, authentication first (an
    unauthenticated request is refused without touching Redis). A check that is off is not
    there at all: every dependency costs each request, and the OpenAPI document then says
    truthfully whether a key is needed."""
    guards = []
    if settings.auth_enabled:
        guards.append(Depends(require_api_key))
    if settings.rate_limit_per_minute:
        guards.append(Depends(enforce_rate_limit))
    return guards


def _admin_guards(settings: Settings) -> list[Any]:
    """The alarm rules routes' checks: an admin key always (403 when the server has none),
    then the same rate limit as every route."""
    guards = [Depends(require_admin_key)]
    if settings.rate_limit_per_minute:
        guards.append(Depends(enforce_rate_limit))
    return guards


def _describe_limit(settings: Settings) -> str:
    if not settings.rate_limit_per_minute:
        return "off"
    mode = "open" if settings.rate_limit_fail_open else "closed"
    return f"{settings.rate_limit_per_minute}/min per client (fails {mode})"


def _summaries_from_docstrings(router: APIRouter) -> None:
    """A route's docstring's first line is its OpenAPI summary, the rest its description.

    Included routers keep their own route objects, so this edits them in place (idempotent).
    """
    for route in router.routes:
        if isinstance(route, APIRoute) and route.summary is None and route.description:
            first, _, rest = inspect.cleandoc(route.description).partition("\n")
            route.summary = first.strip().rstrip(".")
            route.description = rest.strip()


@cache
def _default_app() -> FastAPI:
    return create_app(freeze_gc=True)


def __getattr__(name: str) -> FastAPI:
    # ``app`` is built on first access, so importing this module reads no environment.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
