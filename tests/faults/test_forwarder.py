"""The forwarder itself, against a loopback echo server: each fault does what it says."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.faults.forwarder import Forwarder
from tests.support import free_port, wait_until


class EchoServer:
    """Echoes every chunk back, upper-cased, and counts the requests it served."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.served = 0
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed by close()
            while not self._stop.is_set():
                readable, _, _ = select.select([self.listener], [], [], 0.05)
                if readable:
                    client, _ = self.listener.accept()
                    threading.Thread(target=self._echo, args=(client,), daemon=True).start()

    def _echo(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            while data := client.recv(1024):
                self.served += 1
                client.sendall(data.upper())

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def exchange(sock: socket.socket, data: bytes) -> bytes:
    """Send ``data`` and return the answer (b"" at EOF)."""
    sock.sendall(data)
    return sock.recv(1024)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    sock.settimeout(2)
    return sock


def test_forwards_both_ways(echo: EchoServer) -> None:
    with Forwarder(echo.port) as forwarder, connect(forwarder.port) as client:
        client.sendall(b"ping")
        assert client.recv(1024) == b"PING"
        assert forwarder.stats.accepted == 1


def test_cut_resets_open_connections_and_accepts_new_ones(echo: EchoServer) -> None:
    with Forwarder(echo.port) as forwarder:
        client = connect(forwarder.port)
        client.sendall(b"a")
        assert client.recv(1024) == b"A"
        assert forwarder.cut() == 1
        with pytest.raises(ConnectionResetError):
            exchange(client, b"b")
        client.close()
        with connect(forwarder.port) as again:
            again.sendall(b"c")
            assert again.recv(1024) == b"C"


def test_refuse_then_accept_on_the_same_port(echo: EchoServer) -> None:
    with Forwarder(echo.port, listening=False) as forwarder:
        with pytest.raises(ConnectionRefusedError):
            connect(forwarder.port)
        forwarder.accept()
        with connect(forwarder.port) as client:
            client.sendall(b"up")
            assert client.recv(1024) == b"UP"
        forwarder.refuse()
        with pytest.raises(ConnectionRefusedError):
            connect(forwarder.port)


def test_stall_holds_bytes_until_resumed(echo: EchoServer) -> None:
    with Forwarder(echo.port) as forwarder, connect(forwarder.port) as client:
        wait_until(lambda: forwarder.connections == 1, 5, "the link")
        forwarder.stall()
        client.sendall(b"held")
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.recv(1024)
        assert echo.served == 0
        with connect(forwarder.port) as fresh:  # a new connection is not stalled
            fresh.sendall(b"new")
            assert fresh.recv(1024) == b"NEW"
        forwarder.resume()
        client.settimeout(2)
        assert client.recv(1024) == b"HELD"


def test_black_hole_holds_every_connection_open_and_silent_until_restored(
    echo: EchoServer,
) -> None:
    with Forwarder(echo.port) as forwarder, connect(forwarder.port) as client:
        wait_until(lambda: forwarder.connections == 1, 5, "the link")
        forwarder.black_hole()
        client.sendall(b"held")
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.recv(1024)
        with connect(forwarder.port) as fresh:  # accepted, but nothing answers
            fresh.settimeout(0.3)
            fresh.sendall(b"new")
            with pytest.raises(TimeoutError):
                fresh.recv(1024)
            wait_until(lambda: forwarder.stats.held == 1, 5, "the new connection held")
            assert echo.served == 0
            forwarder.restore()
            fresh.settimeout(2)
            with pytest.raises(ConnectionResetError):  # held ones are reset on restore
                fresh.recv(1024)
        client.settimeout(2)
        assert client.recv(1024) == b"HELD"  # open ones move their bytes again


def test_dropped_reply_reaches_the_server_but_not_the_client(echo: EchoServer) -> None:
    with Forwarder(echo.port) as forwarder, connect(forwarder.port) as client:
        forwarder.drop_replies(1, matching=lambda data: data.startswith(b"W"))
        assert exchange(client, b"read") == b"READ"  # not matching: forwarded
        with pytest.raises(ConnectionResetError):
            exchange(client, b"write")
        assert echo.served == 2
        assert forwarder.stats.dropped_replies == 1
        wait_until(lambda: forwarder.connections == 0, 5, "the link closed")


def test_an_unreachable_target_resets_the_client() -> None:
    def round_trip(port: int) -> bytes:
        with connect(port) as client:
            return exchange(client, b"x")

    with Forwarder(free_port()) as forwarder:
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            round_trip(forwarder.port)
        wait_until(lambda: forwarder.stats.upstream_failures == 1, 5, "the failure counted")
