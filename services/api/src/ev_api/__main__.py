"""``python -m ev_api``: serve the API with uvicorn on API_HOST:API_PORT.

Exit status 2, with one line on stderr, for invalid configuration and for a Redis whose TLS
certificate does not verify; a Redis that is merely down does not stop the API (``/health``
answers 503 until it is back).
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from ev_api.app import create_app
from ev_api.deps import get_settings
from ev_api.logs import configure_logging
from ev_api.server import uvicorn_options
from ev_api.storage_client import check_redis_tls
from ev_service import ConfigurationError
from ev_storage import TlsVerificationFailed


def main() -> int:
    try:
        settings = get_settings()
    except ConfigurationError as exc:
        print(exc.line("ev-api"), file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, access_log=settings.api_access_log)
    if settings.redis.tls:
        try:
            asyncio.run(check_redis_tls(settings))
        except TlsVerificationFailed as exc:
            # Configuration, like an invalid setting: one plain line, never plain text instead.
            print(f"ev-api: {exc}", file=sys.stderr)
            return 2
    uvicorn.run(create_app(settings, freeze_gc=True), **uvicorn_options(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
