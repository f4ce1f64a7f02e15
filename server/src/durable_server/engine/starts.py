"""Starting and cancelling executions.

Every new execution — started by a client, by a schedule, or as a child of a step run —
is built by :func:`new_execution`, from its definition's first node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from durable_server.batching import Batcher
from durable_server.engine.context import EngineContext, UnitOfWork
from durable_server.engine.definitions import Definition, StepDef
from durable_server.engine.states import TERMINAL_STATUSES, ExecutionStatus, TaskKind
from durable_server.engine.transitions import FinishExecution, StepError
from durable_server.errors import (
    DurableError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidJsonError,
    NotFoundError,
)
from durable_server.ids import new_execution_id
from durable_server.store import executions as ex_store
from durable_server.store.rows import ExecutionRow

__all__ = ["StartRequest", "Starts", "insert_scheduled", "new_execution"]


@dataclass(frozen=True)
class StartRequest:
    """A validated StartWorkflow request."""

    workflow_name: str
    input_json: str
    queue: str | None
    priority: int
    scheduled_at: datetime | None
    idempotency_key: str | None
    traceparent: str = ""


def new_execution(
    definition: Definition,
    *,
    execution_id: str,
    queue: str | None,
    priority: int,
    input_json: str,
    idempotency_key: str | None = None,
    scheduled_at: datetime | None = None,
    traceparent: str = "",
    schedule_name: str | None = None,
    schedule_slot: datetime | None = None,
) -> ex_store.NewExecution:
    """The row of a new execution of ``definition``, with its first task."""
    first = definition.first
    is_step = isinstance(first, StepDef)
    return ex_store.NewExecution(
        id=execution_id,
        workflow_name=definition.name,
        workflow_version=definition.version,
        queue=queue or definition.queue or "default",
        priority=priority,
        input_json=input_json,
        idempotency_key=idempotency_key,
        scheduled_at=scheduled_at,
        timeout_secs=definition.timeout_secs,
        first_step=first.name,
        first_step_timeout_secs=first.timeout_secs if isinstance(first, StepDef) else None,
        first_task_kind=TaskKind.STEP if is_step else TaskKind.ROUTE,
        schedule_name=schedule_name,
        schedule_slot=schedule_slot,
        traceparent=traceparent,
    )


async def insert_scheduled(uow: UnitOfWork, new: ex_store.NewExecution) -> None:
    """Create the execution a schedule starts (ready now), in ``uow``."""
    ctx = uow.ctx
    await ex_store.execution_insert(uow.conn, new, now=ctx.clock.db_now())
    ctx.metrics.count_started([new.workflow_name])
    uow.ready([new.queue])
    if new.timeout_secs is not None:
        uow.wake_timers()


class Starts:
    """StartWorkflow (one or many) and CancelExecution."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._batcher: Batcher[tuple[StartRequest, Definition], tuple[str, bool]] = Batcher(
            self._start_batch
        )

    async def start(self, req: StartRequest, definition: Definition) -> tuple[str, bool]:
        """Create an execution of ``definition``; returns (id, created).

        Concurrent starts share one statement and one commit (see ``batching``).
        """
        return await self._batcher.submit((req, definition))

    async def start_many(
        self, starts: Sequence[tuple[StartRequest, Definition]]
    ) -> list[tuple[str, bool]]:
        """Create many executions in one statement and one transaction: all or none.

        Returns (id, created) for each, in order. An input PostgreSQL refuses, or a
        draining queue, fails the whole call; the error names the requests at fault.
        """
        if not starts:
            return []
        try:
            results = await self._insert(list(starts), atomic=True)
        except (InvalidArgumentError, InvalidJsonError) as exc:
            if exc.message.startswith("requests["):
                raise
            bad = [i for i, (req, _) in enumerate(starts) if not _is_storable_json(req.input_json)]
            where = f"requests[{bad[0]}]: " if bad else ""
            raise type(exc)(f"{where}{exc.message}") from exc
        return [r for r in results if not isinstance(r, BaseException)]

    async def _start_batch(
        self, batch: list[tuple[StartRequest, Definition]]
    ) -> list[tuple[str, bool] | BaseException]:
        try:
            return await self._insert(batch)
        except (InvalidArgumentError, InvalidJsonError):
            if len(batch) == 1:
                raise
        # One bad input fails the whole statement: write each alone, so only it fails.
        out: list[tuple[str, bool] | BaseException] = []
        for item in batch:
            try:
                out += await self._insert([item])
            except (InvalidArgumentError, InvalidJsonError) as exc:
                out.append(exc)
        return out

    async def _insert(
        self, batch: list[tuple[StartRequest, Definition]], *, atomic: bool = False
    ) -> list[tuple[str, bool] | BaseException]:
        """Insert ``batch`` in one statement; with ``atomic``, none when any is refused."""
        ctx = self.ctx
        news = [
            new_execution(
                definition,
                execution_id=new_execution_id(),
                queue=req.queue,
                priority=req.priority,
                input_json=req.input_json,
                idempotency_key=req.idempotency_key,
                scheduled_at=req.scheduled_at,
                traceparent=req.traceparent,
            )
            for req, definition in batch
        ]
        now = ctx.clock.now()
        ready_now = [req.scheduled_at is None or req.scheduled_at <= now for req, _ in batch]
        # Not atomic: the one statement commits by itself (no BEGIN and COMMIT to wait for).
        async with ctx.unit(transaction=atomic) as uow:
            inserted = await ex_store.execution_insert_many(
                uow.conn,
                news,
                ready_now=ready_now,
                now=ctx.clock.db_now(),
                channel=ctx.notify_channel,  # the statement NOTIFYs the queues ready now
            )
            keys = [n.idempotency_key for n, i in zip(news, inserted, strict=True) if not i.created]
            held = (
                await ex_store.execution_ids_by_idempotency_keys(
                    uow.conn, keys=[k for k in keys if k is not None]
                )
                if any(keys)
                else {}
            )
            out: list[tuple[str, bool] | BaseException] = [
                _start_outcome(n, i, held) for n, i in zip(news, inserted, strict=True)
            ]
            refused = [(i, o) for i, o in enumerate(out) if isinstance(o, DurableError)]
            if atomic and refused:  # leaving the block with it rolls every insert back
                index, error = refused[0]
                raise type(error)(f"requests[{index}]: {error.message}")
            created = [n for n, o in zip(news, inserted, strict=True) if o.created]
            uow.ready(
                {n.queue for n, r in zip(news, ready_now, strict=True) if r}
                & {n.queue for n in created},
                notified=True,
            )
            if any(n.timeout_secs is not None for n in created):
                uow.wake_timers()
        ctx.metrics.count_started([n.workflow_name for n in created])
        return out

    async def cancel(self, execution_id: str, reason: str) -> ExecutionRow:
        """Cancel an unfinished execution: no further steps run."""
        error = StepError("Cancelled", reason or "cancelled by request").to_json()
        async with self.ctx.unit() as uow:
            status = await ex_store.execution_status_get(uow.conn, execution_id=execution_id)
            if status is None:
                raise NotFoundError(f"execution {execution_id} does not exist")
            if ExecutionStatus(status) in TERMINAL_STATUSES:
                raise FailedPreconditionError(
                    f"execution {execution_id} is already {status}; only pending, running or "
                    "waiting executions can be cancelled"
                )
            finish = FinishExecution(execution_id, ExecutionStatus.CANCELLED, error_json=error)
            await uow.applier.finish([finish])
            row = await ex_store.execution_get(uow.conn, execution_id=execution_id)
        assert row is not None
        return row


def _start_outcome(
    new: ex_store.NewExecution, inserted: ex_store.Inserted, held: Mapping[str, str]
) -> tuple[str, bool] | DurableError:
    """(id, created) of one start, or why it did not start."""
    if inserted.refused is not None:
        return FailedPreconditionError(
            f"queue {new.queue!r} is draining ({inserted.refused}): it takes no new "
            "executions until it is resumed"
        )
    if inserted.created:
        return (new.id, True)
    if new.idempotency_key is not None and new.idempotency_key in held:
        return (held[new.idempotency_key], False)
    return FailedPreconditionError("idempotency key conflict; try again")  # deleted meanwhile


def _is_storable_json(text: str) -> bool:
    """Whether PostgreSQL's jsonb takes ``text`` (checked only to name a refused input)."""

    def refuse(constant: str) -> None:  # NaN and Infinity are not JSON
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return False
    return "\\u0000" not in text  # jsonb cannot hold the NUL character
