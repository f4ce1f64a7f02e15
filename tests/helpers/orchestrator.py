"""Run an orchestrator in the test's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from opentelemetry.trace import TracerProvider

from durable_server.app import Orchestrator
from durable_server.clock import Clock
from durable_server.config import Settings


@contextlib.asynccontextmanager
async def running_orchestrator(
    database_url: str,
    *,
    clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
    **settings: Any,
) -> AsyncIterator[Orchestrator]:
    """An orchestrator on 127.0.0.1:<free port>, stopped on exit."""
    base = Settings(database_url=database_url, listen="127.0.0.1:0", pool_min_size=1)
    orchestrator = Orchestrator(
        replace(base, **settings), database_url, clock=clock, tracer_provider=tracer_provider
    )
    await orchestrator.start()
    try:
        yield orchestrator
    finally:
        await orchestrator.stop(grace=0.5)
