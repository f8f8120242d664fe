"""API-key authentication: header ``X-API-Key`` (WebSockets may use ``?api_key=``).

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
    description="One of the keys in API_KEYS. Not needed when the server runs without API_KEYS.",
    auto_error=False,
)


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
    """401 unless the request carries an accepted ``X-API-Key`` (when keys are configured)."""
    if key_accepted(api_key, settings.api_keys):
        return
    detail = "missing X-API-Key header" if api_key is None else "invalid API key"
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "ApiKey"},
    )


def websocket_key_accepted(websocket: WebSocket, keys: tuple[SecretStr, ...]) -> bool:
    """The WebSocket check: browsers cannot set headers, so ``?api_key=`` is accepted too."""
    if not keys:
        return True
    return key_accepted(presented_key(websocket), keys)
