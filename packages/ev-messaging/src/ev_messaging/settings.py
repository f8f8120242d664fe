"""How to reach RabbitMQ: a small value object turned into pika connection parameters."""

from __future__ import annotations

import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import cast

import pika

from ev_messaging.errors import MessagingError
from ev_messaging.tls import TlsSettings


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, fit for logs and reprs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal needs its brackets back
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True, slots=True)
class AmqpSettings:
    """Broker URLs (several = fail over in order) and connection tuning.

    ``connection_attempts`` and ``retry_delay`` apply to each URL within one connect; the publisher
    and consumer add their own capped backoff between connects, from ``retry_delay`` up to
    ``max_retry_delay``. ``client_name`` shows as the connection name in RabbitMQ's tools.

    ``amqps://`` URLs always verify the broker's certificate and host name, with ``tls`` (CA,
    client certificate, server name) or else the system's CAs. The URLs are all ``amqps://`` or
    all ``amqp://``: a fail-over from one to the other would silently drop TLS. ``tls`` with
    ``amqp://`` URLs is refused too, as it would not be used, and so is pika's ``ssl_options`` URL
    argument (TLS is configured here only). The TLS files are read here, once, so a missing or
    unreadable file fails at start-up.
    """

    urls: tuple[str, ...]
    heartbeat: int = 30
    blocked_connection_timeout: float = 60.0
    connection_attempts: int = 1
    retry_delay: float = 0.5
    max_retry_delay: float = 10.0
    socket_timeout: float = 10.0
    client_name: str | None = None
    tls: TlsSettings | None = None
    _ssl_context: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(cast(object, self.urls), str) or not self.urls:
            raise MessagingError("urls must be a non-empty tuple of amqp:// or amqps:// URLs")
        schemes = set()
        for url in self.urls:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("amqp", "amqps"):
                raise MessagingError(f"not an AMQP URL: {safe_url(url)}")
            if "ssl_options" in urllib.parse.parse_qs(parts.query):
                # pika's own TLS settings would be replaced by ours: refused, not ignored.
                raise MessagingError(
                    f"ssl_options in a URL is not supported, use TlsSettings: {safe_url(url)}"
                )
            schemes.add(parts.scheme)
        if len(schemes) > 1:
            raise MessagingError(
                "the URLs mix amqps:// and amqp://: a fail-over would drop TLS; use one scheme"
            )
        if "amqps" in schemes:
            context = (self.tls or TlsSettings()).context()
            object.__setattr__(self, "_ssl_context", context)
        elif self.tls is not None:
            raise MessagingError("TLS settings need amqps:// URLs; these are amqp://")
        if self.connection_attempts < 1:
            raise MessagingError("connection_attempts must be >= 1")
        if self.retry_delay < 0 or self.max_retry_delay < self.retry_delay:
            raise MessagingError("need 0 <= retry_delay <= max_retry_delay")

    @classmethod
    def from_parts(
        cls,
        host: str = "127.0.0.1",
        port: int = 5672,
        user: str = "guest",
        password: str = "guest",  # noqa: S107 (RabbitMQ's own default account)
        vhost: str = "/",
        *,
        client_name: str | None = None,
    ) -> AmqpSettings:
        """One broker from the seed's variables (``RABBITMQ_HOST``, ``RABBITMQ_PORT``, ...)."""
        quote = urllib.parse.quote
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        url = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        return cls(urls=(url + quote(vhost, safe=""),), client_name=client_name)

    @property
    def safe_urls(self) -> tuple[str, ...]:
        """The URLs with passwords masked."""
        return tuple(safe_url(url) for url in self.urls)

    def __repr__(self) -> str:
        return (
            f"AmqpSettings(urls={self.safe_urls!r}, heartbeat={self.heartbeat}, "
            f"client_name={self.client_name!r}, tls={self.tls!r})"
        )

    def parameters(self) -> list[pika.URLParameters]:
        """One pika parameters object per URL, in fail-over order."""
        result = []
        for url in self.urls:
            params = pika.URLParameters(url)
            params.heartbeat = self.heartbeat
            params.blocked_connection_timeout = self.blocked_connection_timeout
            params.connection_attempts = self.connection_attempts
            params.retry_delay = self.retry_delay
            params.socket_timeout = self.socket_timeout
            if self.client_name is not None:
                params.client_properties = {"connection_name": self.client_name}
            if self._ssl_context is not None:
                # Ours replaces pika's own for amqps (and any ssl_options in the URL's query).
                server_name = None if self.tls is None else self.tls.server_name
                params.ssl_options = pika.SSLOptions(self._ssl_context, server_name)
            result.append(params)
        return result
