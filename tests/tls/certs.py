"""Throwaway certificates made with the openssl CLI: a CA, a second unrelated CA, and server and
client certificates signed by the first, some of them deliberately bad.

``openssl ca`` rather than ``openssl x509 -req`` signs them: only it sets any validity period
(OpenSSL 3.0's ``x509`` has no ``-not_before``), which the expired certificate needs. The
extensions are what Python's strict verification (``VERIFY_X509_STRICT``, default from 3.13)
asks for: key identifiers, and basic constraints marked critical.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

#: The names every good server certificate is valid for.
SERVER_NAMES = ("127.0.0.1", "localhost")
#: The only name of the wrong-host certificate (also what RABBITMQ_TLS_SERVER_NAME may claim).
WRONG_HOST = "not-this-host.invalid"

_CA_EXTENSIONS = """\
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
_LEAF_EXTENSIONS = """\
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = {usage}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {names}
"""
# A minimal ``openssl ca`` configuration: its own database, serials and output directory.
_CA_CONFIG = """\
[ca]
default_ca = throwaway
[throwaway]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
certificate = {cert}
private_key = {key}
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
commonName = supplied
"""


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key (PEM files)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Certificates:
    """Everything a TLS test needs, under one directory."""

    ca: Pair
    other_ca: Pair  # trusted by nobody: a client given it cannot verify any server here
    server: Pair  # valid for SERVER_NAMES
    expired: Pair  # valid for SERVER_NAMES, but only until yesterday
    wrong_host: Pair  # valid, but only for WRONG_HOST
    client: Pair  # a client certificate the servers accept


def make_certificates(directory: Path) -> Certificates:
    """Generate the set with the openssl CLI (a second or so)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    maker = _Maker(openssl, directory)
    ca = maker.ca("ev-test-ca")
    now = datetime.now(UTC)
    day = timedelta(days=1)
    return Certificates(
        ca=ca,
        other_ca=maker.ca("ev-test-unrelated-ca"),
        server=maker.leaf("server", ca, SERVER_NAMES, "serverAuth", now - day, now + day),
        expired=maker.leaf("expired", ca, SERVER_NAMES, "serverAuth", now - 3 * day, now - day),
        wrong_host=maker.leaf("wrong-host", ca, (WRONG_HOST,), "serverAuth", now - day, now + day),
        client=maker.leaf("client", ca, ("ev-test-client",), "clientAuth", now - day, now + day),
    )


class _Maker:
    def __init__(self, openssl: str, directory: Path) -> None:
        self.openssl = openssl
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str) -> None:
        result = subprocess.run(
            [self.openssl, *args], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")

    def key(self, name: str) -> Path:
        key = self.dir / f"{name}.key"
        curve = "ec_paramgen_curve:P-256"
        self.run("genpkey", "-algorithm", "EC", "-pkeyopt", curve, "-out", str(key))
        return key

    def ca(self, name: str) -> Pair:
        key = self.key(name)
        cert = self.dir / f"{name}.crt"
        extensions = self.dir / f"{name}.ext"
        extensions.write_text(_CA_EXTENSIONS, encoding="utf-8")
        self.run(
            "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={name}", "-config", str(extensions), "-extensions", "ca",
        )  # fmt: skip
        return Pair(cert, key)

    def leaf(
        self,
        name: str,
        issuer: Pair,
        names: tuple[str, ...],
        usage: str,
        not_before: datetime,
        not_after: datetime,
    ) -> Pair:
        key = self.key(name)
        request, cert = self.dir / f"{name}.csr", self.dir / f"{name}.crt"
        self.run("req", "-new", "-key", str(key), "-out", str(request), "-subj", f"/CN={name}")
        extensions = self.dir / f"{name}.ext"
        alt_names = ", ".join(
            f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in names
        )
        extensions.write_text(
            _LEAF_EXTENSIONS.format(usage=usage, names=alt_names), encoding="utf-8"
        )
        self.run(
            "ca", "-batch", "-notext", "-config", str(self._ca_config(issuer)),
            "-startdate", _asn1(not_before), "-enddate", _asn1(not_after),
            "-extfile", str(extensions), "-extensions", "leaf",
            "-in", str(request), "-out", str(cert),
        )  # fmt: skip
        return Pair(cert, key)

    def _ca_config(self, issuer: Pair) -> Path:
        state = self.dir / f"{issuer.cert.stem}-db"
        if not state.exists():
            (state / "issued").mkdir(parents=True)
            (state / "index.txt").write_text("", encoding="utf-8")
            (state / "serial").write_text("1000\n", encoding="utf-8")
        config = state / "ca.cnf"
        config.write_text(
            _CA_CONFIG.format(dir=state, cert=issuer.cert, key=issuer.key), encoding="utf-8"
        )
        return config


def _asn1(moment: datetime) -> str:
    """``openssl ca``'s date format (GeneralizedTime, UTC)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")
