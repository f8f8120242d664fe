"""API-key authentication: header ``X-API-Key`` (WebSockets may use ``?api_key=``), and the
admin keys (``API_ADMIN_KEYS``) that the alarm rules routes require.

Authentication is a dependency of its own, so the rate limit (:mod:`ev_api.deps`) sits beside it
on the router, after it.
Keys are compared in constant time, against every configured key, so neither the answer's timing
nor its content tells which key nearly matched.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import HTTPException, Security, status
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.websockets import WebSocket

from ev_api.credentials import API_KEY_HEADER, presented_key
from ev_api.deps import SettingsDep

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="One of the keys in API_KEYS (or API_ADMIN_KEYS). Not needed when the server "
    "runs without API_KEYS.",
    auto_error=False,
)
admin_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="AdminKey",
    description="One of the keys in API_ADMIN_KEYS: the alarm rules routes need one.",
    auto_error=False,
)
ADMIN_API_OFF = "the alarm rules API is off: the server has no API_ADMIN_KEYS"
ADMIN_KEY_NEEDED = "this route needs an admin key (API_ADMIN_KEYS); the key given is not one"


def key_accepted(given: str | None, keys: tuple[SecretStr, ...]) -> bool:
    """Whether ``given`` is one of ``keys`` (always true when no keys are configured)."""
    if not keys:
        return True
    if given is None:
        return False
    given_bytes = given.encode()
    accepted = False
    for key in keys:
        # No early exit: every key is compared, so timing does not reveal which one matched.
        accepted |= hmac.compare_digest(given_bytes, key.get_secret_value().encode())
    return accepted


async def require_api_key(
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(api_key_header)],
) -> None:
    """401 unless the request carries an accepted ``X-API-Key`` (when keys are configured);
    an admin key is accepted too."""
    if key_accepted(api_key, settings.accepted_keys):
        return
    raise _unauthorized(api_key)


async def require_admin_key(
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(admin_key_header)],
) -> None:
    """401 without a key or with an unknown one (as every route), 403 with a key that is not an
    admin key, and 403 for everyone when the server has no admin keys."""
    if not settings.api_admin_keys:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=ADMIN_API_OFF)
    if api_key is not None and key_accepted(api_key, settings.api_admin_keys):
        return
    if api_key is not None and settings.api_keys and key_accepted(api_key, settings.api_keys):
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=ADMIN_KEY_NEEDED)
    raise _unauthorized(api_key)


def _unauthorized(api_key: str | None) -> HTTPException:
    detail = "missing X-API-Key header" if api_key is None else "invalid API key"
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "ApiKey"},
    )


def websocket_key_accepted(websocket: WebSocket, keys: tuple[SecretStr, ...]) -> bool:
    """The WebSocket check: browsers cannot set headers, so ``?api_key=`` is accepted too."""
    if not keys:
        return True
    return key_accepted(presented_key(websocket), keys)
