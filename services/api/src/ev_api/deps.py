"""Dependencies shared by the routes: settings, the lifespan's resources, the rate limit, strict
query strings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

from ev_api.credentials import presented_key
from ev_api.errors import STORAGE_UNAVAILABLE
from ev_api.limiter import LIMITER_UNAVAILABLE, RATE_LIMITED, LimiterUnavailable, RateLimiter
from ev_api.live_fanout import LiveFanout
from ev_api.settings import Settings
from ev_schemas import Catalogue
from ev_service import load_settings
from ev_storage import AlarmReader, AlarmRulesStore, CatalogueReader, ReadingReader


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once; :class:`ev_service.ConfigurationError`
    (one line naming the variable) when they cannot be used."""
    return load_settings(Settings)


def resolve_settings(app: FastAPI) -> Settings:
    """The settings an app was created with: the routes and the lifespan see the same ones."""
    settings = getattr(app.state, "settings", None)
    if not isinstance(settings, Settings):
        raise TypeError(f"the app's settings are a {type(settings).__name__}, not Settings")
    return settings


async def app_settings(connection: HTTPConnection) -> Settings:
    """The settings of the app serving this request.

    Kept on ``app.state`` rather than in ``dependency_overrides``: with any override set, FastAPI
    re-inspects every dependency on every request, which cost about 45% of the API's CPU.
    """
    return resolve_settings(connection.app)


@dataclass(frozen=True, slots=True)
class Resources:
    """What the lifespan opens once per process and every request shares."""

    catalogue: Catalogue
    reader: ReadingReader
    hub: LiveFanout
    #: None when RATE_LIMIT_PER_MINUTE is 0.
    limiter: RateLimiter | None = None
    #: The fleet catalogue's reads (GET /sensors).
    catalogue_reader: CatalogueReader | None = None
    #: A sensor's alarms (GET /sensor/{id}/alarms, POST /alarms/{id}/ack).
    alarm_reader: AlarmReader | None = None
    #: The rule set stored through /alarm-rules.
    alarm_rules_store: AlarmRulesStore | None = None


def get_resources(connection: HTTPConnection) -> Resources:
    """The lifespan's resources (works for HTTP requests and WebSockets alike)."""
    resources = getattr(connection.state, "resources", None)
    if not isinstance(resources, Resources):
        raise RuntimeError("the app's lifespan has not run: no Redis client")
    return resources


async def resources_of(connection: HTTPConnection) -> Resources:
    """:func:`get_resources` as a dependency (async: a plain function would run in a thread)."""
    return get_resources(connection)


async def get_reader(connection: HTTPConnection) -> ReadingReader:
    return get_resources(connection).reader


async def get_limiter(connection: HTTPConnection) -> RateLimiter | None:
    """The lifespan's rate limiter; None when RATE_LIMIT_PER_MINUTE is 0."""
    resources = getattr(connection.state, "resources", None)
    limiter = getattr(resources, "limiter", None)
    return limiter if isinstance(limiter, RateLimiter) else None


SettingsDep = Annotated[Settings, Depends(app_settings)]
ResourcesDep = Annotated[Resources, Depends(resources_of)]
ReaderDep = Annotated[ReadingReader, Depends(get_reader)]
LimiterDep = Annotated[RateLimiter | None, Depends(get_limiter)]


def client_identity(connection: HTTPConnection, *, keyed: bool) -> str:
    """Whom the rate limit counts: the API key when keys are configured (already checked), else
    the address. The two kinds are tagged so a key can never collide with an address."""
    if keyed:
        given = presented_key(connection)
        return f"key:{'' if given is None else given}"
    host = connection.client.host if connection.client is not None else "unknown"
    return f"addr:{host}"


def limiter_refusal(limiter: RateLimiter) -> str:
    """The ``detail`` of a 503 from the limiter: failing open, Redis being unavailable is what
    the route would have answered ("storage unavailable"); failing closed, the limiter's own."""
    return STORAGE_UNAVAILABLE if limiter.fail_open else LIMITER_UNAVAILABLE


async def enforce_rate_limit(request: Request, settings: SettingsDep, limiter: LimiterDep) -> None:
    """429 with ``Retry-After`` once the client used up its requests of the current window;
    503 if Redis fails and the limiter fails closed, or hangs. Runs after authentication."""
    if limiter is None:
        return
    try:
        decision = await limiter.hit(client_identity(request, keyed=settings.auth_enabled))
    except LimiterUnavailable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, limiter_refusal(limiter)) from None
    if not decision.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{RATE_LIMITED}: {limiter.limit} requests per minute; "
            f"retry after {decision.retry_after_s} s",
            headers={"Retry-After": str(decision.retry_after_s)},
        )


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter a route declares, its dependencies' included."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(field.alias for field in current.query_params)
        stack.extend(current.dependencies)
    return frozenset(names)


_DECLARED_ATTR = "_ev_declared_query_names"


def unknown_query_names(connection: HTTPConnection) -> list[str]:
    """Query parameters the matched route does not declare (a typo must not be ignored)."""
    if not connection.scope.get("query_string"):
        return []
    route = connection.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if route is None or not isinstance(dependant, Dependant):
        return []
    # Kept on the route object (routes are not hashable): what a route declares never changes
    # once the app is built, and walking its dependencies on every request cost ~10% of the API.
    declared = getattr(route, _DECLARED_ATTR, None)
    if not isinstance(declared, frozenset):
        declared = declared_query_names(dependant)
        setattr(route, _DECLARED_ATTR, declared)
    return [name for name in dict.fromkeys(connection.query_params) if name not in declared]


async def reject_unknown_query(request: Request) -> None:
    """422 for a query parameter the route does not take, e.g. ``?limt=5`` or ``?start=``."""
    unknown = unknown_query_names(request)
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "extra_forbidden",
                    "loc": ("query", name),
                    "msg": "Unknown query parameter",
                    "input": request.query_params.get(name),
                }
                for name in unknown
            ]
        )


StrictQuery = Depends(reject_unknown_query)
