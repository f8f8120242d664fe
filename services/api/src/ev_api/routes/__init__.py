"""The routers: health (open), sensors (REST under /api/v1), live (WebSocket under /api/v1)."""
