"""Leases: claiming ready tasks, extending held leases, giving tasks back unrun."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

from durable_server.engine.context import (
    ERROR_TRAILER,
    WORKER_UNKNOWN,
    EngineContext,
    check_fresh,
)
from durable_server.engine.presence import WorkerPresence
from durable_server.engine.scope import QueueScope, check_task_queues
from durable_server.errors import FailedPreconditionError
from durable_server.store import tasks as task_store
from durable_server.store.db import Conn
from durable_server.store.rows import ClaimedTask

__all__ = ["Leases"]


class Leases:
    """PollTasks' claims, Heartbeat and ReleaseTasks."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.presence = WorkerPresence(ctx.db, ctx.clock)

    async def claim(
        self, worker_id: str, queues: Sequence[str], max_tasks: int
    ) -> tuple[list[ClaimedTask], datetime | None]:
        """Lease up to ``max_tasks`` ready tasks for a registered worker.

        Returns the tasks, and when none: when delayed work of ``queues`` is next ready.
        A queue without a concurrency limit is claimed from by one statement, outside
        any transaction; a limited one takes its lock and counts its leases first.
        """
        ctx = self.ctx
        self.presence.seen(worker_id)
        limited = any(q in ctx.settings.queue_limits for q in queues)
        now, began = ctx.clock.db_now(), time.monotonic()
        async with ctx.unit(transaction=limited) as uow:
            claimed = await self._claim_from(uow.conn, worker_id, queues, max_tasks, now)
        if claimed:
            return claimed, None
        # Delayed work that became due after the claim began (a retry's backoff ending)
        # counts as next: the poll then claims again at once instead of sleeping past it.
        async with ctx.db.connection() as conn:
            known, next_due = await task_store.task_poll_idle(
                conn,
                worker_id=worker_id,
                queues=list(queues),
                claimed_at=now,
                claimed_secs_ago=time.monotonic() - began,
            )
        if not known:
            raise FailedPreconditionError(
                f"worker {worker_id!r} is unknown: call RegisterWorkflows first",
                trailers=[(ERROR_TRAILER, WORKER_UNKNOWN)],
            )
        return [], next_due

    async def _claim_from(
        self,
        conn: Conn,
        worker_id: str,
        queues: Sequence[str],
        max_tasks: int,
        now: datetime | None,
    ) -> list[ClaimedTask]:
        settings, metrics = self.ctx.settings, self.ctx.metrics
        if len(queues) > 1:  # claim only from the queues with work: one query finds them
            queues = await task_store.task_ready_queues(conn, queues=list(queues), now=now)
        claimed: list[ClaimedTask] = []
        for queue in queues:
            room = max_tasks - len(claimed)
            limit = settings.queue_limits.get(queue)
            if limit is not None:
                await task_store.task_queue_lock(conn, queue=queue)
                leased = await task_store.task_queue_leased_count(conn, queue=queue)
                room = min(room, limit - leased)
            if room <= 0:
                continue
            batch = await task_store.task_claim_many(
                conn,
                worker_id=worker_id,
                queue=queue,
                limit=room,
                now=now,
                lease_secs=settings.lease_secs,
                timeout_grace_secs=settings.timeout_grace_secs,
            )
            claimed += batch
            metrics.count_claimed(queue, [t.dispatch_secs for t in batch])
        return claimed

    async def release(self, leases: Sequence[tuple[int, str]], scope: QueueScope = None) -> None:
        """Give leased tasks back unrun, without using an attempt (none outside ``scope``)."""
        ids = [i for i, _ in leases]
        async with self.ctx.unit() as uow:
            tasks = await task_store.task_lock_leased_many(
                uow.conn, ids=ids, tokens=[t for _, t in leases]
            )
            check_task_queues(((t.id, t.queue) for t in tasks), scope)
            check_fresh(ids, tasks)
            released = await task_store.task_release_many(
                uow.conn, ids=ids, now=self.ctx.clock.db_now()
            )
            uow.ready(q for q, _ in released)

    async def heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, str]], scope: QueueScope = None
    ) -> tuple[list[int], datetime | None]:
        """Extend held leases; returns (lost task ids, new expiry).

        One held task outside ``scope`` (the caller's queues) refuses the call: no lease
        is extended.
        """
        self.presence.seen(worker_id)
        if not leases:
            return [], None
        settings = self.ctx.settings
        async with self.ctx.unit(transaction=False) as uow:  # one statement
            held = await task_store.task_heartbeat_many(
                uow.conn,
                ids=[i for i, _ in leases],
                tokens=[t for _, t in leases],
                lease_secs=settings.lease_secs,
                now=self.ctx.clock.db_now(),
                timeout_grace_secs=settings.timeout_grace_secs,
                queues=sorted(scope) if scope is not None else None,
            )
        check_task_queues(((h.id, h.queue) for h in held), scope)
        extended = {h.id: h.lease_expires_at for h in held if h.lease_expires_at is not None}
        lost = [i for i, _ in leases if i not in extended]
        return lost, min(extended.values(), default=None)
