"""The alarm rules in force: read them, replace them (admin keys only, see :mod:`ev_api.auth`).

A set stored by PUT (in Redis, ev-storage's :class:`~ev_storage.AlarmRulesStore`) wins over
``ALARM_RULES_FILE``, which is the default until then. Every 422 here has one ``detail`` string
naming the rule and the field, as the consumer's start-up errors do for the file.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from ev_api.deps import ResourcesDep, SettingsDep, StrictQuery, get_resources
from ev_api.errors import error_responses
from ev_schemas import (
    ALARM_RULES_EXAMPLE,
    AlarmRulesDocument,
    AlarmRuleSet,
    InvalidAlarmRules,
)
from ev_schemas.alarm_rules import describe_errors
from ev_storage import AlarmRulesStore


class RuleSetErrors(APIRoute):
    """A route whose request validation errors are one ``detail`` line per problem naming the
    rule (``rules[1] 'pack-hot': clear_below: ...``) rather than FastAPI's list of locations."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def described(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse(
                    {"detail": _described(exc)}, status.HTTP_422_UNPROCESSABLE_CONTENT
                )

        return described


#: FastAPI's error types for a body that is absent or not a JSON object.
_NOT_AN_OBJECT = {"missing", "model_attributes_type", "dict_type", "model_type"}


def _described(exc: RequestValidationError) -> str:
    errors = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in errors):
        return "the request body is not valid JSON"
    if any(
        tuple(error.get("loc", ())) == ("body",) and error.get("type") in _NOT_AN_OBJECT
        for error in errors
    ):
        return "the request body must be a JSON object with `rules` and/or `stale` lists"
    return "; ".join(describe_errors(errors, exc.body))


router = APIRouter(
    prefix="/alarm-rules",
    tags=["alarms"],
    dependencies=[StrictQuery],
    route_class=RuleSetErrors,
)


async def get_store(connection: HTTPConnection) -> AlarmRulesStore:
    store = get_resources(connection).alarm_rules_store
    if store is None:
        raise RuntimeError("the app's lifespan made no alarm rules store")
    return store


StoreDep = Annotated[AlarmRulesStore, Depends(get_store)]
ADMIN_ERRORS = {
    **error_responses(401, 503),
    status.HTTP_403_FORBIDDEN: {
        "model": error_responses(401)[401]["model"],
        "description": "The key is not an admin key (API_ADMIN_KEYS), or the server has none.",
    },
}


@router.get("", response_model=AlarmRulesDocument, responses=ADMIN_ERRORS)
async def get_alarm_rules(store: StoreDep, settings: SettingsDep) -> AlarmRulesDocument:
    """The alarm rules in force, their version and where they come from.

    The set stored by the last PUT (`source: api`); before any PUT, the rules of
    ALARM_RULES_FILE (`source: file`), or none (`source: none`). Needs an admin key.
    """
    stored = await store.get()
    if stored is not None:
        return AlarmRulesDocument.of(stored, "api")
    if settings.alarm_rules_file is not None:
        return AlarmRulesDocument.of(settings.alarm_rules(), "file")
    return AlarmRulesDocument.of(AlarmRuleSet(), "none")


@router.put(
    "",
    response_model=AlarmRulesDocument,
    responses={
        **ADMIN_ERRORS,
        status.HTTP_422_UNPROCESSABLE_CONTENT: {
            "model": error_responses(422)[422]["model"],
            "description": "An invalid rule set; `detail` names each rule and field at fault.",
            "content": {
                "application/json": {
                    "example": {
                        "detail": "rules[1] 'pack-hot': clear_below (65) must be <= above (60)"
                    }
                }
            },
        },
    },
)
async def put_alarm_rules(
    rules: Annotated[
        AlarmRuleSet,
        Body(
            openapi_examples={
                "rules": {
                    "summary": "Threshold and staleness rules",
                    "value": ALARM_RULES_EXAMPLE,
                },
                "none": {"summary": "No rules at all", "value": {"rules": [], "stale": []}},
            }
        ),
    ],
    store: StoreDep,
    resources: ResourcesDep,
) -> AlarmRulesDocument:
    """Replace the whole rule set; it wins over ALARM_RULES_FILE from now on.

    The body has the format of the rules file (docs/alarms.md), as JSON. It is checked as a
    whole (sensor types against the configured ones) and stored atomically: the consumers see
    the old set or the new one. Returns the stored set and its new version. Needs an admin key.
    """
    try:
        checked = rules.for_catalogue(resources.catalogue)
    except InvalidAlarmRules as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return AlarmRulesDocument.of(await store.put(checked), "api")
