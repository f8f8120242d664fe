"""The API's Prometheus metrics and the pure ASGI middleware that records them.

Requests are counted and timed by method, route template (``/api/v1/sensor/{sensor_id}``, never
the raw path) and status: every label has a bounded set of values. The middleware is plain ASGI,
not ``BaseHTTPMiddleware``: per request it costs two clock reads, a dict lookup and two metric
updates. Metrics live in one registry per app, served by ``GET /metrics``.

One process per container is the model: with several uvicorn workers each would count alone and
a scrape would see one of them (prometheus_client's multiprocess mode would be needed).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ev_api.__about__ import __version__
from ev_service.metrics import service_registry

#: Route label of a request no route matched (a 404 for an unknown path).
UNMATCHED = "<unmatched>"
#: Methods kept as they are; any other becomes OTHER_METHOD (a client chooses the method).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
#: Seconds: the API answers in about a millisecond; a hung Redis costs REDIS_SOCKET_TIMEOUT_S.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class RouteTemplates:
    """The full path template of each route, prefix included.

    FastAPI keeps an included router's own route objects, whose ``path`` lacks the prefix the
    router was included with; routes registered here get it back. Others (older FastAPI copies
    routes with the full path) answer their own ``path``.
    """

    def __init__(self) -> None:
        self._by_route: dict[int, str] = {}

    def add(self, router: APIRouter, prefix: str = "") -> None:
        for route in router.routes:
            path = getattr(route, "path", None)
            if isinstance(path, str):
                self._by_route[id(route)] = prefix + path

    def of(self, scope: Scope) -> str:
        """The template of the route that served ``scope``, or :data:`UNMATCHED`."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        template = self._by_route.get(id(route))
        if template is None:
            path = getattr(route, "path", None)
            template = path if isinstance(path, str) else UNMATCHED
        return template


class ApiMetrics:
    """The registry ``GET /metrics`` serves, and the request metrics the middleware records."""

    def __init__(self) -> None:
        self.registry = service_registry("api", __version__, "The API's")
        self.routes = RouteTemplates()
        self.requests = Counter(
            "ev_api_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "ev_api_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.websockets = Gauge(
            "ev_api_websockets_open", "WebSocket connections open now", registry=self.registry
        )
        self.alarms_active = Gauge(
            "ev_api_alarms_active",
            "Alarm episodes active now in the fleet, by severity and rule (read at scrape time "
            "from the fleet's alarm index)",
            ["severity", "rule"],
            registry=self.registry,
        )
        # Label lookups cost more than the updates: keep the children per label set.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def set_active_alarms(self, counts: dict[tuple[str, str], int]) -> None:
        """Replace the active-alarm gauges with ``counts`` by (severity, rule)."""
        self.alarms_active.clear()
        for (severity, rule), count in counts.items():
            self.alarms_active.labels(severity, rule).set(count)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and record its duration."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


class MetricsMiddleware:
    """Pure ASGI middleware: times and counts HTTP requests, tracks open WebSockets."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            self.metrics.websockets.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                self.metrics.websockets.dec()
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An exception before the answer started becomes a 500 (Starlette's outermost handler).
        status = 500

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            method = scope["method"]
            self.metrics.observe(
                method if method in KNOWN_METHODS else OTHER_METHOD,
                self.metrics.routes.of(scope),
                status,
                time.perf_counter() - started,
            )
