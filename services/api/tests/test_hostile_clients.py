"""Hostile connections against ``python -m ev_api``: its resident memory stays bounded.

Eight connections of each kind at once: request heads of 32 MiB and WebSocket frames of 16 MiB
(with a wrong key and with the right one), and authenticated WebSockets that never read while
readings stream. The process's RSS is sampled throughout; the figures go to the JUnit report as
suite properties. Run by the ``faults`` session and the API's own tests (about 6 s).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from _api_helpers import reading
from test_main import Server
from test_server import TCP_ESTABLISHED, WS_PATH, handshake, status_of, tcp_state
from websockets.exceptions import ConnectionClosed, InvalidMessage
from websockets.sync.client import connect

from ev_storage import ReadingWriter, StorageSettings

pytestmark = pytest.mark.faults

MIB = 1024 * 1024
CONNECTIONS = 8  # of each kind
#: Growth allowed over the idle process: the bounds make it a few MiB (16 KiB heads, 4 KiB
#: messages, 64 KiB send buffers per connection); without them the heads alone took 260 MiB.
MAX_GROWTH_MIB = 48


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Sampler:
    """The peak RSS of a process, sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def huge_head(port: int) -> None:
    """A request head of up to 32 MiB, sent until the server stops reading."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(b"GET /api/v1/sensor/ev_001 HTTP/1.1\r\nHost: t\r\nX-Padding: ")
            for _ in range(32 * MIB // 65536):
                sock.sendall(b"x" * 65536)
        except OSError:
            return  # refused: 431, then closed


def huge_frame(url: str) -> None:
    """A 16 MiB WebSocket message, sent whatever the server answered first."""
    try:
        with connect(url, open_timeout=10, close_timeout=2, max_size=None) as ws:
            ws.send("x" * (16 * MIB))
            ws.recv(timeout=10)
    except (ConnectionClosed, InvalidMessage, OSError, TimeoutError):
        pass


def dropped_within(socks: list[socket.socket], timeout: float) -> bool:
    """Whether the server dropped every one of ``socks`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(tcp_state(sock) == TCP_ESTABLISHED for sock in socks):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def api(redis_location: dict[str, Any], key_prefix: str) -> Iterator[Server]:
    server = Server(
        {
            "REDIS_HOST": redis_location["redis_host"],
            "REDIS_PORT": str(redis_location["redis_port"]),
            "REDIS_DB": str(redis_location["redis_db"]),
            "REDIS_KEY_PREFIX": key_prefix,
            "API_KEYS": "the-key",
            "WS_SEND_TIMEOUT_S": "2",
            "WS_QUEUE_SIZE": "100000",
            "LOG_LEVEL": "warning",
        }
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_rss_stays_bounded_under_hostile_connections(
    api: Server,
    redis_url: str,
    key_prefix: str,
    record_testsuite_property: Callable[[str, object], None],
) -> None:
    ws_base = api.base.replace("http", "ws") + WS_PATH
    pid = api.process.pid
    # Warm up what every process has anyway: a request, a WebSocket, the hub's subscription.
    assert status_of(f"{api.base}/api/v1/sensor/ev_001", {"X-API-Key": "the-key"}) == 404
    with connect(f"{ws_base}?api_key=the-key", open_timeout=5):
        pass
    before = rss_mib(pid)
    silent = [
        handshake(api.port, f"{WS_PATH}?api_key=the-key", receive_buffer=4096)
        for _ in range(CONNECTIONS)
    ]
    try:
        with Sampler(pid) as sampler, ThreadPoolExecutor(3 * CONNECTIONS) as pool:
            jobs = [pool.submit(huge_head, api.port) for _ in range(CONNECTIONS)]
            jobs += [pool.submit(huge_frame, f"{ws_base}?api_key=wrong") for _ in range(4)]
            jobs += [pool.submit(huge_frame, f"{ws_base}?api_key=the-key") for _ in range(4)]
            with redis.Redis.from_url(redis_url) as direct:
                writer = ReadingWriter(direct, StorageSettings(key_prefix=key_prefix))
                for batch in range(10):  # ~1 MB of live messages for each silent reader
                    writer.store_many([reading(seconds=batch * 1000 + i) for i in range(800)])
            for job in jobs:
                job.result(timeout=120)
            dropped = dropped_within(silent, timeout=30)
    finally:
        for sock in silent:
            sock.close()
    after = rss_mib(pid)
    figures = {"rss_before_mib": before, "rss_peak_mib": sampler.peak, "rss_after_mib": after}
    for name, value in figures.items():
        record_testsuite_property(name, round(value, 1))
    print(f"\nAPI RSS under hostile connections: {figures}")  # shown with -s / -rA
    assert sampler.peak - before < MAX_GROWTH_MIB, figures
    assert dropped, "silent readers still connected after 30 s"
    assert status_of(f"{api.base}/health/live") == 200
    output = api.stop()
    assert "Traceback" not in output, output
