"""Operators' actions: queue states and statistics, retrying a failed execution, diagnosis."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from durable_server.engine.context import EngineContext
from durable_server.engine.definitions import StepDef
from durable_server.engine.states import REOPENABLE, TaskKind
from durable_server.engine.transitions import ROOT, EnqueueTask, Origin
from durable_server.errors import FailedPreconditionError, NotFoundError
from durable_server.store import executions as ex_store
from durable_server.store import operations as ops_store
from durable_server.store import step_attempts as attempt_store

__all__ = ["Finding", "Operations", "QueueStats"]

PROBLEMS = {
    "no_task": "nothing is queued for it: no task, no wait, no timer (a bug or a manual "
    "change in the database); cancel it, or retry it if it failed",
    "waiting_on_nothing": "a step waits, but nothing is recorded that would end the wait; "
    "cancel it",
    "queue_paused": "its next step is ready on queue {queue!r}, which is paused; resume it",
    "no_worker_for_queue": "its next step is ready on queue {queue!r}, which no live worker "
    "polls; start a worker for that queue",
    "no_worker_for_version": "its next step is ready on queue {queue!r}, but no live worker "
    "has the workflow version it runs on; start a worker with that version of the code",
}


@dataclass(frozen=True)
class QueueStats:
    """One queue's state and load."""

    name: str
    state: str
    reason: str
    ready: int
    leased: int
    waiting: int
    delayed: int
    oldest_ready_age: timedelta | None
    concurrency_limit: int


@dataclass(frozen=True)
class Finding:
    """An unfinished execution that cannot move forward, and why."""

    execution_id: str
    workflow_name: str
    status: str
    problem: str
    detail: str
    since: datetime


class Operations:
    """Queue states, queue statistics, RetryExecution and Diagnose."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.clock = ctx.clock
        self.definitions = ctx.definitions
        self.queue_limits = dict(ctx.settings.queue_limits)

    async def set_queue_state(self, queue: str, state: str, reason: str) -> QueueStats:
        """Pause, drain (``state``) or resume ("active") a queue; returns its stats."""
        async with self.ctx.unit() as uow:
            if state == "active":
                await ops_store.queue_state_clear(uow.conn, name=queue)
            else:
                await ops_store.queue_state_set(
                    uow.conn, name=queue, state=state, reason=reason, now=self.clock.db_now()
                )
            if state != "paused":
                uow.ready([queue])  # parked polls take its work again
        return next(q for q in await self.queue_stats(also=queue) if q.name == queue)

    async def queue_stats(self, also: str | None = None) -> list[QueueStats]:
        """Every queue with tasks or a state (and ``also``, even when idle)."""
        now = self.clock.now()
        async with self.db.connection() as conn:
            rows = await ops_store.queue_stats(conn, now=self.clock.db_now())
        out = [self._stats(r, now) for r in rows]
        if also is not None and also not in {q.name for q in out}:
            out.append(QueueStats(also, "active", "", 0, 0, 0, 0, None, self._limit(also)))
        return out

    def _limit(self, queue: str) -> int:
        return self.queue_limits.get(queue, 0)

    def _stats(self, r: Any, now: datetime) -> QueueStats:
        oldest = r["oldest"]
        return QueueStats(
            name=r["name"],
            state=r["state"] or "active",
            reason=r["reason"],
            ready=r["ready"],
            leased=r["leased"],
            waiting=r["waiting"],
            delayed=r["delayed"],
            oldest_ready_age=max(now - oldest, timedelta(0)) if oldest else None,
            concurrency_limit=self._limit(r["name"]),
        )

    async def retry_execution(self, execution_id: str) -> str:
        """Run a failed execution again from its failed top-level step; returns the step."""
        async with self.ctx.unit() as uow:
            conn = uow.conn
            status = await ex_store.execution_status_get(conn, execution_id=execution_id)
            if status is None:
                raise NotFoundError(f"execution {execution_id} does not exist")
            if status not in REOPENABLE:
                raise FailedPreconditionError(
                    f"execution {execution_id} is {status}: only failed executions can be retried"
                )
            failed = await attempt_store.step_attempt_last_failure(conn, execution_id=execution_id)
            if failed is None:
                raise FailedPreconditionError(
                    f"execution {execution_id} has no failed top-level step to run again "
                    "(a failure inside a parallel group or foreach is not retried from here)"
                )
            step_name, kind, input_json = failed
            row = await ex_store.execution_get(conn, execution_id=execution_id)
            assert row is not None
            definition = await self.definitions.get(row.workflow_version)
            assert definition is not None
            node = definition.nodes.get(step_name)
            timeout = node.timeout_secs if isinstance(node, StepDef) else None
            await ops_store.execution_reopen(
                conn,
                execution_id=execution_id,
                allowed_from=sorted(REOPENABLE),
                timeout_secs=definition.timeout_secs,
                now=self.clock.db_now(),
            )
            applier = uow.applier
            applier.definitions[definition.version] = definition
            origin = Origin(execution_id, row.queue, row.priority, row.workflow_version)
            await applier.apply(
                [EnqueueTask(origin, ROOT, TaskKind(kind), step_name, input_json, timeout)]
            )
            uow.ready([row.queue])
        return step_name

    async def diagnose(self, *, limit: int, alive_within: timedelta) -> list[Finding]:
        """Unfinished executions that nothing can move forward, oldest first."""
        async with self.db.connection() as conn:
            rows = await ops_store.execution_stuck_list(
                conn,
                now=self.clock.db_now(),
                alive_secs=alive_within.total_seconds(),
                limit=limit,
            )
        return [
            Finding(
                execution_id=str(r["id"]),
                workflow_name=r["workflow_name"],
                status=r["status"],
                problem=r["problem"],
                detail=PROBLEMS[r["problem"]].format(queue=r["queue"]),
                since=r["since"],
            )
            for r in rows
        ]
