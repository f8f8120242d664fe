"""How to reach RabbitMQ: a small value object turned into pika connection parameters."""

from __future__ import annotations

import ssl
import urllib.parse
from typing import Any, Self

import pika
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

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


class AmqpSettings(BaseModel):
    """How to reach RabbitMQ: broker URLs (several = fail over in order), or one broker from the
    seed's parts (``host``, ``port``, ``user``, ``password``, ``vhost``), and connection tuning.

    ``urls`` overrides the parts; without it they make one URL (an IPv6 host bracketed, every
    part quoted). ``connection_attempts`` and ``retry_delay`` apply to each URL within one
    connect; the publisher and consumer add their own capped backoff between connects, from
    ``retry_delay`` up to ``max_retry_delay``. ``client_name`` shows as the connection name in
    RabbitMQ's tools.

    ``amqps://`` URLs always verify the broker's certificate and host name, with ``tls`` (CA,
    client certificate, server name) or else the system's CAs. The URLs are all ``amqps://`` or
    all ``amqp://``: a fail-over from one to the other would silently drop TLS. ``tls`` with
    ``amqp://`` URLs is refused too, as it would not be used, and so is pika's ``ssl_options`` URL
    argument (TLS is configured here only). The TLS files are read here, once, so a missing or
    unreadable file fails at start-up. Errors about URLs and TLS are :class:`MessagingError`
    (never echoing a URL's password); values of the wrong type or range are pydantic's.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", use_attribute_docstrings=True, arbitrary_types_allowed=True
    )

    urls: tuple[str, ...] | None = None
    """comma-separated `amqp://` URLs tried in order (overrides the five above), or all `amqps://`
    for TLS; after a lost connection the consumer starts with the next one"""
    host: str = "localhost"
    """RabbitMQ host"""
    port: int = Field(default=5672, ge=1, le=65535)
    """RabbitMQ port"""
    user: str = "user"
    """RabbitMQ user (`nox -s up` uses `guest`)"""
    password: SecretStr = SecretStr("password")
    """RabbitMQ password (`nox -s up` uses `guest`)"""
    vhost: str = "/"
    """RabbitMQ virtual host"""
    heartbeat: int = Field(default=30, ge=1, le=600)
    """AMQP heartbeat: a silent (half-open) broker link is given up after two of them"""
    tls: TlsSettings | None = None
    blocked_connection_timeout: float = 60.0
    connection_attempts: int = 1
    retry_delay: float = 0.5
    max_retry_delay: float = 10.0
    socket_timeout: float = 10.0
    client_name: str | None = None
    _ssl_context: ssl.SSLContext | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _urls_not_a_string(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("urls"), str):
            raise MessagingError("urls must be a tuple of amqp:// or amqps:// URLs, not a string")
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.urls is None:
            object.__setattr__(self, "urls", (self._url_from_parts(),))
        urls = self.broker_urls
        if not urls:
            raise MessagingError("urls must be a non-empty tuple of amqp:// or amqps:// URLs")
        schemes = set()
        for url in urls:
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
            self._ssl_context = (self.tls or TlsSettings()).context()
        elif self.tls is not None:
            raise MessagingError("TLS settings need amqps:// URLs; these are amqp://")
        if self.connection_attempts < 1:
            raise MessagingError("connection_attempts must be >= 1")
        if self.retry_delay < 0 or self.max_retry_delay < self.retry_delay:
            raise MessagingError("need 0 <= retry_delay <= max_retry_delay")
        return self

    def _url_from_parts(self) -> str:
        quote = urllib.parse.quote
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        user = quote(self.user, safe="")
        password = quote(self.password.get_secret_value(), safe="")
        return f"amqp://{user}:{password}@{host}:{self.port}/{quote(self.vhost, safe='')}"

    @property
    def broker_urls(self) -> tuple[str, ...]:
        """The URLs in fail-over order (``urls``, or the one made of the parts)."""
        return self.urls or ()

    @property
    def uses_tls(self) -> bool:
        """Whether the URLs are ``amqps://``."""
        return self._ssl_context is not None

    def named(self, client_name: str) -> AmqpSettings:
        """These settings under another connection name."""
        return self.model_copy(update={"client_name": client_name})

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
        return cls(
            host=host,
            port=port,
            user=user,
            password=SecretStr(password),
            vhost=vhost,
            client_name=client_name,
        )

    @property
    def safe_urls(self) -> tuple[str, ...]:
        """The URLs with passwords masked."""
        return tuple(safe_url(url) for url in self.broker_urls)

    def __str__(self) -> str:
        return repr(self)

    def __repr__(self) -> str:
        return (
            f"AmqpSettings(urls={self.safe_urls!r}, heartbeat={self.heartbeat}, "
            f"client_name={self.client_name!r}, tls={self.tls!r})"
        )

    def parameters(self) -> list[pika.URLParameters]:
        """One pika parameters object per URL, in fail-over order."""
        result = []
        for url in self.broker_urls:
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
