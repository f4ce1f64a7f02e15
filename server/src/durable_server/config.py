"""Orchestrator settings: one frozen value built from the environment and the command line.

Nothing else in the orchestrator reads ``os.environ``.

| variable | default | meaning |
| --- | --- | --- |
| DURABLE_DATABASE_URL | (embedded PostgreSQL) | PostgreSQL URL |
| DURABLE_SCHEMA | durable | schema holding every table |
| DURABLE_LISTEN | 127.0.0.1:7411 | gRPC listen address |
| DURABLE_MAX_PAYLOAD_BYTES | 2097152 | largest input or result accepted |
| DURABLE_MAX_LOG_BYTES | 262144 | log text kept per step attempt (more is dropped, and said so) |
| DURABLE_LEASE_SECONDS | 30 | how long a task lease lasts without a heartbeat |
| DURABLE_QUEUE_LIMITS | (none) | per-queue concurrency limits, e.g. ``emails=5,reports=2`` |
| DURABLE_MAX_LOST_ATTEMPTS | 10 | a step lost this often (dead workers) fails its execution |
| DURABLE_METRICS_LISTEN | (off) | Prometheus ``/metrics`` HTTP address, e.g. ``127.0.0.1:9464`` |
| DURABLE_HEALTH_CHECK_SECONDS | 5 | how often the gRPC health status checks the database |
| DURABLE_LOOP_INTERVAL_SECONDS | 1 | how often the background loops re-check the database |
| DURABLE_RETENTION_DAYS | 30 | finished executions older than this are deleted; 0 keeps them |
| DURABLE_DATA_DIR | .durable | where the embedded PostgreSQL keeps its data |
| DURABLE_LOG_LEVEL | INFO | log level |
| DURABLE_TLS_CERT | (none) | PEM certificate chain of the gRPC port; with the key, serves TLS |
| DURABLE_TLS_KEY | (none) | PEM private key of that certificate |
| DURABLE_TLS_CLIENT_CA | (none) | PEM CAs: clients must show a certificate one signed (mTLS) |
| DURABLE_ALLOW_INSECURE | false | allow plain text on an address beyond loopback |
| DURABLE_AUTH | auto | tokens required: ``on``, ``off``, or ``auto`` (unless on loopback) |
| DURABLE_AUTH_CACHE_SECONDS | 5 | how long a verified token is reused (revocation delay) |
| DURABLE_MANUAL_CLOCK | false | test mode: a manual clock, moved only through TestingService |

Plain text (no TLS) is refused at start on any address beyond loopback unless
DURABLE_ALLOW_INSECURE is set (say, behind a proxy that terminates TLS).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Settings", "is_loopback", "parse_bool", "parse_queue_limits"]

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def parse_queue_limits(text: str) -> dict[str, int]:
    """Parse ``"a=5,b=2"`` into ``{"a": 5, "b": 2}``; raise ValueError on bad input."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"bad queue limit {part!r}: expected QUEUE=N with N >= 1")
        limits[name.strip()] = int(value)
    return limits


def parse_bool(name: str, text: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ValueError otherwise."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{name}={text!r} is not a yes/no value: use true or false")


def is_loopback(listen: str) -> bool:
    """Whether a ``host:port`` listen address accepts connections from this machine only."""
    host = listen.rsplit(":", 1)[0].strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface), or a name that may resolve to a public address


@dataclass(frozen=True)
class Settings:
    """Everything the orchestrator is configured with."""

    database_url: str | None = None
    schema: str = "durable"
    listen: str = "127.0.0.1:7411"
    max_payload_bytes: int = 2 * 1024 * 1024
    max_log_bytes: int = 256 * 1024
    max_log_lines: int = 10_000
    lease_secs: float = 30.0
    timeout_grace_secs: float = 5.0
    default_poll_wait_secs: float = 30.0
    max_poll_wait_secs: float = 60.0
    queue_limits: Mapping[str, int] = field(default_factory=dict)
    max_lost_attempts: int = 10
    max_step_runs: int = 100_000
    loop_interval_secs: float = 1.0
    retention_days: float = 30.0  # 0: keep finished executions forever
    pool_min_size: int = 2
    pool_max_size: int = 20
    metrics_listen: str = ""  # empty: no metrics endpoint; port 0 picks a free one
    health_check_secs: float = 5.0
    data_dir: str = ".durable"
    log_level: str = "INFO"
    manual_clock: bool = False  # test mode: time moves only through TestingService
    tls_cert: str = ""  # PEM files; both set: the gRPC port serves TLS
    tls_key: str = ""
    tls_client_ca: str = ""  # set: clients must present a certificate this CA signed (mTLS)
    allow_insecure: bool = False  # plain text beyond loopback
    auth: bool | None = None  # None: required unless listening on loopback
    auth_cache_secs: float = 5.0

    def __post_init__(self) -> None:
        if not _SCHEMA.match(self.schema):
            raise ValueError(
                f"schema {self.schema!r} is invalid: use lower-case letters, digits and '_'"
            )
        if self.max_payload_bytes < 1024:
            raise ValueError("max_payload_bytes must be at least 1024")
        if self.lease_secs <= 0:
            raise ValueError("lease_secs must be positive")
        if self.max_log_bytes < 0 or self.max_log_lines < 0:
            raise ValueError("max_log_bytes and max_log_lines must not be negative")
        if self.metrics_listen and not re.fullmatch(r".*:\d{1,5}", self.metrics_listen):
            raise ValueError(
                f"metrics_listen {self.metrics_listen!r} is invalid: use HOST:PORT, "
                "e.g. 127.0.0.1:9464"
            )
        if self.health_check_secs <= 0:
            raise ValueError("health_check_secs must be positive")
        if self.loop_interval_secs <= 0:
            raise ValueError("loop_interval_secs must be positive")
        if self.retention_days < 0:
            raise ValueError("retention_days must not be negative (0 keeps everything)")
        self._check_security()

    def _check_security(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("TLS needs both DURABLE_TLS_CERT and DURABLE_TLS_KEY")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError(
                "DURABLE_TLS_CLIENT_CA (mTLS) needs TLS: set DURABLE_TLS_CERT and DURABLE_TLS_KEY"
            )
        if not self.tls and not self.allow_insecure and not is_loopback(self.listen):
            raise ValueError(
                f"refusing plain text on {self.listen}, which is not a loopback address: set "
                "DURABLE_TLS_CERT and DURABLE_TLS_KEY to serve TLS, or DURABLE_ALLOW_INSECURE=true "
                "to accept plain text (e.g. behind a proxy that terminates TLS)"
            )
        if self.auth_cache_secs < 0:
            raise ValueError("auth_cache_secs must not be negative")

    @property
    def tls(self) -> bool:
        """Whether the gRPC port serves TLS."""
        return bool(self.tls_cert)

    @property
    def auth_required(self) -> bool:
        """Whether every call needs a token: as configured, else unless on loopback."""
        return self.auth if self.auth is not None else not is_loopback(self.listen)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from environment variables, then ``overrides`` (None values ignored)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if env.get("DURABLE_DATABASE_URL"):
            values["database_url"] = env["DURABLE_DATABASE_URL"]
        for key, name, kind in (
            ("DURABLE_SCHEMA", "schema", str),
            ("DURABLE_LISTEN", "listen", str),
            ("DURABLE_MAX_PAYLOAD_BYTES", "max_payload_bytes", int),
            ("DURABLE_MAX_LOG_BYTES", "max_log_bytes", int),
            ("DURABLE_LEASE_SECONDS", "lease_secs", float),
            ("DURABLE_MAX_LOST_ATTEMPTS", "max_lost_attempts", int),
            ("DURABLE_MAX_STEP_RUNS", "max_step_runs", int),
            ("DURABLE_METRICS_LISTEN", "metrics_listen", str),
            ("DURABLE_HEALTH_CHECK_SECONDS", "health_check_secs", float),
            ("DURABLE_LOOP_INTERVAL_SECONDS", "loop_interval_secs", float),
            ("DURABLE_RETENTION_DAYS", "retention_days", float),
            ("DURABLE_DATA_DIR", "data_dir", str),
            ("DURABLE_LOG_LEVEL", "log_level", str),
            ("DURABLE_TLS_CERT", "tls_cert", str),
            ("DURABLE_TLS_KEY", "tls_key", str),
            ("DURABLE_TLS_CLIENT_CA", "tls_client_ca", str),
            ("DURABLE_AUTH_CACHE_SECONDS", "auth_cache_secs", float),
        ):
            if env.get(key):
                values[name] = kind(env[key])
        if env.get("DURABLE_ALLOW_INSECURE"):
            values["allow_insecure"] = parse_bool(
                "DURABLE_ALLOW_INSECURE", env["DURABLE_ALLOW_INSECURE"]
            )
        if env.get("DURABLE_MANUAL_CLOCK"):
            values["manual_clock"] = parse_bool("DURABLE_MANUAL_CLOCK", env["DURABLE_MANUAL_CLOCK"])
        auth = env.get("DURABLE_AUTH", "").strip().lower()
        if auth and auth != "auto":
            values["auth"] = parse_bool("DURABLE_AUTH", auth)
        if env.get("DURABLE_QUEUE_LIMITS"):
            values["queue_limits"] = parse_queue_limits(env["DURABLE_QUEUE_LIMITS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def poll_heartbeat_secs(self) -> float:
        """How often workers should heartbeat a lease: a third of its length."""
        return self.lease_secs / 3
