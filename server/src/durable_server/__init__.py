"""The Durable orchestrator: a gRPC service that owns all workflow state in PostgreSQL."""

from __future__ import annotations

from durable_server.app import Orchestrator, run_migrations
from durable_server.config import Settings

__all__ = ["Orchestrator", "Settings", "run_migrations"]
