"""Background work: reclaiming expired leases and firing due timers."""

from __future__ import annotations

import logging
from datetime import datetime

from durable_server.engine.context import EngineContext, UnitOfWork
from durable_server.engine.states import ExecutionStatus
from durable_server.engine.transitions import FinishExecution, StepError, decide_lease_expired
from durable_server.engine.waits import timed_out
from durable_server.store import tasks as task_store
from durable_server.store import timers as timer_store
from durable_server.store import waits as wait_store

__all__ = ["Timers"]

log = logging.getLogger(__name__)


class Timers:
    """What the reclaimer and the timer loop run."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._outages_made_up = 0  # outages whose leases were given a full length again

    async def reclaim_expired(self, limit: int = 500) -> int:
        """Retry or fail the tasks whose leases expired; returns how many.

        Time the database was out of reach does not count against a lease: workers could
        neither heartbeat nor report meanwhile, and their steps may well have finished.
        So after an outage this orchestrator saw (any failed contact, see
        ``Reachability``), and after PostgreSQL started (its ``pg_postmaster_start_time``),
        every lease is first given a full length again, in the same transaction as the
        reclaim, so no reclaim runs ahead of it. Each replica does so before its own
        reclaims (they all see the database go), and the start time covers a replica that
        saw nothing (one started while the database was down).
        """
        return await self.ctx.retrying(self._reclaim_expired_once, limit)

    async def _reclaim_expired_once(self, limit: int) -> int:
        ctx = self.ctx
        outages = ctx.db.reachability.outages
        async with ctx.unit() as uow:
            extended = await task_store.task_lease_extend_after_outage(
                uow.conn,
                after_outage=outages != self._outages_made_up,
                now=ctx.clock.db_now(),
                lease_secs=ctx.settings.lease_secs,
            )
            expired = await task_store.task_lock_expired_many(
                uow.conn, now=ctx.clock.db_now(), limit=limit
            )
            decisions = []
            for task, past_timeout in expired:
                definition = await ctx.definition(task.workflow_version)
                decisions.append(
                    decide_lease_expired(
                        definition,
                        task,
                        past_timeout=past_timeout,
                        max_losses=ctx.settings.max_lost_attempts,
                        rand=ctx.rand,
                    )
                )
            await uow.apply(decisions)
        self._outages_made_up = outages
        if extended:
            log.info(
                "gave %d lease(s) a full %gs again: the database was out of reach",
                len(extended),
                ctx.settings.lease_secs,
            )
        if expired:
            log.info("reclaimed %d expired lease(s)", len(expired))
        return len(expired)

    async def next_lease_expiry(self) -> datetime | None:
        """When the next lease expires."""
        async with self.ctx.db.connection() as conn:
            return await task_store.task_next_lease_expiry(conn)

    async def fire_timers(self, limit: int = 500) -> int:
        """Fire due timers (workflow timeouts, wait timeouts); returns how many fired."""
        return await self.ctx.retrying(self._fire_timers_once, limit)

    async def _fire_timers_once(self, limit: int) -> int:
        async with self.ctx.unit() as uow:
            due = await timer_store.timer_fire_due(
                uow.conn, now=self.ctx.clock.db_now(), limit=limit
            )
            finishes = [
                FinishExecution(
                    t.execution_id,
                    ExecutionStatus.TIMED_OUT,
                    error_json=StepError(
                        "WorkflowTimeout", f"the execution did not finish by {t.due_at.isoformat()}"
                    ).to_json(),
                )
                for t in due
                if t.kind == "execution_timeout"
            ]
            await uow.applier.finish(finishes)
            for t in due:
                if t.kind == "wait_timeout" and t.wait_id is not None:
                    await _wait_timed_out(uow, t.wait_id)
        return len(due)

    async def next_timer_due(self) -> datetime | None:
        """When the next timer is due."""
        async with self.ctx.db.connection() as conn:
            return await timer_store.timer_next_due(conn)


async def _wait_timed_out(uow: UnitOfWork, wait_id: int) -> None:
    wait = await wait_store.wait_take(uow.conn, wait_id=wait_id)
    if wait is None:  # whatever it waited for came first
        return
    applier = uow.applier
    await applier.wake([(wait.task_id, wait.wait_index, timed_out(wait))])
    if wait.kind == "child" and wait.child_id is not None:
        error = StepError(
            "Cancelled", "the parent step stopped waiting for it (its call timed out)"
        ).to_json()
        await applier.finish(
            [FinishExecution(wait.child_id, ExecutionStatus.CANCELLED, error_json=error)]
        )
