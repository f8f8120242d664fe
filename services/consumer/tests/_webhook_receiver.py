"""A webhook receiver for the tests: a local HTTP server thread that checks each POST's
signature, answers 500 to the first ``fail_first`` requests on purpose, then 204, and keeps what
it accepted."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    """Listens on 127.0.0.1:``port`` (0: any free port) from :meth:`start` to :meth:`stop`."""

    def __init__(self, secret: bytes, *, fail_first: int = 0, port: int = 0) -> None:
        self.secret, self.fail_first, self.port = secret, fail_first, port
        self.lock = threading.Lock()
        self.requests = 0
        #: (idempotency key, parsed body) of each accepted POST, in arrival order.
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.bad_signatures = 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alarms?token=not-a-label"

    def keys(self) -> set[str]:
        with self.lock:
            return {key for key, _ in self.accepted}

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-EV-Signature", "")
                with receiver.lock:
                    receiver.requests += 1
                    failing = receiver.requests <= receiver.fail_first
                    valid = hmac.compare_digest(expected, given)
                    if not valid:
                        receiver.bad_signatures += 1
                    elif not failing:
                        document = json.loads(body)
                        assert self.headers["Content-Type"] == "application/json"
                        assert self.headers["Idempotency-Key"] == document["idempotency_key"]
                        receiver.accepted.append((document["idempotency_key"], document))
                self.send_response(401 if not valid else 500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
