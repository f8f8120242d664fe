"""Isolation on the shared RabbitMQ and Redis: private vhosts and one private key prefix per run.

Every vhost the run creates is deleted at the end, and every key under the run's prefix is deleted
with SCAN + DEL: the shared servers are never flushed or reconfigured. Vhosts are made with
``rabbitmqctl``, or with the management HTTP API where the broker runs elsewhere.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import subprocess
import urllib.parse
import urllib.request
import uuid
from types import TracebackType
from typing import Self

import redis

from ev_bench.errors import BenchError

log = logging.getLogger(__name__)

_PERMIT_ALL = {"configure": ".*", "write": ".*", "read": ".*"}
_DELETE_CHUNK = 500


class VhostAdmin:
    """Creates and deletes vhosts: ``rabbitmqctl`` on this machine, else the management API
    at ``api_url`` (``http://user:pass@host:15672``)."""

    def __init__(self, api_url: str | None = None) -> None:
        self.api_url = api_url
        self.ctl = shutil.which("rabbitmqctl")
        if api_url is None and self.ctl is None:
            raise BenchError(
                "private vhosts need rabbitmqctl on this machine or --rabbitmq-api "
                "http://guest:guest@HOST:15672 (the management plugin)"
            )

    def create(self, vhost: str, user: str) -> None:
        if self.api_url is not None:
            self._http("PUT", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}", {})
            path = f"/api/permissions/{urllib.parse.quote(vhost, safe='')}/{user}"
            self._http("PUT", path, _PERMIT_ALL)
        else:
            self._ctl("add_vhost", vhost)
            self._ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")

    def delete(self, vhost: str) -> None:
        if self.api_url is not None:
            self._http("DELETE", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}", None)
        else:
            self._ctl("delete_vhost", vhost)

    def _ctl(self, *args: str) -> None:
        assert self.ctl is not None
        try:
            subprocess.run(  # noqa: S603 - our own fixed argv
                [self.ctl, "-q", *args], check=True, capture_output=True, timeout=60
            )
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip()
            raise BenchError(f"rabbitmqctl {' '.join(args)} failed: {detail}") from exc

    def _http(self, method: str, path: str, body: dict[str, str] | None) -> None:
        assert self.api_url is not None
        url = urllib.parse.urlsplit(self.api_url)
        auth = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        netloc = f"{url.hostname}:{url.port or 15672}"
        request = urllib.request.Request(  # noqa: S310 - the operator's management URL
            urllib.parse.urlunsplit(url._replace(netloc=netloc, path=path)),
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass


def delete_keys(client: redis.Redis, prefix: str) -> int:
    """Delete every key starting with ``prefix`` by SCAN + DEL; how many were deleted."""
    if not prefix:
        raise BenchError("refusing to delete keys without a prefix")
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= _DELETE_CHUNK:
            deleted += int(client.delete(*batch))
            batch = []
    if batch:
        deleted += int(client.delete(*batch))
    return deleted


class Sandbox:
    """The run's private space: ``vhost(label)`` gives a fresh vhost's URL, ``prefix(label)`` a
    key prefix under the run's own; :meth:`close` removes them all (also after a failure)."""

    def __init__(self, amqp_url: str, redis_url: str, admin: VhostAdmin) -> None:
        self.run_id = uuid.uuid4().hex[:10]
        self.root_prefix = f"evbench:{self.run_id}:"
        self._amqp = urllib.parse.urlsplit(amqp_url)
        self._redis_url = redis_url
        self._admin = admin
        self._vhosts: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def user(self) -> str:
        return urllib.parse.unquote(self._amqp.username or "guest")

    def vhost(self, label: str) -> str:
        """A new private vhost (deleted by :meth:`close`); its AMQP URL."""
        name = f"evbench-{self.run_id}-{label}"
        self._admin.create(name, self.user)
        self._vhosts.append(name)
        return urllib.parse.urlunsplit(self._amqp._replace(path="/" + urllib.parse.quote(name, "")))

    def drop_vhost(self, url: str) -> None:
        """Delete a vhost of this run now (its queues can hold 100k+ messages)."""
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path[1:])
        if name in self._vhosts:
            self._vhosts.remove(name)
            self._admin.delete(name)

    def prefix(self, label: str) -> str:
        """A key prefix inside the run's own, e.g. ``evbench:1a2b3c4d5e:ingest1:``."""
        return f"{self.root_prefix}{label}:"

    def close(self) -> None:
        errors: list[str] = []
        for name in reversed(self._vhosts):
            try:
                self._admin.delete(name)
            except (BenchError, OSError) as exc:
                errors.append(f"vhost {name}: {exc}")
        self._vhosts.clear()
        client = redis.Redis.from_url(self._redis_url)
        try:
            deleted = delete_keys(client, self.root_prefix)
            log.info("deleted %d keys under %s", deleted, self.root_prefix)
        except redis.RedisError as exc:
            errors.append(f"keys under {self.root_prefix}: {exc}")
        finally:
            client.close()
        if errors:
            raise BenchError("cleanup incomplete: " + "; ".join(errors))
