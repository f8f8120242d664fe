"""TLS for ``amqps://`` URLs: which CA verifies the broker, which certificate proves the client.

The context always verifies the broker's certificate chain and its host name: there is no switch
to turn that off. A broker reached under another name than its certificate's (an IP address, a
tunnel) is verified against ``server_name`` instead, never not at all.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from ev_messaging.errors import MessagingError


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How to verify the broker and, optionally, how to prove the client (mutual TLS).

    ``ca_file`` (PEM) holds the CAs trusted to sign the broker's certificate; without it the
    system's CAs are used. ``cert_file`` and ``key_file`` (PEM) are the client's certificate and
    key, both or neither. ``server_name`` is the name the broker's certificate must carry, and
    the name sent for SNI, when it is not the URL's host.
    """

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise MessagingError("a client certificate needs both cert_file and key_file")
        if self.server_name is not None and not self.server_name.strip():
            raise MessagingError("server_name must not be empty")

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the broker's chain and host name (TLS 1.2 or later).

        Raises :class:`MessagingError` when a file cannot be read or does not hold what it
        should (a key that does not match its certificate, an encrypted key, a CA file without a
        certificate).
        """
        try:
            context = ssl.create_default_context(
                cafile=None if self.ca_file is None else str(self.ca_file)
            )
            if self.cert_file is not None:
                # An empty password: an encrypted key fails here rather than OpenSSL prompting
                # for its passphrase on the terminal (or hanging without one).
                context.load_cert_chain(self.cert_file, self.key_file, password=b"")
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise MessagingError(f"cannot load the AMQP TLS files: {exc}") from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # create_default_context already does both; stated here because they are the point.
        context.verify_mode = ssl.CERT_REQUIRED
        context.check_hostname = True
        return context
