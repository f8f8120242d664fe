"""The machine a run measured: cores and the versions that decide the figures."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from importlib import metadata

import pika
import redis

from ev_bench.backlog import connect


@dataclass(frozen=True, slots=True)
class Machine:
    cores: int
    python: str
    rabbitmq: str
    redis: str
    pika: str
    redis_py: str
    hiredis: str | None
    uvicorn: str
    fastapi: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        """One line for the run's row in docs/benchmarks.md."""
        return (
            f"{self.cores} cores, Python {self.python}, RabbitMQ {self.rabbitmq}, "
            f"Redis {self.redis}, pika {self.pika}, redis-py {self.redis_py}"
            + (" + hiredis" if self.hiredis else "")
        )


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def describe(amqp_url: str, redis_url: str) -> Machine:
    """Ask each server its version (RabbitMQ tells it in the connection handshake)."""
    connection = connect(amqp_url)
    try:
        properties = connection._impl.server_properties  # pika exposes no getter
        version = properties.get("version", b"?")
        rabbitmq = version.decode() if isinstance(version, bytes) else str(version)
    finally:
        connection.close()
    client = redis.Redis.from_url(redis_url)
    try:
        redis_version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    return Machine(
        cores=usable_cores(),
        python=platform.python_version(),
        rabbitmq=rabbitmq,
        redis=redis_version,
        pika=pika.__version__,
        redis_py=redis.__version__,
        hiredis=_version("hiredis"),
        uvicorn=_version("uvicorn") or "?",
        fastapi=_version("fastapi") or "?",
    )
