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
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import EqualJitterBackoff

from ev_api.__about__ import __version__
from ev_api.auth import require_api_key
from ev_api.deps import Resources, get_settings, resolve_settings
from ev_api.errors import install_error_handlers
from ev_api.live import LiveHub
from ev_api.routes import health, live, sensors
from ev_api.settings import Settings
from ev_storage import ReadingReader

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DESCRIPTION = """\
Latest values, history and aggregates of EV fleet telemetry stored in Redis, and a WebSocket
stream of new readings.

Every `/api/v1` route needs header `X-API-Key` when the server runs with `API_KEYS`; the
WebSocket also accepts `?api_key=`. Errors are JSON with a `detail` field; Redis being unavailable
is a 503.
"""
TAGS = [
    {"name": "sensors", "description": "Readings of one sensor."},
    {"name": "health", "description": "Liveness and readiness; never needs a key."},
]


def redis_client(settings: Settings) -> Redis:
    """The process's one Redis client: bounded timeouts and quick, few retries, so a request or
    a health check fails within about ``REDIS_SOCKET_TIMEOUT_S`` rather than hanging."""
    password = settings.redis_password
    return Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        password=None if password is None else password.get_secret_value(),
        socket_timeout=settings.redis_socket_timeout_s,
        socket_connect_timeout=settings.redis_socket_timeout_s,
        retry=Retry(EqualJitterBackoff(cap=0.1, base=0.01), retries=2),
        decode_responses=False,  # stored JSON is returned as bytes, untouched
        client_name="ev-api",
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Open the Redis client, reader and live hub for the process; close them at shutdown."""
    settings = resolve_settings(app)
    catalogue = settings.catalogue()
    client = redis_client(settings)
    reader = ReadingReader(client, settings.storage(), catalogue)
    hub = LiveHub(
        client,
        channel_for=reader.keys.live_channel,
        queue_size=settings.ws_queue_size,
        subscribe_timeout=2 * settings.redis_socket_timeout_s,
    )
    await hub.start()
    log.info(
        "ev-api %s: Redis %s:%s db %s, key prefix %r, %s sensor types, authentication %s",
        __version__,
        settings.redis_host,
        settings.redis_port,
        settings.redis_db,
        settings.redis_key_prefix,
        len(catalogue),
        "on" if settings.auth_enabled else "off",
    )
    if app.state.freeze_gc:
        # Long-lived startup objects leave the GC's generations: fewer, shorter full collections,
        # which otherwise dominate the tail latency of this service.
        gc.freeze()
    try:
        yield {"resources": Resources(catalogue=catalogue, reader=reader, hub=hub)}
    finally:
        await hub.aclose()
        await client.aclose()


def create_app(settings: Settings | None = None, *, freeze_gc: bool = False) -> FastAPI:
    """The API. ``settings`` default to the environment's; given, they override
    :func:`~ev_api.deps.get_settings` for the routes and the lifespan alike."""
    app = FastAPI(
        title="EV telemetry API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.state.freeze_gc = freeze_gc
    install_error_handlers(app)
    for router in (health.router, sensors.router, live.router):
        _summaries_from_docstrings(router)
    app.include_router(health.router)
    app.include_router(sensors.router, prefix=API_PREFIX, dependencies=[Depends(require_api_key)])
    app.include_router(live.router, prefix=API_PREFIX)
    return app


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
