"""Workflow registration: store definition versions and point names at the latest.

A workflow name belongs to the queue it was first registered on (the queue of its
latest version). A registration that would move it to another queue is refused, unless
it says ``allow_takeover`` and the caller may use the queue it leaves: otherwise any
worker allowed on one queue could register another queue's workflow name and receive
its executions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from durable.v1 import definition_pb2
from durable_server.engine.context import EngineContext
from durable_server.engine.definitions import Definition
from durable_server.engine.scheduler import Scheduler
from durable_server.errors import FailedPreconditionError, NotFoundError, PermissionDeniedError
from durable_server.store import workers as worker_store
from durable_server.store import workflows as wf_store
from durable_server.store.db import Conn

__all__ = ["FORGET_WORKERS_AFTER", "LATEST_TTL_SECS", "Registered", "Registry", "Takeover"]

LATEST_TTL_SECS = 2.0
# A worker not seen for this long is gone for good (a new process registers a new id):
# its row is deleted when another worker registers.
FORGET_WORKERS_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class Registered:
    """The outcome of registering one definition."""

    name: str
    version: str
    created: bool


@dataclass(frozen=True)
class Takeover:
    """Whether a registration may move workflows from the queue they run on to another.

    Attributes:
        allowed: The registration asked to move them (``allow_takeover``).
        may_use: Whether the caller may use a queue (the one a workflow would leave).
    """

    allowed: bool = False
    may_use: Callable[[str], bool] = lambda _queue: True


class Registry:
    """Definitions by name and version."""

    def __init__(self, ctx: EngineContext, scheduler: Scheduler | None = None) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.definitions = ctx.definitions
        self.clock = ctx.clock
        self.scheduler = scheduler
        self._latest: dict[str, tuple[str, float]] = {}  # name -> (version, valid until)

    async def register(
        self,
        worker_id: str,
        protos: Sequence[definition_pb2.WorkflowDefinition],
        queues: Sequence[str],
        takeover: Takeover | None = None,
        *,
        add: bool = False,
    ) -> list[Registered]:
        """Store each definition, make it the latest of its name, and record the worker.

        The definitions' versions become the worker's whole set, or with ``add`` join it
        (each replacing a version of the same name the worker registered before).

        Raises:
            FailedPreconditionError: A workflow runs on another queue than the one its new
                definition declares, and ``takeover`` does not allow moving it.
            PermissionDeniedError: ``takeover`` allows it, but the caller may not use the
                queue the workflow runs on now.
        """
        takeover = takeover or Takeover()
        parsed = [Definition.from_proto(p) for p in protos]
        out: list[Registered] = []
        async with self.ctx.unit() as uow:
            conn = uow.conn
            for d in sorted(parsed, key=lambda d: d.name):  # a fixed order avoids deadlocks
                created = await wf_store.workflow_version_insert(
                    conn,
                    version=d.version,
                    name=d.name,
                    definition=d.proto.SerializeToString(deterministic=True),
                )
                if not await wf_store.workflow_claim(conn, name=d.name, version=d.version):
                    await self._check_owner(conn, d, takeover)
                    await wf_store.workflow_latest_upsert(conn, name=d.name, version=d.version)
                if created and self.scheduler is not None:
                    # A new version of the code: its declared schedules become the stored ones.
                    await self.scheduler.declare(conn, d)
                out.append(Registered(d.name, d.version, created))
            versions = [d.version for d in parsed]
            if add:
                await worker_store.worker_upsert_adding(
                    conn,
                    worker_id=worker_id,
                    versions=versions,
                    names=[d.name for d in parsed],
                    queues=list(queues),
                    now=self.clock.db_now(),
                    forget_after=FORGET_WORKERS_AFTER,
                )
            else:
                await worker_store.worker_upsert(
                    conn,
                    worker_id=worker_id,
                    versions=versions,
                    queues=list(queues),
                    now=self.clock.db_now(),
                    forget_after=FORGET_WORKERS_AFTER,
                )
        for d in parsed:
            self.definitions.put(d)
            self._latest[d.name] = (d.version, time.monotonic() + LATEST_TTL_SECS)
        by_name = {r.name: r for r in out}
        return [by_name[d.name] for d in parsed]

    async def _check_owner(self, conn: Conn, new: Definition, takeover: Takeover) -> None:
        """Refuse moving a registered workflow to another queue unless ``takeover`` allows it.

        The workflow's row stays locked until the transaction ends, so two registrations
        of one name are decided one after the other.
        """
        version = await wf_store.workflow_latest_lock(conn, name=new.name)
        current = await self.definitions.get(version) if version is not None else None
        if current is None:
            return
        old_queue, new_queue = _queue(current), _queue(new)
        if old_queue == new_queue:
            return
        if not takeover.allowed:
            raise FailedPreconditionError(
                f"workflow {new.name!r} runs on queue {old_queue!r}: registering it on queue "
                f"{new_queue!r} would take it over; to move it, register with allow_takeover "
                "(durable-worker --allow-takeover) with a token allowed on both queues"
            )
        if not takeover.may_use(old_queue):
            raise PermissionDeniedError(
                f"workflow {new.name!r} runs on queue {old_queue!r}, which this token may not "
                f"use: it cannot move the workflow to queue {new_queue!r}"
            )

    async def latest(self, name: str) -> Definition:
        """The definition new executions of ``name`` use.

        The name's latest version is remembered for ``LATEST_TTL_SECS``: a version that
        another orchestrator registers is used by this one's new executions that much
        later at most (one that this orchestrator registers, at once).
        """
        cached = self._latest.get(name)
        if cached is not None and cached[1] > time.monotonic():
            version: str | None = cached[0]
        else:
            async with self.db.connection() as conn:
                version = await wf_store.workflow_latest_get(conn, name=name)
            if version is not None:
                self._latest[name] = (version, time.monotonic() + LATEST_TTL_SECS)
        if version is None:
            raise NotFoundError(
                f"workflow {name!r} is not registered: start a worker whose module defines it"
            )
        definition = await self.definitions.get(version)
        if definition is None:
            raise FailedPreconditionError(f"workflow {name!r} points at a missing version")
        return definition


def _queue(definition: Definition) -> str:
    """The queue a definition's executions start on unless the caller names another."""
    return definition.queue or "default"
