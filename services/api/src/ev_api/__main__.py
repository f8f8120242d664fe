"""``python -m ev_api``: serve the API with uvicorn on API_HOST:API_PORT."""

from __future__ import annotations

import uvicorn

from ev_api.app import create_app
from ev_api.deps import get_settings
from ev_api.logs import configure_logging


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        create_app(settings, freeze_gc=True),
        host=settings.api_host,
        port=settings.api_port,
        # uvicorn's loggers propagate to the root handler configured above (JSON or text)
        # instead of getting uvicorn's own formatters.
        log_config=None,
        log_level=settings.log_level,
        access_log=settings.api_access_log,
        # uvicorn pings every WebSocket and closes one whose pong does not come back in time:
        # dead clients (a laptop lid closed, a NAT that forgot the flow) free their queue.
        ws_ping_interval=settings.ws_ping_interval_s or None,
        ws_ping_timeout=settings.ws_ping_timeout_s,
    )


if __name__ == "__main__":
    main()
