"""What the fault tests do to RabbitMQ as its operator: close connections, change permissions.

With ``rabbitmqctl`` on this machine, or through the management HTTP API where the broker runs
elsewhere (a CI service container): set ``EV_TEST_RABBITMQ_API=http://guest:guest@host:15672``,
as for the shared fixtures in the root conftest.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from typing import Any

import pytest


class BrokerAdmin:
    def __init__(self) -> None:
        self.api = os.environ.get("EV_TEST_RABBITMQ_API")
        self.ctl = shutil.which("rabbitmqctl")
        if self.api is None and self.ctl is None:
            pytest.fail("the broker fault tests need rabbitmqctl or EV_TEST_RABBITMQ_API")

    def close_connections(self, vhost: str, client_name: str, reason: str = "fault test") -> int:
        """Force-close (320 CONNECTION_FORCED) every connection of ``vhost`` that presents itself
        as ``client_name``; how many there were."""
        if self.api is not None:
            quoted = urllib.parse.quote(vhost, safe="")
            listed = self._http("GET", f"/api/vhosts/{quoted}/connections") or []
            names = [
                c["name"]
                for c in listed
                if (c.get("client_properties") or {}).get("connection_name") == client_name
            ]
            for name in names:
                path = f"/api/connections/{urllib.parse.quote(name, safe='')}"
                self._http("DELETE", path, headers={"X-Reason": reason})
            return len(names)
        listed_text = self._ctl("list_connections", "-p", vhost, "pid", "client_properties")
        wanted = f'{{"connection_name","{client_name}"}}'
        pids = [line.split("\t", 1)[0] for line in listed_text.splitlines() if wanted in line]
        for pid in pids:
            self._ctl("close_connection", pid, reason)
        return len(pids)

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        if self.api is not None:
            path = f"/api/permissions/{urllib.parse.quote(vhost, safe='')}/{user}"
            self._http("PUT", path, {"configure": configure, "write": write, "read": read})
        else:
            self._ctl("set_permissions", "-p", vhost, user, configure, write, read)

    def _ctl(self, *args: str) -> str:
        assert self.ctl is not None
        done = subprocess.run(
            [self.ctl, "-q", *args], check=True, capture_output=True, text=True, timeout=60
        )
        return done.stdout

    def _http(
        self,
        method: str,
        path: str,
        body: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        assert self.api is not None
        url = urllib.parse.urlsplit(self.api)
        auth = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
        request = urllib.request.Request(
            urllib.parse.urlunsplit(url._replace(netloc=f"{url.hostname}:{url.port}", path=path)),
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else None
