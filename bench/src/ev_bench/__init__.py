"""Benchmark harness of the EV telemetry pipeline (``python -m ev_bench``, ``nox -s bench``).

Measures ingest, end-to-end latency, the API, Redis memory and the simulator on the local
RabbitMQ and Redis, each against a ceiling measured in the same run.
"""

from ev_bench.__about__ import __version__

__all__ = ["__version__"]
