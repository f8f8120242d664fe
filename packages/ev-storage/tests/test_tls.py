from __future__ import annotations

import pytest

from ev_storage import redis_tls_options


def test_verifying_tls_by_default() -> None:
    options = redis_tls_options(ca_file="/etc/ca.pem")
    assert options["ssl"] is True
    assert options["ssl_ca_certs"] == "/etc/ca.pem"
    assert options["ssl_cert_reqs"] == "required"
    assert options["ssl_check_hostname"] is True


def test_insecure_skips_the_checks() -> None:
    options = redis_tls_options(insecure=True)
    assert (options["ssl_cert_reqs"], options["ssl_check_hostname"]) == ("none", False)


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(ValueError, match="both cert_file and key_file"):
        redis_tls_options(cert_file="/etc/client.pem")
