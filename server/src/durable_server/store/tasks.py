"""Store functions for the task queue (``sql/tasks.sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import ClaimedTask, LeasedTask, RunningStep


@dataclass(frozen=True)
class Handback:
    """Lease tasks that a report makes ready straight to the reporting worker."""

    worker_id: str
    lease_secs: float
    timeout_grace_secs: float


class NewTask(NamedTuple):
    """One task run for :func:`task_insert_many`, its fields in the statement's column order.

    A named tuple rather than a frozen dataclass: one is built for every task a report
    makes ready, and ``zip(*tasks)`` turns a batch into the statement's columns.
    """

    execution_id: str
    sequence: int
    step_name: str
    queue: str
    priority: int
    workflow_version: str
    timeout_secs: float | None
    input_json: str | None  # None: the lane's own input (a foreach item)
    kind: str
    group_id: int | None
    lane: int | None
    lane_path: str
    compensated_step: str | None
    compensated_sequence: int | None
    lease: bool  # lease it to the handback's worker at once


async def task_insert_many(
    conn: Conn,
    tasks: Sequence[NewTask],
    *,
    now: datetime | None,
    handback: Handback | None = None,
) -> list[ClaimedTask]:
    """Enqueue task runs, ready now.

    Those flagged ``lease`` are leased to ``handback``'s worker instead (unless their queue
    is paused) and returned.
    """
    if not tasks:
        return []
    (
        execution_ids,
        sequences,
        step_names,
        queues,
        priorities,
        workflow_versions,
        timeouts,
        inputs,
        kinds,
        group_ids,
        lanes,
        lane_paths,
        compensated_steps,
        compensated_sequences,
        leases,
    ) = [list(column) for column in zip(*tasks, strict=True)]
    rows = await conn.fetch(
        Q["task_insert_many"],
        execution_ids,
        sequences,
        step_names,
        queues,
        priorities,
        workflow_versions,
        timeouts,
        inputs,
        kinds,
        group_ids,
        lanes,
        lane_paths,
        compensated_steps,
        compensated_sequences,
        now,
        leases if handback is not None else [False] * len(tasks),
        handback.worker_id if handback else None,
        handback.lease_secs if handback else 0.0,
        handback.timeout_grace_secs if handback else 0.0,
    )
    return [_claimed(r) for r in rows]


def _claimed(r: Record) -> ClaimedTask:
    return ClaimedTask(
        id=r["id"],
        lease_token=r["lease_token"],
        lease_expires_at=r["lease_expires_at"],
        execution_id=r["execution_id"],
        workflow_name=r["workflow_name"],
        workflow_version=r["workflow_version"],
        step_name=r["step_name"],
        sequence=r["sequence"],
        attempt=r["attempt"],
        input_json=r["input"],
        execution_input_json=r["execution_input"],
        timeout_secs=r["timeout_secs"],
        kind=r["kind"],
        lane_path=r["lane_path"],
        compensated_step=r["compensated_step"],
        memo_json=r["memo"],
        traceparent=r["traceparent"] or "",
        dispatch_secs=r["dispatch_secs"],
        queue=r.get("queue", ""),
    )


async def task_claim_many(
    conn: Conn,
    *,
    worker_id: str,
    queue: str,
    limit: int,
    now: datetime | None,
    lease_secs: float,
    timeout_grace_secs: float,
) -> list[ClaimedTask]:
    """Lease up to ``limit`` ready tasks of ``queue`` for ``worker_id``; starts their executions."""
    rows = await conn.fetch(
        Q["task_claim_many"], worker_id, queue, limit, now, lease_secs, timeout_grace_secs
    )
    return [_claimed(r) for r in rows]


async def task_ready_queues(conn: Conn, *, queues: list[str], now: datetime | None) -> list[str]:
    """Those of ``queues`` (in their order) with a task available now, unpaused."""
    rows = await conn.fetch(Q["task_ready_queues"], queues, now)
    return [r["name"] for r in rows]


async def task_queue_lock(conn: Conn, *, queue: str) -> None:
    """Hold ``queue``'s claim lock until the transaction ends."""
    await conn.execute(Q["task_queue_lock"], queue)


async def task_queue_leased_count(conn: Conn, *, queue: str) -> int:
    """Leased tasks of ``queue``; call after :func:`task_queue_lock`."""
    row = await conn.fetchrow(Q["task_queue_leased_count"], queue)
    assert row is not None  # an aggregate: always one row
    return int(row["leased"])


async def task_poll_idle(
    conn: Conn,
    *,
    worker_id: str,
    queues: list[str],
    claimed_at: datetime | None,
    claimed_secs_ago: float,
) -> tuple[bool, datetime | None]:
    """(whether ``worker_id`` is registered, when delayed work of ``queues`` is next ready).

    Delayed work is what was not available when the claim ran: at ``claimed_at`` (the
    test clock's time), or with the database's clock ``claimed_secs_ago`` seconds ago.
    """
    row = await conn.fetchrow(Q["task_poll_idle"], queues, claimed_at, worker_id, claimed_secs_ago)
    assert row is not None  # subqueries only: always one row
    return bool(row["known"]), row["next_available_at"]


async def task_lock_leased_many(
    conn: Conn, *, ids: list[int], tokens: list[str]
) -> list[LeasedTask]:
    """Lock the leased tasks whose lease tokens match."""
    rows = await conn.fetch(Q["task_lock_leased_many"], ids, tokens)
    return [LeasedTask.from_record(r) for r in rows]


async def task_delete_many(conn: Conn, *, ids: list[int]) -> None:
    """Delete tasks by id."""
    if ids:
        await conn.execute(Q["task_delete_many"], ids)


async def task_delete_for_executions_except(
    conn: Conn, *, execution_ids: list[str], keep: list[int]
) -> int:
    """Delete the tasks of these executions but ``keep``; returns how many."""
    rows = await conn.fetch(Q["task_delete_for_executions_except"], execution_ids, keep)
    return len(rows)


async def task_delete_for_executions(conn: Conn, *, execution_ids: list[str]) -> int:
    """Delete every task of these executions; returns how many."""
    rows = await conn.fetch(Q["task_delete_for_executions"], execution_ids)
    return len(rows)


class TaskRetry(NamedTuple):
    """A leased task to make ready again as its next attempt (:func:`task_requeue_many`)."""

    task_id: int
    delay_secs: float
    failure: bool  # counts as a failure
    loss: bool  # counts as a loss


async def task_requeue_many(
    conn: Conn, retries: Sequence[TaskRetry], *, now: datetime | None
) -> list[tuple[str, datetime]]:
    """Make tasks ready again as their next attempt; returns (queue, available_at) of each."""
    if not retries:
        return []
    rows = await conn.fetch(
        Q["task_requeue_many"],
        [r.task_id for r in retries],
        [1 for _ in retries],
        [int(r.failure) for r in retries],
        [int(r.loss) for r in retries],
        [r.delay_secs for r in retries],
        now,
    )
    return [(r["queue"], r["available_at"]) for r in rows]


async def task_release_many(
    conn: Conn, *, ids: list[int], now: datetime | None
) -> list[tuple[str, datetime]]:
    """Give locked leased tasks back unrun: ready now, same attempt."""
    rows = await conn.fetch(Q["task_release_many"], ids, now)
    return [(r["queue"], r["available_at"]) for r in rows]


@dataclass(frozen=True)
class HeldLease:
    """A lease a heartbeat named and still held: its task's queue and new expiry."""

    id: int
    queue: str
    lease_expires_at: datetime | None  # None: not extended (a task outside the queues)


async def task_heartbeat_many(
    conn: Conn,
    *,
    ids: list[int],
    tokens: list[str],
    lease_secs: float,
    now: datetime | None,
    timeout_grace_secs: float,
    queues: list[str] | None = None,
) -> list[HeldLease]:
    """Extend the leases still held, all of them only if all are of ``queues`` (None: any)."""
    rows = await conn.fetch(
        Q["task_heartbeat_many"], ids, tokens, lease_secs, now, timeout_grace_secs, queues
    )
    return [HeldLease(r["id"], r["queue"], r["lease_expires_at"]) for r in rows]


async def task_lease_extend_after_outage(
    conn: Conn, *, after_outage: bool, now: datetime | None, lease_secs: float
) -> list[int]:
    """Extend to a full lease every lease the database's absence ate into; returns their ids."""
    rows = await conn.fetch(Q["task_lease_extend_after_outage"], after_outage, now, lease_secs)
    return [r["id"] for r in rows]


async def task_lock_expired_many(
    conn: Conn, *, now: datetime | None, limit: int
) -> list[tuple[LeasedTask, bool]]:
    """Lock up to ``limit`` tasks whose lease expired; each with "ran past its timeout"."""
    rows = await conn.fetch(Q["task_lock_expired_many"], now, limit)
    return [(LeasedTask.from_record(r), bool(r["past_timeout"])) for r in rows]


async def task_notify_ready(conn: Conn, *, channel: str, queues: list[str]) -> None:
    """Tell other orchestrators (LISTEN on ``channel``) which queues have new ready work."""
    if queues:
        await conn.execute(Q["task_notify_ready"], channel, queues)


async def task_next_lease_expiry(conn: Conn) -> datetime | None:
    """When the next lease expires, or None."""
    value: datetime | None = await conn.fetchval(Q["task_next_lease_expiry"])
    return value


async def task_running_for_execution(conn: Conn, *, execution_id: str) -> list[RunningStep]:
    """The leased tasks of an execution, as running attempts."""
    rows = await conn.fetch(Q["task_running_for_execution"], execution_id)
    return [
        RunningStep(
            r["step_name"],
            r["sequence"],
            r["attempt"],
            r["worker_id"],
            r["leased_at"],
            r["kind"],
            r["lane_path"],
            "waiting" if r["status"] == "waiting" else "running",
        )
        for r in rows
    ]


async def task_suspend(conn: Conn, *, task_id: int) -> None:
    """Park a leased task (locked by the caller) on a wait."""
    await conn.execute(Q["task_suspend"], task_id)


async def task_wake_many(
    conn: Conn, *, wakes: Sequence[tuple[int, int, str]], now: datetime | None
) -> list[tuple[str, str]]:
    """Record (task id, wait index, outcome JSON) and make the tasks ready; (queue, execution)."""
    if not wakes:
        return []
    rows = await conn.fetch(
        Q["task_wake_many"],
        [w[0] for w in wakes],
        [w[1] for w in wakes],
        [w[2] for w in wakes],
        now,
    )
    return [(r["queue"], str(r["execution_id"])) for r in rows]
