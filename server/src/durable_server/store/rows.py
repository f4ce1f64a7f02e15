"""Typed rows returned by the store (frozen dataclasses built from asyncpg records)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable_server.store.db import Record

__all__ = [
    "ClaimedTask",
    "ExecutionRow",
    "GroupState",
    "LeasedTask",
    "RunningStep",
    "StepAttemptRow",
    "WaitRow",
]


@dataclass(frozen=True)
class LeasedTask:
    """A leased task, locked (or just deleted) by the transaction that holds it."""

    id: int
    execution_id: str
    sequence: int
    step_name: str
    attempt: int
    failures: int
    losses: int
    queue: str
    priority: int
    workflow_version: str
    timeout_secs: float | None
    leased_at: datetime | None
    worker_id: str | None
    kind: str = "step"
    group_id: int | None = None
    lane: int | None = None
    lane_path: str = ""
    compensated_step: str | None = None
    compensated_sequence: int | None = None

    @classmethod
    def from_record(cls, r: Record) -> LeasedTask:
        """Build from a record with the task columns."""
        return cls(
            id=r["id"],
            execution_id=str(r["execution_id"]),
            sequence=r["sequence"],
            step_name=r["step_name"],
            attempt=r["attempt"],
            failures=r["failures"],
            losses=r["losses"],
            queue=r["queue"],
            priority=r["priority"],
            workflow_version=r["workflow_version"],
            timeout_secs=r["timeout_secs"],
            leased_at=r["leased_at"],
            worker_id=r["worker_id"],
            kind=r["kind"],
            group_id=r["group_id"],
            lane=r["lane"],
            lane_path=r["lane_path"],
            compensated_step=r["compensated_step"],
            compensated_sequence=r["compensated_sequence"],
        )


@dataclass(frozen=True)
class ClaimedTask:
    """A task just leased to a worker, with what the worker needs to run it."""

    id: int
    lease_token: str
    lease_expires_at: datetime
    execution_id: str
    workflow_name: str
    workflow_version: str
    step_name: str
    sequence: int
    attempt: int
    input_json: str
    execution_input_json: str
    timeout_secs: float | None
    kind: str = "step"
    lane_path: str = ""
    compensated_step: str | None = None
    memo_json: str = "{}"
    traceparent: str = ""
    dispatch_secs: float = 0.0  # how long it had been ready when claimed
    queue: str = ""  # set for tasks handed back with a report


@dataclass(frozen=True)
class ExecutionRow:
    """One execution."""

    id: str
    workflow_name: str
    workflow_version: str
    status: str
    queue: str
    priority: int
    input_json: str
    result_json: str | None
    error_json: str | None
    parent_id: str | None
    idempotency_key: str | None
    current_step: str | None
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime | None
    schedule_name: str | None = None
    schedule_slot: datetime | None = None

    @classmethod
    def from_record(cls, r: Record) -> ExecutionRow:
        """Build from an ``executions`` record plus ``current_step``."""
        return cls(
            id=str(r["id"]),
            workflow_name=r["workflow_name"],
            workflow_version=r["workflow_version"],
            status=r["status"],
            queue=r["queue"],
            priority=r["priority"],
            input_json=r["input"],
            result_json=r["result"],
            error_json=r["error"],
            parent_id=str(r["parent_id"]) if r["parent_id"] else None,
            idempotency_key=r["idempotency_key"],
            current_step=r["current_step"],
            created_at=r["created_at"],
            scheduled_at=r["scheduled_at"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            deadline_at=r["deadline_at"],
            schedule_name=r["schedule_name"],
            schedule_slot=r["schedule_slot"],
        )


@dataclass(frozen=True)
class StepAttemptRow:
    """One recorded attempt."""

    step_name: str
    sequence: int
    attempt: int
    status: str
    result_json: str | None
    error_json: str | None
    worker_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    retry_at: datetime | None
    kind: str = "step"
    lane_path: str = ""

    @classmethod
    def from_record(cls, r: Record) -> StepAttemptRow:
        """Build from a ``step_attempts`` record."""
        return cls(
            step_name=r["step_name"],
            sequence=r["sequence"],
            attempt=r["attempt"],
            status=r["status"],
            result_json=r["result"],
            error_json=r["error"],
            worker_id=r["worker_id"],
            started_at=r["started_at"],
            finished_at=r["finished_at"],
            retry_at=r["retry_at"],
            kind=r["kind"],
            lane_path=r["lane_path"],
        )


@dataclass(frozen=True)
class RunningStep:
    """A leased task shown as a running attempt."""

    step_name: str
    sequence: int
    attempt: int
    worker_id: str | None
    leased_at: datetime | None
    kind: str = "step"
    lane_path: str = ""
    status: str = "running"


@dataclass(frozen=True)
class GroupState:
    """A group's counters after one of its lanes ended."""

    id: int
    execution_id: str
    node_name: str
    kind: str
    parent_group_id: int | None
    parent_lane: int | None
    lane_path: str
    total: int
    started: int
    finished: int
    failed: int
    concurrency: int
    fail_fast: bool
    collect: bool
    changed: bool

    @classmethod
    def from_record(cls, r: Record) -> GroupState:
        """Build from a ``groups`` record plus ``changed``."""
        return cls(
            id=r["id"],
            execution_id=str(r["execution_id"]),
            node_name=r["node_name"],
            kind=r["kind"],
            parent_group_id=r["parent_group_id"],
            parent_lane=r["parent_lane"],
            lane_path=r["lane_path"],
            total=r["total"],
            started=r["started"],
            finished=r["finished"],
            failed=r["failed"],
            concurrency=r["concurrency"],
            fail_fast=r["fail_fast"],
            collect=r["collect"],
            changed=bool(r["changed"]),
        )


@dataclass(frozen=True)
class WaitRow:
    """A taken wait: the task to wake and at which index."""

    id: int
    execution_id: str
    task_id: int
    wait_index: int
    kind: str
    child_id: str | None
    timeout_value_json: str | None

    @classmethod
    def from_record(cls, r: Record) -> WaitRow:
        """Build from a ``waits`` record."""
        return cls(
            id=r["id"],
            execution_id=str(r["execution_id"]),
            task_id=r["task_id"],
            wait_index=r["wait_index"],
            kind=r["kind"],
            child_id=str(r["child_id"]) if r["child_id"] else None,
            timeout_value_json=r["timeout_value"],
        )
