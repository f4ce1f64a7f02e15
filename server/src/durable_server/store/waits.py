"""Store functions for waits of suspended tasks (``sql/waits.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import WaitRow


@dataclass(frozen=True)
class NewWait:
    """What a suspended task waits for (only the fields of its kind are set)."""

    execution_id: str
    task_id: int
    wait_index: int
    kind: str
    child_id: str | None = None
    timeout_value_json: str | None = None
    timeout_secs: float | None = None
    until: datetime | None = None
    event_names: list[str] | None = None
    mode: str | None = None
    input_name: str | None = None
    input_spec_json: str | None = None
    received_json: str | None = None


async def wait_insert(
    conn: Conn, wait: NewWait, *, now: datetime | None
) -> tuple[int, datetime | None]:
    """Park a task on a wait (with a timer at its deadline); returns (id, deadline)."""
    row = await conn.fetchrow(
        Q["wait_insert"],
        wait.execution_id,
        wait.task_id,
        wait.wait_index,
        wait.kind,
        wait.child_id,
        wait.timeout_value_json,
        now,
        wait.timeout_secs,
        wait.until,
        wait.event_names,
        wait.mode,
        wait.input_name,
        wait.input_spec_json,
        wait.received_json,
    )
    assert row is not None  # an INSERT ... RETURNING of one row
    return int(row["id"]), row["deadline_at"]


async def wait_take_for_children(conn: Conn, *, child_ids: list[str]) -> list[WaitRow]:
    """Take the waits on these (ended) children."""
    if not child_ids:
        return []
    rows = await conn.fetch(Q["wait_take_for_children"], child_ids)
    return [WaitRow.from_record(r) for r in rows]


async def wait_take(conn: Conn, *, wait_id: int) -> WaitRow | None:
    """Take one wait, or None if it is gone."""
    row = await conn.fetchrow(Q["wait_take"], wait_id)
    return WaitRow.from_record(row) if row else None


async def wait_child_outcomes(
    conn: Conn, *, child_ids: list[str], active: list[str]
) -> dict[str, str | None]:
    """{child id: outcome JSON, or None while its status is in ``active``}, locking the rows."""
    rows = await conn.fetch(Q["wait_child_outcomes"], child_ids, active)
    return {str(r["id"]): r["outcome"] for r in rows}


@dataclass(frozen=True)
class EventWaitRow:
    """A locked event wait."""

    id: int
    task_id: int
    wait_index: int
    mode: str
    event_names: list[str]
    received_json: str


async def wait_event_lock(conn: Conn, *, execution_id: str, name: str) -> EventWaitRow | None:
    """The oldest event wait the named event ends or feeds, locked."""
    r = await conn.fetchrow(Q["wait_event_lock"], execution_id, name)
    if r is None:
        return None
    return EventWaitRow(
        r["id"], r["task_id"], r["wait_index"], r["mode"], list(r["event_names"]), r["received"]
    )


async def wait_received_add(conn: Conn, *, wait_id: int, name: str, payload_json: str) -> str:
    """Add an event to an 'all' wait; returns everything it has received (JSON)."""
    value: str = await conn.fetchval(Q["wait_received_add"], wait_id, name, payload_json)
    return value


async def wait_input_lock(
    conn: Conn, *, execution_id: str, name: str
) -> tuple[int, int, int, str] | None:
    """(wait id, task id, wait index, spec JSON) of a pending input, locked."""
    r = await conn.fetchrow(Q["wait_input_lock"], execution_id, name)
    return (r["id"], r["task_id"], r["wait_index"], r["input_spec"]) if r else None


async def wait_input_names(conn: Conn, *, execution_id: str) -> list[str]:
    """The names of an execution's pending inputs."""
    return [r["input_name"] for r in await conn.fetch(Q["wait_input_names"], execution_id)]


async def wait_list_inputs(
    conn: Conn,
    *,
    after_id: int,
    execution_id: str | None,
    workflow_name: str | None,
    name: str | None,
    limit: int,
) -> list[Record]:
    """Pending human inputs, oldest first (records)."""
    return list(
        await conn.fetch(Q["wait_list_inputs"], after_id, execution_id, workflow_name, name, limit)
    )


async def wait_list_events(
    conn: Conn,
    *,
    after_id: int,
    execution_id: str | None,
    workflow_name: str | None,
    name: str | None,
    limit: int,
) -> list[Record]:
    """Pending event waits, oldest first (records)."""
    return list(
        await conn.fetch(Q["wait_list_events"], after_id, execution_id, workflow_name, name, limit)
    )


async def wait_list_for_execution(conn: Conn, *, execution_id: str) -> list[Record]:
    """What an execution's suspended tasks wait for now, oldest first (records)."""
    return list(await conn.fetch(Q["wait_list_for_execution"], execution_id))
