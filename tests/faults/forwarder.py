"""A loopback TCP forwarder that a test puts between a client and its server to break the link.

toxiproxy and tc netem are not available here; this does what the fault tests need from them:

- ``cut()``: reset every open connection (the peers see ECONNRESET), keep accepting new ones;
- ``refuse()`` / ``accept()``: stop listening, so connecting fails with ECONNREFUSED (a server that
  is down), and listen again on the same port;
- ``stall()`` / ``resume()``: stop moving bytes on the open connections while keeping them open
  (a half-open link: only heartbeats or timeouts can notice); new connections still work;
- ``black_hole()`` / ``restore()``: the same for every connection, new ones included: a new one is
  accepted (its SYN answered) and held open with no connection behind it, as a route into a
  black hole would; ``restore()`` resumes the open ones and resets the held ones;
- ``drop_replies(n, matching)``: forward the request, then drop the server's next ``n`` replies
  (chunks read from the server, those ``matching`` says) and reset their connections, so the
  server acted but the client never hears about it.

Threads, not asyncio, so that synchronous tests can drive it; each connection has a pump thread
per direction. Every wait is bounded so ``close()`` always returns.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from tests.support import free_port

_POLL = 0.05  # how often a pump looks at its flags while no data flows
_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (linger 0), as a broken network or a dead peer would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@dataclass
class ForwarderStats:
    accepted: int = 0
    cut: int = 0
    dropped_replies: int = 0
    upstream_failures: int = 0
    held: int = 0  # connections accepted into the black hole


class _Link:
    """One client connection and its connection to the target."""

    def __init__(self, owner: Forwarder, client: socket.socket, upstream: socket.socket) -> None:
        self.owner = owner
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        self.stalled = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        for source, sink, replies in (
            (self.client, self.upstream, False),
            (self.upstream, self.client, True),
        ):
            threading.Thread(
                target=self._pump, args=(source, sink, replies), daemon=True, name="forwarder-pump"
            ).start()

    def close(self) -> None:
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        _reset(self.client)
        _reset(self.upstream)
        self.owner._forget(self)

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        owner = self.owner
        try:
            while not self.closed.is_set():
                if self.stalled.is_set():
                    self.closed.wait(_POLL)
                    continue
                readable, _, _ = select.select([source], [], [], _POLL)
                if not readable or self.stalled.is_set():
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    break
                if replies and owner._take_drop(data):
                    break  # the server answered; the client will never know
                sink.sendall(data)
        except (OSError, ValueError):  # ValueError: select on a socket closed meanwhile
            pass
        self.close()


class Forwarder:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``; see the module docstring.

    With ``listening=False`` it starts refusing; ``accept()`` opens it. Use as a context manager.
    """

    def __init__(
        self, target_port: int, target_host: str = "127.0.0.1", *, listening: bool = True
    ) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.stats = ForwarderStats()
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._drops = 0
        self._drop_matching: Callable[[bytes], bool] = lambda _data: True
        self._black_hole = False
        self._held: list[socket.socket] = []  # accepted in the black hole, nothing behind them
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._closed = False
        if listening:
            self.accept()

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
    def connections(self) -> int:
        """Open client connections."""
        with self._lock:
            return len(self._links)

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def accept(self) -> None:
        """Listen (again) on ``port``."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener,), daemon=True, name="forwarder-accept"
        )
        self._acceptor.start()

    def refuse(self) -> None:
        """Stop listening and reset every connection: the server looks down."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=2)
            self._acceptor = None
        self.cut()

    def cut(self) -> int:
        """Reset every open connection; how many there were."""
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        self.stats.cut += len(links)
        return len(links)

    def stall(self) -> None:
        """Stop moving bytes on every open connection, leaving them open (new ones work)."""
        with self._lock:
            for link in self._links:
                link.stalled.set()

    def resume(self) -> None:
        """Move bytes again on the connections ``stall()`` stopped."""
        with self._lock:
            for link in self._links:
                link.stalled.clear()

    def black_hole(self) -> None:
        """Stop moving bytes on every connection, open or new, leaving all of them open."""
        with self._lock:
            self._black_hole = True
            for link in self._links:
                link.stalled.set()

    def restore(self) -> None:
        """End ``black_hole()``: open connections move bytes again, held ones are reset."""
        with self._lock:
            self._black_hole = False
            held, self._held = self._held, []
            for link in self._links:
                link.stalled.clear()
        for sock in held:
            _reset(sock)

    def drop_replies(self, count: int = 1, matching: Callable[[bytes], bool] | None = None) -> None:
        """Drop the next ``count`` chunks the server sends (those ``matching`` accepts, if
        given), resetting their connections."""
        with self._lock:
            self._drops += count
            self._drop_matching = matching or (lambda _data: True)

    @property
    def drops_pending(self) -> int:
        with self._lock:
            return self._drops

    def close(self) -> None:
        self._closed = True
        self.restore()
        self.refuse()

    # internals

    def _take_drop(self, data: bytes) -> bool:
        with self._lock:
            if self._drops <= 0 or not self._drop_matching(data):
                return False
            self._drops -= 1
            self.stats.dropped_replies += 1
            return True

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                readable, _, _ = select.select([listener], [], [], _POLL)
                if not readable:
                    if listener.fileno() < 0:
                        return
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):
                return  # refuse() closed the listener
            with self._lock:
                if self._black_hole:
                    self._held.append(client)
                    self.stats.held += 1
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self.stats.upstream_failures += 1
                _reset(client)
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                if self._closed or self._listener is not listener:
                    refused = True
                else:
                    refused = False
                    self._links.add(link)
                    self.stats.accepted += 1
            if refused:
                _reset(client)
                _reset(upstream)
                continue
            link.start()
