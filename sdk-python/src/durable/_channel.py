"""How clients and workers reach the orchestrator: TLS, client certificates and tokens.

Example::

    Client("orchestrator:7411", token=os.environ["DURABLE_TOKEN"], tls=True)  # system CAs
    Client("orchestrator:7411", tls=TLSConfig(ca_file="ca.pem", cert_file="me.pem",
                                              key_file="me.key"))  # own CA, mTLS
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

__all__ = [
    "BearerTokenInterceptor",
    "TLSConfig",
    "aio_channel",
    "auth_metadata",
    "check_token",
    "connection_from_env",
    "resolve_tls",
    "sync_channel",
]

TOKEN_ENV = "DURABLE_TOKEN"
TLS_ENV = "DURABLE_TLS"
TLS_CA_ENV = "DURABLE_TLS_CA"
TLS_CERT_ENV = "DURABLE_TLS_CLIENT_CERT"
TLS_KEY_ENV = "DURABLE_TLS_CLIENT_KEY"

ChannelOptions = Sequence[tuple[str, Any]]

if TYPE_CHECKING:  # generic in the type stubs only
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _UnaryUnaryInterceptor = grpc.aio.UnaryUnaryClientInterceptor


@dataclass(frozen=True)
class TLSConfig:
    """TLS to the orchestrator.

    Attributes:
        ca_file: PEM certificates to trust for the orchestrator's; None: the system's.
        cert_file: PEM client certificate, for an orchestrator that requires one (mTLS).
        key_file: PEM private key of ``cert_file``.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("a client certificate needs both cert_file and key_file")

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials, from the files (read now)."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file),
            private_key=_read(self.key_file),
            certificate_chain=_read(self.cert_file),
        )


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


def resolve_tls(tls: bool | TLSConfig | None) -> TLSConfig | None:
    """``True`` is TLS with the system's CAs; ``False`` or None is plain text."""
    if tls is True:
        return TLSConfig()
    return tls or None


def check_token(token: str | None) -> str | None:
    """The token, if it can travel in gRPC metadata; ValueError otherwise."""
    if token is None:
        return None
    token = token.strip()
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("a token is a single line of printable ASCII, like dur_<id>_<secret>")
    return token


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata that carries ``token``: ``authorization: Bearer <token>``."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def aio_channel(
    address: str,
    options: ChannelOptions,
    tls: TLSConfig | None,
    interceptors: Sequence[Any] | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel, over TLS when ``tls`` is given."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        address, tls.credentials(), options=options, interceptors=interceptors
    )


def sync_channel(address: str, tls: TLSConfig | None) -> grpc.Channel:
    """A blocking channel, over TLS when ``tls`` is given."""
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, tls.credentials())


class BearerTokenInterceptor(_UnaryUnaryInterceptor):
    """Adds ``authorization: Bearer <token>`` to every unary call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = auth_metadata(token)

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Send the call with the token added to its metadata."""
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()), *self._metadata)
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            metadata,
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        return await continuation(details, request)


def connection_from_env(env: Mapping[str, str]) -> tuple[str | None, TLSConfig | None]:
    """The token and TLS settings of the environment (for the commands).

    ``DURABLE_TOKEN``; TLS when ``DURABLE_TLS`` is true or ``DURABLE_TLS_CA`` (a PEM file
    of CAs to trust) is set; ``DURABLE_TLS_CLIENT_CERT`` and ``DURABLE_TLS_CLIENT_KEY``
    for a client certificate.
    """
    token = env.get(TOKEN_ENV) or None
    ca, cert, key = (env.get(k) or None for k in (TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV))
    flag = (env.get(TLS_ENV) or "").strip().lower()
    if flag not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError(f"{TLS_ENV}={flag!r} is not a yes/no value: use true or false")
    wanted = flag in ("1", "true", "yes", "on") or bool(ca or cert)
    return token, TLSConfig(ca, cert, key) if wanted else None
