"""EV telemetry consumer: RabbitMQ -> validate -> Redis, acknowledging only after the write."""

from ev_consumer.__about__ import __version__

__all__ = ["__version__"]
