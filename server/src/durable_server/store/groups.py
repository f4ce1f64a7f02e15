"""Store functions for parallel groups and foreach lanes (``sql/groups.sql``)."""

from __future__ import annotations

from collections.abc import Sequence

from durable_server.store.db import Conn
from durable_server.store.queries import QUERIES as Q
from durable_server.store.rows import GroupState


async def group_insert_parallel(
    conn: Conn,
    *,
    execution_id: str,
    node_name: str,
    parent_group_id: int | None,
    parent_lane: int | None,
    lane_path: str,
    input_json: str,
    branch_names: Sequence[str],
    fail_fast: bool,
    collect: bool,
) -> int | None:
    """Start a parallel group with every lane running; its id, None if the parent is gone."""
    value = await conn.fetchval(
        Q["group_insert_parallel"],
        execution_id,
        node_name,
        parent_group_id,
        parent_lane,
        lane_path,
        input_json,
        list(branch_names),
        fail_fast,
        collect,
    )
    return int(value) if value is not None else None


async def group_insert_foreach(
    conn: Conn,
    *,
    execution_id: str,
    node_name: str,
    parent_group_id: int | None,
    parent_lane: int | None,
    lane_path: str,
    input_json: str,
    items_json: str,
    concurrency: int,
    fail_fast: bool,
    collect: bool,
) -> tuple[int, int] | None:
    """Start a foreach with a pending lane per item; (id, total), or None if not a list."""
    row = await conn.fetchrow(
        Q["group_insert_foreach"],
        execution_id,
        node_name,
        parent_group_id,
        parent_lane,
        lane_path,
        input_json,
        items_json,
        concurrency,
        fail_fast,
        collect,
    )
    return (row["id"], row["total"]) if row else None


async def group_lanes_start(conn: Conn, *, group_id: int, start: int, stop: int) -> int:
    """Mark lanes ``[start, stop)`` running; returns how many were pending."""
    return int(await conn.fetchval(Q["group_lanes_start"], group_id, start, stop))


async def group_lane_finish(
    conn: Conn,
    *,
    group_id: int,
    index: int,
    status: str,
    result_json: str | None,
    error_json: str | None,
) -> GroupState | None:
    """End a running lane; the group's counters after it, or None if the group is gone."""
    row = await conn.fetchrow(
        Q["group_lane_finish"], group_id, index, status, result_json, error_json
    )
    return GroupState.from_record(row) if row else None


async def group_output(conn: Conn, *, group_id: int) -> tuple[str, str]:
    """(input, output) of a finished group, as JSON text."""
    row = await conn.fetchrow(Q["group_output"], group_id)
    assert row is not None  # the caller holds the group, finished in this transaction
    return row["input"], row["output"]


async def group_delete(conn: Conn, *, group_id: int) -> None:
    """Drop a group with its lanes, nested groups and their tasks."""
    await conn.execute(Q["group_delete"], group_id)


async def group_delete_for_executions(conn: Conn, *, execution_ids: list[str]) -> None:
    """Drop every group of these executions."""
    if execution_ids:
        await conn.execute(Q["group_delete_for_executions"], execution_ids)
