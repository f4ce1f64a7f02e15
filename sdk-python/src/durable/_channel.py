"""How clients and workers reach the orchestrator: TLS, tokens, and the channel's options.

Every channel (clients' and workers') reconnects briskly and sends keepalive pings, so a
connection that died silently (a host gone, a middlebox that dropped it) fails its calls
within seconds instead of at their deadlines. Clients' channels also carry a gRPC
service config whose retry policy sends the calls that are safe to repeat (reads, and
writes that set a value) again on ``UNAVAILABLE``, with backoff: a restart of the
orchestrator or of its database costs such a call a few seconds, not an error. Calls
that could act twice (starting, signalling, cancelling) are never retried by the channel.

Example::

    Client("orchestrator:7411", token=os.environ["DURABLE_TOKEN"], tls=True)  # system CAs
    Client("orchestrator:7411", tls=TLSConfig(ca_file="ca.pem", cert_file="me.pem",
                                              key_file="me.key"))  # own CA, mTLS
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

__all__ = [
    "CHANNEL_OPTIONS",
    "CLIENT_CHANNEL_OPTIONS",
    "RETRIED_METHODS",
    "RETRY_POLICY",
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

# gRPC backs off reconnecting for up to two minutes by default: after an orchestrator
# restart, a client (or worker) would stay cut off that long. Keep retries brisk.
_RECONNECT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

KEEPALIVE_TIME_MS = 30_000
"""A channel with a call in flight pings the orchestrator after this long without a frame.

The orchestrator accepts pings this often (``durable_server.app``), so a long poll parked
there is pinged without being refused as abusive.
"""

_KEEPALIVE_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    # No answer to a ping within this: the connection is dead, its calls fail UNAVAILABLE.
    ("grpc.keepalive_timeout_ms", 10_000),
    # Keep pinging while a long poll sends nothing (by default gRPC stops after two).
    ("grpc.http2.max_pings_without_data", 0),
    # An idle channel does not ping: it has nothing to lose, and pings would keep idle
    # connections open on the orchestrator for nothing.
    ("grpc.keepalive_permit_without_calls", 0),
]

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    *_RECONNECT_OPTIONS,
    *_KEEPALIVE_OPTIONS,
    # What a channel retries is decided here, never by a service config found in DNS.
    ("grpc.service_config_disable_resolution", 1),
]
"""The options of every channel to the orchestrator, workers' too."""

RETRIED_METHODS: Mapping[str, tuple[str, ...]] = {
    "durable.v1.WorkflowService": (
        # Reads. WaitExecution too: Client.wait also asks again until its own deadline.
        "GetExecution",
        "WaitExecution",
        "ListExecutions",
        "ListChildren",
        "ListPendingInputs",
        "ListPendingEvents",
        "GetExecutionGraph",
        "ListWorkers",
    ),
    # Updates set fields to the values sent: applying one twice is applying it once.
    "durable.v1.ScheduleService": (
        "GetSchedule",
        "ListSchedules",
        "UpdateSchedule",
        "EnableSchedule",
        "DisableSchedule",
    ),
    "durable.v1.OperationsService": (
        "ListQueues",
        "Diagnose",
        "PauseQueue",
        "ResumeQueue",
        "DrainQueue",
    ),
}
"""The methods the channel sends again on UNAVAILABLE: those safe to repeat.

Not retried, because a second attempt could act twice or answer differently after the
first one took effect: StartWorkflow(s) (a start without an idempotency key would run
twice; a service config is per method, not per request), SendEvent (the same, without an
event id), CancelExecution and ProvideInput (a repeat is refused as already done),
CreateSchedule, DeleteSchedule, TriggerSchedule, RetryExecution. Workers' calls have
none: the worker resends its own reports, knowing which leases are still valid.
"""

RETRY_POLICY: Mapping[str, Any] = {
    # 5 is the most gRPC allows. Pauses of about 0.25, 0.75, 2.25 and 5 s (gRPC adds
    # +-20%): a call rides out about 8 s of "the database is unavailable" answers or of
    # refused connections, and fails with UNAVAILABLE (or its deadline) after that.
    "maxAttempts": 5,
    "initialBackoff": "0.25s",
    "maxBackoff": "5s",
    "backoffMultiplier": 3,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
"""The retry policy of the methods in :data:`RETRIED_METHODS`."""


def service_config() -> str:
    """The clients' service config, as JSON: :data:`RETRY_POLICY` for :data:`RETRIED_METHODS`."""
    names = [
        {"service": service, "method": method}
        for service, methods in RETRIED_METHODS.items()
        for method in methods
    ]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": dict(RETRY_POLICY)}]})


CLIENT_CHANNEL_OPTIONS: list[tuple[str, int | str]] = [
    *CHANNEL_OPTIONS,
    ("grpc.enable_retries", 1),
    ("grpc.service_config", service_config()),
]
"""The options of :class:`~durable.Client` and :class:`~durable.SyncClient` channels."""

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


def sync_channel(address: str, options: ChannelOptions, tls: TLSConfig | None) -> grpc.Channel:
    """A blocking channel, over TLS when ``tls`` is given."""
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, tls.credentials(), options=options)


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
