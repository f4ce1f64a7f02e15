"""Store functions for executions (``sql/executions.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import ExecutionRow


@dataclass(frozen=True)
class NewExecution:
    """What ``execution_insert`` needs."""

    id: str
    workflow_name: str
    workflow_version: str
    queue: str
    priority: int
    input_json: str
    idempotency_key: str | None
    scheduled_at: datetime | None
    timeout_secs: float | None
    first_step: str
    first_step_timeout_secs: float | None
    first_task_kind: str = "step"
    schedule_name: str | None = None
    schedule_slot: datetime | None = None
    traceparent: str = ""


@dataclass(frozen=True)
class ExecutionFilter:
    """Filters shared by ``execution_list`` and ``execution_count``."""

    workflow_name: str | None = None
    statuses: tuple[str, ...] = ()
    queue: str | None = None
    parent_id: str | None = None
    top_level_only: bool = False
    created_after: datetime | None = None
    created_before: datetime | None = None
    schedule_name: str | None = None

    def args(self) -> tuple[object, ...]:
        """Positional arguments $1..$7 of both queries."""
        return (
            self.workflow_name,
            list(self.statuses),
            self.queue,
            self.parent_id,
            self.top_level_only,
            self.created_after,
            self.created_before,
        )


async def execution_insert(conn: Conn, new: NewExecution, *, now: datetime | None) -> str | None:
    """Insert an execution with its first task; None on an idempotency-key conflict."""
    value = await conn.fetchval(
        Q["execution_insert"],
        new.id,
        new.workflow_name,
        new.workflow_version,
        new.queue,
        new.priority,
        new.input_json,
        new.idempotency_key,
        now,
        new.scheduled_at,
        new.timeout_secs,
        new.first_step,
        new.first_step_timeout_secs,
        new.first_task_kind,
        new.schedule_name,
        new.schedule_slot,
        new.traceparent,
    )
    return str(value) if value is not None else None


@dataclass(frozen=True)
class Inserted:
    """What ``execution_insert_many`` did with one execution."""

    created: bool
    refused: str | None  # the draining queue's reason, when it took no new executions


async def execution_insert_many(
    conn: Conn,
    news: Sequence[NewExecution],
    *,
    ready_now: Sequence[bool],
    now: datetime | None,
    channel: str,
) -> list[Inserted]:
    """Insert executions with their first tasks in one statement; one outcome per input.

    An execution is not created when its idempotency key is taken (``created`` False) or
    when its queue is draining (``refused``). ``channel`` is notified of the queues that
    got work ready now.
    """
    rows = await conn.fetch(
        Q["execution_insert_many"],
        [n.id for n in news],
        [n.workflow_name for n in news],
        [n.workflow_version for n in news],
        [n.queue for n in news],
        [n.priority for n in news],
        [n.input_json for n in news],
        [n.idempotency_key for n in news],
        [n.scheduled_at for n in news],
        [n.timeout_secs for n in news],
        [n.first_step for n in news],
        [n.first_step_timeout_secs for n in news],
        [n.first_task_kind for n in news],
        [n.traceparent for n in news],
        list(ready_now),
        now,
        channel,
    )
    return [Inserted(r["created"], r["refused"]) for r in rows]


async def execution_ids_by_idempotency_keys(conn: Conn, *, keys: list[str]) -> dict[str, str]:
    """{idempotency key: execution id} for the keys that are held."""
    rows = await conn.fetch(Q["execution_ids_by_idempotency_keys"], keys)
    return {r["idempotency_key"]: str(r["id"]) for r in rows}


async def execution_id_by_idempotency_key(conn: Conn, *, key: str) -> str | None:
    """The execution holding ``key``, or None."""
    value = await conn.fetchval(Q["execution_id_by_idempotency_key"], key)
    return str(value) if value is not None else None


async def execution_get(conn: Conn, *, execution_id: str) -> ExecutionRow | None:
    """One execution, or None."""
    row = await conn.fetchrow(Q["execution_get"], execution_id)
    return ExecutionRow.from_record(row) if row else None


async def execution_list(
    conn: Conn,
    flt: ExecutionFilter,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[ExecutionRow]:
    """Up to ``limit`` executions, newest first, after a keyset cursor."""
    rows = await conn.fetch(
        Q["execution_list"],
        *flt.args(),
        after[0] if after else None,
        after[1] if after else None,
        limit,
        flt.schedule_name,
    )
    return [ExecutionRow.from_record(r) for r in rows]


async def execution_count(conn: Conn, flt: ExecutionFilter) -> int:
    """How many executions match ``flt``."""
    return int(await conn.fetchval(Q["execution_count"], *flt.args(), flt.schedule_name))


async def execution_status_get(conn: Conn, *, execution_id: str) -> str | None:
    """The status of an execution, row-locked for the transaction; None if unknown."""
    value = await conn.fetchval(Q["execution_status_get"], execution_id)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class Finished:
    """An execution just finished, and what it leaves to clean up."""

    id: str
    workflow_name: str
    has_parent: bool
    has_tasks: bool
    has_groups: bool
    has_timers: bool
    has_children: bool


class ExecutionFinish(NamedTuple):
    """An execution to end (:func:`execution_finish_many`); ``error_json`` None keeps its error."""

    execution_id: str
    status: str
    result_json: str | None = None
    error_json: str | None = None


async def execution_finish_many(
    conn: Conn,
    finishes: Sequence[ExecutionFinish],
    *,
    allowed_from: list[str],
    now: datetime | None,
    notify_channel: str | None = None,
) -> list[Finished]:
    """Finish executions still in ``allowed_from``; those that changed.

    With ``notify_channel``, NOTIFY it with the ids of those that changed.
    """
    if not finishes:
        return []
    rows = await conn.fetch(
        Q["execution_finish_many"],
        [f.execution_id for f in finishes],
        [f.status for f in finishes],
        [f.result_json for f in finishes],
        [f.error_json for f in finishes],
        now,
        allowed_from,
        notify_channel,
    )
    return [
        Finished(
            str(r["id"]),
            r["workflow_name"],
            r["has_parent"],
            r["has_tasks"],
            r["has_groups"],
            r["has_timers"],
            r["has_children"],
        )
        for r in rows
    ]


async def execution_sequences_take(conn: Conn, *, counts: dict[str, int]) -> dict[str, int]:
    """Take ``counts[id]`` more sequence numbers of each execution; {id: last one taken}."""
    if not counts:
        return {}
    rows = await conn.fetch(Q["execution_sequences_take"], list(counts), list(counts.values()))
    return {str(r["id"]): r["step_runs"] for r in rows}


async def execution_compensation_begin(
    conn: Conn, *, execution_id: str, error_json: str, allowed_from: list[str]
) -> bool:
    """Move an execution to compensating; False if it is in none of ``allowed_from``."""
    return bool(
        await conn.fetchval(
            Q["execution_compensation_begin"], execution_id, error_json, allowed_from
        )
    )


async def execution_compensation_failed_set(conn: Conn, *, execution_id: str) -> None:
    """Note a compensation that failed for good."""
    await conn.execute(Q["execution_compensation_failed_set"], execution_id)


async def execution_compensation_failed_get(conn: Conn, *, execution_id: str) -> bool:
    """Whether a compensation of the execution failed for good."""
    return bool(await conn.fetchval(Q["execution_compensation_failed_get"], execution_id))


@dataclass(frozen=True)
class NewChild:
    """A child execution to create (its id derived from the parent's step run)."""

    id: str
    workflow_name: str
    workflow_version: str
    queue: str
    priority: int
    input_json: str
    timeout_secs: float | None
    first_step: str
    first_step_timeout_secs: float | None
    first_task_kind: str


async def execution_insert_children(
    conn: Conn, children: list[NewChild], *, parent_id: str, now: datetime | None
) -> list[str]:
    """Create the children that do not exist yet; returns the ids created."""
    if not children:
        return []
    rows = await conn.fetch(
        Q["execution_insert_children"],
        [c.id for c in children],
        [c.workflow_name for c in children],
        [c.workflow_version for c in children],
        [c.queue for c in children],
        [c.priority for c in children],
        [c.input_json for c in children],
        [c.timeout_secs for c in children],
        [c.first_step for c in children],
        [c.first_step_timeout_secs for c in children],
        [c.first_task_kind for c in children],
        parent_id,
        now,
    )
    return [str(r["id"]) for r in rows]


async def execution_waiting_mark(conn: Conn, *, execution_id: str) -> None:
    """Mark the execution waiting if none of its tasks is ready or leased."""
    await conn.execute(Q["execution_waiting_mark"], execution_id)


async def execution_waiting_mark_many(conn: Conn, *, execution_ids: list[str]) -> None:
    """Mark running executions waiting when all their tasks wait (none ready or leased)."""
    if execution_ids:
        await conn.execute(Q["execution_waiting_mark_many"], execution_ids)


async def execution_running_mark_many(conn: Conn, *, execution_ids: list[str]) -> None:
    """Mark waiting executions running again."""
    if execution_ids:
        await conn.execute(Q["execution_running_mark_many"], execution_ids)


async def execution_descendants_active(
    conn: Conn, *, execution_ids: list[str], active: list[str]
) -> list[str]:
    """The unfinished descendants (status in ``active``) of these executions."""
    rows = await conn.fetch(Q["execution_descendants_active"], execution_ids, active)
    return [str(r["id"]) for r in rows]


async def execution_active(conn: Conn, *, execution_id: str, active: list[str]) -> bool:
    """Whether the execution exists and is unfinished (its status is in ``active``)."""
    return bool(await conn.fetchval(Q["execution_active"], execution_id, active))


async def execution_delete_finished_before(conn: Conn, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` executions finished before ``before``; returns how many."""
    status = await conn.execute(Q["execution_delete_finished_before"], before, limit)
    return int(status.split()[-1])


async def execution_oldest_finished(conn: Conn) -> datetime | None:
    """When the longest-finished execution still kept finished, or None."""
    value: datetime | None = await conn.fetchval(Q["execution_oldest_finished"])
    return value
