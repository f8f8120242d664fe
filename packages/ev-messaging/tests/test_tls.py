from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from ev_messaging import MessagingError, TlsSettings


def test_the_context_always_verifies_chain_and_host_name() -> None:
    context = TlsSettings().context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_client_certificate_needs_its_key() -> None:
    with pytest.raises(MessagingError, match="both cert_file and key_file"):
        TlsSettings(cert_file=Path("client.crt"))
    with pytest.raises(MessagingError, match="both cert_file and key_file"):
        TlsSettings(key_file=Path("client.key"))


def test_an_empty_server_name_is_refused() -> None:
    with pytest.raises(MessagingError, match="server_name"):
        TlsSettings(server_name=" ")


@pytest.mark.parametrize("field", ["ca_file", "cert_file"])
def test_files_that_do_not_load_are_a_messaging_error(tmp_path: Path, field: str) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    files = {"ca_file": junk} if field == "ca_file" else {"cert_file": junk, "key_file": junk}
    with pytest.raises(MessagingError, match="cannot load the AMQP TLS files"):
        TlsSettings(**files).context()
    with pytest.raises(MessagingError, match="cannot load the AMQP TLS files"):
        TlsSettings(ca_file=tmp_path / "missing.pem").context()


def test_an_encrypted_key_fails_instead_of_prompting(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    argv = [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=client",
        "-passout", "pass:secret",
    ]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=30)
    with pytest.raises(MessagingError, match="cannot load the AMQP TLS files"):
        TlsSettings(cert_file=cert, key_file=key).context()
