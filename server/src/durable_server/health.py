"""grpc.health.v1 statuses that follow whether PostgreSQL answers.

Every few seconds a ``SELECT 1`` with a short timeout runs; when it fails, the overall
status ("") and every service become NOT_SERVING, and SERVING again once it succeeds.
An unreachable database is logged where it is watched (``store.reachability``), so here
only a database that is reachable but too slow to answer is worth a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from grpc_health.v1 import health_pb2

from durable_server.store import monitoring as mon_store
from durable_server.store.db import Database, is_unreachable

__all__ = ["DatabaseHealth", "StatusSetter", "database_probe"]

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[None]]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def database_probe(db: Database) -> Probe:
    """A probe that raises unless ``db`` answers ``SELECT 1`` (the caller bounds its time)."""

    async def probe() -> None:
        async with db.connection() as conn:
            await mon_store.monitoring_ping(conn)

    return probe


class StatusSetter(Protocol):
    """What is used of grpc_health's aio HealthServicer."""

    async def set(self, service: str, status: int) -> None:
        """Set ``service``'s status."""
        ...


class DatabaseHealth:
    """Runs ``probe`` every ``interval`` seconds and sets the health statuses accordingly."""

    def __init__(
        self,
        servicer: StatusSetter,
        services: Sequence[str],
        probe: Probe,
        *,
        interval: float,
        timeout: float,
        on_change: Callable[[bool], None] = lambda _up: None,
    ) -> None:
        self.servicer = servicer
        self.services = ("", *services)
        self.probe = probe
        self.interval = interval
        self.timeout = timeout
        self.on_change = on_change
        self.serving = True  # the app sets SERVING when it starts
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Probe once and update the statuses; True when the database answered."""
        try:
            # Not wait_for: on Python 3.11 it swallows a cancel that arrives as the probe
            # ends, and stop() would then wait for a task that runs on.
            async with asyncio.timeout(self.timeout):
                await self.probe()
            up = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.serving:
                log.log(
                    logging.DEBUG if is_unreachable(exc) else logging.WARNING,
                    "health: the database does not answer (%s): NOT_SERVING",
                    type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
                )
            up = False
        if up != self.serving:
            log.debug("health: %s", "SERVING" if up else "NOT_SERVING")
            await self._set(_SERVING if up else _NOT_SERVING)
            self.serving = up
            self.on_change(up)
        return up

    async def _set(self, status: int) -> None:
        for name in self.services:
            await self.servicer.set(name, status)

    def start(self) -> None:
        """Check in the background."""
        self._task = asyncio.create_task(self._run(), name="durable-health")

    async def stop(self) -> None:
        """Stop checking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # setting a status failed: keep checking
                log.exception("health check failed")
            await asyncio.sleep(self.interval)
