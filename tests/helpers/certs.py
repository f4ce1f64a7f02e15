"""Throwaway certificates for TLS tests, made with the ``openssl`` command."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    """Throwaway PEM files: a CA, a server and a client it signed, and a stranger's client."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    rogue_ca: str
    rogue_cert: str
    rogue_key: str


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def _ca(folder: Path, name: str) -> None:
    _openssl(
        folder,
        *("req", "-x509", "-new", "-nodes", "-days", "1", "-subj", f"/CN={name}"),
        *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-keyout", f"{name}.key", "-out", f"{name}.pem"),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )


def _leaf(folder: Path, name: str, ca: str, usage: str) -> None:
    _openssl(
        folder,
        *("req", "-new", "-nodes", "-subj", f"/CN={name}"),
        *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
        *("-keyout", f"{name}.key", "-out", f"{name}.csr"),
    )
    (folder / f"{name}.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={usage}\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    _openssl(
        folder,
        *("x509", "-req", "-in", f"{name}.csr", "-days", "1", "-out", f"{name}.pem"),
        *("-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial"),
        *("-extfile", f"{name}.ext"),
    )


def make_certs(folder: Path) -> Certs:
    """A CA, a server and a client certificate it signed, and a rogue CA with its client."""
    _ca(folder, "ca")
    _ca(folder, "rogue-ca")
    _leaf(folder, "server", "ca", "serverAuth")
    _leaf(folder, "client", "ca", "clientAuth")
    _leaf(folder, "rogue", "rogue-ca", "clientAuth")
    f = {p.name: str(p) for p in folder.iterdir()}
    return Certs(
        f["ca.pem"],
        f["server.pem"],
        f["server.key"],
        f["client.pem"],
        f["client.key"],
        f["rogue-ca.pem"],
        f["rogue.pem"],
        f["rogue.key"],
    )
