"""The gRPC port's credentials: TLS from PEM files, with client certificates for mTLS."""

from __future__ import annotations

from pathlib import Path

import grpc

from durable_server.config import Settings

__all__ = ["TLSConfigError", "server_credentials"]


class TLSConfigError(ValueError):
    """A TLS file cannot be read, or is not PEM."""


def _read(what: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if b"-----BEGIN " not in data:
        raise TLSConfigError(f"the {what} {path} is not a PEM file")
    return data


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials for the gRPC port; None when it serves plain text."""
    if not settings.tls:
        return None
    key = _read("TLS key (DURABLE_TLS_KEY)", settings.tls_key)
    cert = _read("TLS certificate (DURABLE_TLS_CERT)", settings.tls_cert)
    client_ca = (
        _read("client CA (DURABLE_TLS_CLIENT_CA)", settings.tls_client_ca)
        if settings.tls_client_ca
        else None
    )
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
