"""What every engine write shares, and the unit of work each write runs in.

An :class:`EngineContext` holds the database, the clock, the settings, the definitions,
the metrics and the :class:`Hooks` that tell the rest of the process about committed
changes. Every write of the engine opens one unit::

    async with ctx.unit() as uow:
        ...  # uow.conn, uow.applier, uow.apply(decisions)

The unit opens the transaction and builds the :class:`~durable_server.engine.apply.Applier`
on first use. On the way out, still inside the transaction, it NOTIFYs the other
orchestrators of the queues with new ready work; once committed, it wakes this
process's parked polls and, when timers were added, the timer loop. A rollback does none
of it. Something every change must carry (a row describing it, say) belongs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from durable_server.clock import Clock
from durable_server.config import Settings
from durable_server.engine.apply import Applier, FinishNotice
from durable_server.engine.definitions import Definition, DefinitionCache
from durable_server.engine.transitions import Decision, workflow_version_of
from durable_server.errors import AbortedError, FailedPreconditionError, NotFoundError
from durable_server.metrics import Metrics
from durable_server.store import tasks as task_store
from durable_server.store.db import Conn, Database
from durable_server.store.rows import LeasedTask

__all__ = [
    "ERROR_TRAILER",
    "RETRIES",
    "STALE_TRAILER",
    "WORKER_UNKNOWN",
    "EngineContext",
    "Handback",
    "Hooks",
    "UnitOfWork",
    "check_fresh",
]

log = logging.getLogger(__name__)

STALE_TRAILER = "durable-stale-task-ids"
ERROR_TRAILER = "durable-error"
"""Trailing metadata key naming a refusal's cause for programs (a value below)."""
WORKER_UNKNOWN = "worker-unknown"
"""``durable-error`` value: the worker id is not registered (or was forgotten); register."""
RETRIES = 3
T = TypeVar("T")


def _nothing(_: Any) -> None:
    return None


@dataclass(frozen=True)
class Hooks:
    """Who hears of committed changes in this process (all optional).

    Attributes:
        on_ready: Queues with new ready work (wakes parked polls).
        on_timer: Timers were added (wakes the timer loop).
        on_finished: Executions finished (wakes parked WaitExecution calls).
    """

    on_ready: Callable[[Iterable[str]], None] = _nothing
    on_timer: Callable[[], None] = lambda: None
    on_finished: Callable[[list[str]], None] = _nothing


@dataclass(frozen=True)
class Handback:
    """A reporting worker's room for the tasks its report makes ready (see ``Applier``)."""

    worker_id: str
    queues: Sequence[str]
    limit: int


@dataclass
class EngineContext:
    """The database, clock, settings, definitions, metrics and hooks of the engine."""

    db: Database
    clock: Clock
    settings: Settings
    definitions: DefinitionCache
    metrics: Metrics = field(default_factory=Metrics)
    hooks: Hooks = field(default_factory=Hooks)
    rand: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        schema = self.settings.schema
        self.notify_channel = f"durable_{schema}_tasks"
        # Executions finished, for WaitExecution: NOTIFY on this channel, and on_finished here.
        self.finish_notice = FinishNotice(f"durable_{schema}_finished", self.hooks.on_finished)

    @contextlib.asynccontextmanager
    async def unit(
        self, *, handback: Handback | None = None, transaction: bool = True
    ) -> AsyncIterator[UnitOfWork]:
        """One write: a transaction, its applier, its NOTIFY and its after-commit hooks.

        ``transaction`` False: a single statement that commits by itself (one round trip
        less); ``handback``: tasks the applier makes ready go to that worker.
        """
        opened = self.db.transaction() if transaction else self.db.connection()
        async with opened as conn:
            uow = UnitOfWork(self, conn, handback)
            yield uow
            await task_store.task_notify_ready(
                conn, channel=self.notify_channel, queues=uow.to_notify()
            )
        uow.committed()

    async def retrying(self, once: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a unit again when it lost to a concurrent one (deadlock, conflict).

        A report whose group a sibling's failure is deleting, for example, can deadlock
        with it; PostgreSQL aborts one, and running it again sees the other's outcome.
        """
        for attempt in range(1, RETRIES + 1):
            try:
                return await once(*args)
            except AbortedError:
                if attempt == RETRIES:
                    raise
                log.info("%s lost to a concurrent change; running it again", once.__name__)
                await asyncio.sleep(0.005 * attempt * (1 + self.rand()))
        raise AssertionError("unreachable")

    async def definition(self, version: str) -> Definition:
        """A stored definition version (NOT_FOUND when missing)."""
        definition = await self.definitions.get(version)
        if definition is None:  # a foreign key makes this impossible short of manual deletes
            raise NotFoundError(f"workflow version {version} is not stored")
        return definition


class UnitOfWork:
    """The connection of one write, and what it made ready (see ``EngineContext.unit``)."""

    def __init__(self, ctx: EngineContext, conn: Conn, handback: Handback | None) -> None:
        self.ctx = ctx
        self.conn = conn
        self._handback = handback
        self._applier: Applier | None = None
        self._ready: set[str] = set()  # to NOTIFY and wake here
        self._woken: set[str] = set()  # NOTIFYed by a statement already: wake here only
        self._timers = False

    @property
    def applier(self) -> Applier:
        """The applier of this unit (built on first use)."""
        if self._applier is None:
            self._applier = self._build_applier()
        return self._applier

    def _build_applier(self) -> Applier:
        ctx, settings, handback = self.ctx, self.ctx.settings, self._handback
        if handback is None or handback.limit <= 0:
            return Applier(
                self.conn,
                {},
                now=ctx.clock.db_now(),
                max_step_runs=settings.max_step_runs,
                metrics=ctx.metrics,
                finish_notice=ctx.finish_notice,
            )
        return Applier(
            self.conn,
            {},
            now=ctx.clock.db_now(),
            max_step_runs=settings.max_step_runs,
            metrics=ctx.metrics,
            finish_notice=ctx.finish_notice,
            handback=task_store.Handback(
                handback.worker_id, settings.lease_secs, settings.timeout_grace_secs
            ),
            # A queue with a concurrency limit is only claimed from under its lock.
            handback_queues=frozenset(handback.queues) - set(settings.queue_limits),
            handback_room=handback.limit,
        )

    def ready(self, queues: Iterable[str], *, notified: bool = False) -> None:
        """Queues with new ready work; ``notified``: a statement sent their NOTIFY already."""
        (self._woken if notified else self._ready).update(queues)

    def wake_timers(self) -> None:
        """Wake the timer loop once committed: it must find the new timers."""
        self._timers = True

    async def apply(self, decisions: Sequence[Decision]) -> Applier:
        """Apply every effect of ``decisions``, loading the definitions they need."""
        effects = [e for d in decisions for e in d.effects]
        applier = self.applier
        known = applier.definitions
        for e in effects:
            version = workflow_version_of(e)
            if version is not None and version not in known:
                known[version] = await self.ctx.definition(version)
        await applier.apply(effects)
        return applier

    def to_notify(self) -> list[str]:
        """The queues to NOTIFY before the commit."""
        if self._applier is not None:
            self._ready |= self._applier.ready
        return sorted(self._ready)

    def committed(self) -> None:
        """Tell this process: the timer loop, then the parked polls."""
        hooks = self.ctx.hooks
        if self._timers or (self._applier is not None and self._applier.timers_added):
            hooks.on_timer()
        woken = self._ready | self._woken
        if woken:
            hooks.on_ready(sorted(woken))


def check_fresh(ids: Sequence[int], held: Sequence[LeasedTask]) -> None:
    """Refuse the call when a lease of ``ids`` is not among ``held`` (stale or wrong)."""
    stale = sorted(set(ids) - {t.id for t in held})
    if stale:
        listed = ", ".join(str(i) for i in stale)
        raise FailedPreconditionError(
            f"the lease on task(s) {listed} is stale or wrong: the task finished, was "
            "cancelled, or was reclaimed and leased again; nothing was recorded — drop "
            f"these tasks (ids in trailer {STALE_TRAILER!r}) and send the rest again",
            trailers=[(STALE_TRAILER, ",".join(str(i) for i in stale))],
        )
