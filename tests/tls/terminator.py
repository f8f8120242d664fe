"""A TLS terminator of the tests' own: TLS with a client certificate on a loopback port, plain TCP
to a backend (the shared RabbitMQ), so that a test needs no private broker to speak ``amqps``.

One asyncio loop in a daemon thread serves every terminator of the session; each one has its own
server certificate (good, expired, wrong host) and requires a client certificate signed by the CA.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.support import free_port
from tests.tls.certs import Pair

_CHUNK = 65536


class Terminators:
    """The session's TLS listeners in front of ``backend``; :meth:`close` stops them all."""

    def __init__(self, backend: tuple[str, int]) -> None:
        self.backend = backend
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tls-terminators", daemon=True
        )
        self._thread.start()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, server: Pair, client_ca: Path) -> int:
        """A new listener presenting ``server``, accepting clients certified by ``client_ca``;
        its port."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
        context.load_cert_chain(server.cert, server.key)
        context.verify_mode = ssl.CERT_REQUIRED
        port = free_port()
        started = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._relay, "127.0.0.1", port, ssl=context), self._loop
        )
        self._servers.append(started.result(timeout=10))
        return port

    def close(self) -> None:
        async def shut() -> None:
            for server in self._servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            backend_reader, backend_writer = await asyncio.open_connection(*self.backend)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer))
        finally:
            for stream in (writer, backend_writer):
                with contextlib.suppress(Exception):
                    stream.close()
            self._tasks.discard(task)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the end on (half-close where TLS allows)."""
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()


@contextlib.contextmanager
def terminators(backend: tuple[str, int]) -> Iterator[Terminators]:
    """:class:`Terminators`, closed at the end of the block whatever happens."""
    running = Terminators(backend)
    try:
        yield running
    finally:
        running.close()
