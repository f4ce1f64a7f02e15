"""Store functions for cron schedules (``sql/schedules.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES as Q


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule: its settings and its bookkeeping."""

    name: str
    workflow_name: str
    cron: str
    timezone: str
    input_json: str
    queue: str | None
    priority: int
    enabled: bool
    catch_up: str
    catch_up_limit: int
    overlap: str
    max_failures: int
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_execution_id: str | None
    consecutive_failures: int
    last_error: str | None
    disabled_reason: str | None
    declared_by: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_record(cls, r: Record) -> ScheduleRow:
        """Build from a ``schedules`` record."""
        return cls(
            name=r["name"],
            workflow_name=r["workflow_name"],
            cron=r["cron"],
            timezone=r["timezone"],
            input_json=r["input"],
            queue=r["queue"],
            priority=r["priority"],
            enabled=r["enabled"],
            catch_up=r["catch_up"],
            catch_up_limit=r["catch_up_limit"],
            overlap=r["overlap"],
            max_failures=r["max_failures"],
            next_fire_at=r["next_fire_at"],
            last_fire_at=r["last_fire_at"],
            last_execution_id=str(r["last_execution_id"]) if r["last_execution_id"] else None,
            consecutive_failures=r["consecutive_failures"],
            last_error=r["last_error"],
            disabled_reason=r["disabled_reason"],
            declared_by=r["declared_by"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )


async def schedule_insert(
    conn: Conn, s: ScheduleRow, *, now: datetime | None
) -> ScheduleRow | None:
    """Create a schedule; None when the name is taken."""
    row = await conn.fetchrow(
        Q["schedule_insert"],
        s.name,
        s.workflow_name,
        s.cron,
        s.timezone,
        s.input_json,
        s.queue,
        s.priority,
        s.enabled,
        s.catch_up,
        s.catch_up_limit,
        s.overlap,
        s.max_failures,
        s.next_fire_at,
        s.declared_by,
        now,
    )
    return ScheduleRow.from_record(row) if row else None


async def schedule_get(conn: Conn, *, name: str) -> ScheduleRow | None:
    """One schedule, or None."""
    row = await conn.fetchrow(Q["schedule_get"], name)
    return ScheduleRow.from_record(row) if row else None


async def schedule_lock(conn: Conn, *, name: str) -> ScheduleRow | None:
    """One schedule, locked for the transaction; or None."""
    row = await conn.fetchrow(Q["schedule_lock"], name)
    return ScheduleRow.from_record(row) if row else None


async def schedule_list(
    conn: Conn,
    *,
    after: str,
    enabled: bool | None,
    workflow_name: str | None,
    queue: str | None,
    limit: int,
) -> list[ScheduleRow]:
    """Schedules by name after ``after``."""
    rows = await conn.fetch(Q["schedule_list"], after, enabled, workflow_name, queue, limit)
    return [ScheduleRow.from_record(r) for r in rows]


async def schedule_save(conn: Conn, s: ScheduleRow, *, now: datetime | None) -> ScheduleRow:
    """Write a schedule's fields and bookkeeping; returns the stored row."""
    row = await conn.fetchrow(
        Q["schedule_save"],
        s.name,
        s.workflow_name,
        s.cron,
        s.timezone,
        s.input_json,
        s.queue,
        s.priority,
        s.enabled,
        s.catch_up,
        s.catch_up_limit,
        s.overlap,
        s.max_failures,
        s.next_fire_at,
        s.last_fire_at,
        s.last_execution_id,
        s.consecutive_failures,
        s.last_error,
        s.disabled_reason,
        now,
    )
    assert row is not None  # an upsert RETURNING its row
    return ScheduleRow.from_record(row)


async def schedule_delete(conn: Conn, *, name: str) -> bool:
    """Delete a schedule; False when there was none."""
    return await conn.fetchval(Q["schedule_delete"], name) is not None


async def schedule_lock_due(conn: Conn, *, now: datetime | None, limit: int) -> list[ScheduleRow]:
    """Lock up to ``limit`` due schedules that no other replica holds."""
    rows = await conn.fetch(Q["schedule_lock_due"], now, limit)
    return [ScheduleRow.from_record(r) for r in rows]


async def schedule_next_due(conn: Conn) -> datetime | None:
    """When the next enabled schedule is due."""
    value: datetime | None = await conn.fetchval(Q["schedule_next_due"])
    return value


async def schedule_fire_insert(
    conn: Conn,
    *,
    name: str,
    slot: datetime,
    outcome: str,
    execution_id: str | None,
    now: datetime | None,
) -> bool:
    """Record a fired slot; False when it was fired before."""
    value = await conn.fetchval(Q["schedule_fire_insert"], name, slot, outcome, execution_id, now)
    return value is not None


async def schedule_declared_names(conn: Conn, *, workflow_name: str) -> list[str]:
    """The schedules declared by a workflow's code."""
    return [r["name"] for r in await conn.fetch(Q["schedule_declared_names"], workflow_name)]


async def schedule_fire_delete_before(conn: Conn, *, before: datetime) -> None:
    """Forget schedule firings older than ``before``."""
    await conn.execute(Q["schedule_fire_delete_before"], before)
