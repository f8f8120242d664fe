"""TLS options for redis-py clients, shared by every service that talks to Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def redis_tls_options(
    *,
    ca_file: str | Path | None = None,
    cert_file: str | Path | None = None,
    key_file: str | Path | None = None,
    insecure: bool = False,
) -> dict[str, Any]:
    """Keyword arguments of ``redis.Redis`` / ``redis.asyncio.Redis`` for a TLS connection.

    Without ``ca_file`` the system's CAs verify the server; ``insecure`` skips certificate and
    host name checks (for test servers only).
    """
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both cert_file and key_file")
    return {
        "ssl": True,
        "ssl_ca_certs": None if ca_file is None else str(ca_file),
        "ssl_certfile": None if cert_file is None else str(cert_file),
        "ssl_keyfile": None if key_file is None else str(key_file),
        "ssl_cert_reqs": "none" if insecure else "required",
        "ssl_check_hostname": not insecure,
    }
