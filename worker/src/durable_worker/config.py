"""Worker settings: the one place the worker reads the environment.

Environment variables:

| variable | default | meaning |
| --- | --- | --- |
| DURABLE_SERVER_ADDRESS | 127.0.0.1:7411 | the orchestrator's ``host:port`` |
| DURABLE_LOG_LEVEL | INFO | log level when ``--log-level`` is not given |
| DURABLE_TOKEN | (none) | worker token sent with every call (``durable token create``) |
| DURABLE_TLS | false | TLS to the orchestrator, trusting the system's CAs |
| DURABLE_TLS_CA | (none) | TLS, trusting the CAs in this PEM file |
| DURABLE_TLS_CLIENT_CERT | (none) | PEM client certificate, for an orchestrator that requires one |
| DURABLE_TLS_CLIENT_KEY | (none) | PEM private key of that certificate |
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from durable import TLSConfig
from durable._shared import connection_from_env

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "WorkerSettings",
    "default_address",
    "default_connection",
    "default_log_level",
    "default_worker_id",
]

ADDRESS_ENV = "DURABLE_SERVER_ADDRESS"
LOG_LEVEL_ENV = "DURABLE_LOG_LEVEL"
DEFAULT_ADDRESS = "127.0.0.1:7411"
DEFAULT_CONCURRENCY = 10
DEFAULT_DRAIN_TIMEOUT = 30.0
DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024


def default_address(environ: Mapping[str, str] | None = None) -> str:
    """The orchestrator's address: ``$DURABLE_SERVER_ADDRESS``, else ``127.0.0.1:7411``."""
    env = os.environ if environ is None else environ
    return env.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def default_log_level(environ: Mapping[str, str] | None = None) -> str:
    """The log level: ``$DURABLE_LOG_LEVEL``, else ``INFO``."""
    env = os.environ if environ is None else environ
    return (env.get(LOG_LEVEL_ENV) or "INFO").upper()


def default_connection(
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, TLSConfig | None]:
    """The token and TLS settings: ``$DURABLE_TOKEN`` and ``$DURABLE_TLS*``."""
    return connection_from_env(os.environ if environ is None else environ)


def default_worker_id() -> str:
    """A worker id unique to this process: ``<hostname>-<pid>-<6 random hex digits>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the command line configures.

    Attributes:
        modules: Python modules to import workflows from.
        server_address: The orchestrator's ``host:port``.
        queues: Queues to poll; empty means every queue the loaded workflows use.
        concurrency: Steps run at the same time, at most.
        worker_id: This worker's id; ``None`` picks :func:`default_worker_id`.
        drain_timeout: Seconds a drain waits for running steps before giving them back.
        max_payload_bytes: Largest step result the worker reports, in bytes.
        log_level: Name of the logging level.
        token: The worker token sent with every call; None sends none.
        tls: TLS settings; None is plain text.
        allow_takeover: Move workflows registered on another queue to the one their
            definitions declare (see ``Worker``).
    """

    modules: tuple[str, ...]
    server_address: str = field(default_factory=default_address)
    queues: tuple[str, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    worker_id: str | None = None
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    log_level: str = field(default_factory=default_log_level)
    token: str | None = None
    tls: TLSConfig | None = None
    allow_takeover: bool = False

    def __post_init__(self) -> None:
        if not self.modules:
            raise ValueError("name at least one module to load workflows from")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.drain_timeout < 0:
            raise ValueError(f"drain timeout must not be negative, got {self.drain_timeout}")
        if self.max_payload_bytes < 1:
            raise ValueError(f"max payload bytes must be positive, got {self.max_payload_bytes}")
        if self.log_level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {self.log_level!r}")
