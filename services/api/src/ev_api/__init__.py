"""FastAPI service over the stored EV fleet telemetry: REST reads and a WebSocket live stream.

``create_app(settings)`` builds the app; ``python -m ev_api`` serves it with uvicorn.
"""

from ev_api.__about__ import __version__
from ev_api.app import create_app
from ev_api.settings import Settings

__all__ = ["Settings", "__version__", "create_app"]
