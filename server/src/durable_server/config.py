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
| DURABLE_DATA_DIR | .durable | where the embedded PostgreSQL keeps its data |
| DURABLE_LOG_LEVEL | INFO | log level |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Settings", "parse_queue_limits"]

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
    pool_min_size: int = 2
    pool_max_size: int = 20
    metrics_listen: str = ""  # empty: no metrics endpoint; port 0 picks a free one
    health_check_secs: float = 5.0
    data_dir: str = ".durable"
    log_level: str = "INFO"
    manual_clock: bool = False

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
            ("DURABLE_DATA_DIR", "data_dir", str),
            ("DURABLE_LOG_LEVEL", "log_level", str),
        ):
            if env.get(key):
                values[name] = kind(env[key])
        if env.get("DURABLE_QUEUE_LIMITS"):
            values["queue_limits"] = parse_queue_limits(env["DURABLE_QUEUE_LIMITS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def poll_heartbeat_secs(self) -> float:
        """How often workers should heartbeat a lease: a third of its length."""
        return self.lease_secs / 3
