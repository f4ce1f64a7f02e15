"""The invariant checker passes a sound database mid-flight and catches each corruption.

A worker runs the mixed workload until it holds every kind of state an unfinished
execution can be in: a foreach and a nested foreach with leased lanes and pending ones, a
step waiting for an event (with its timer), a parent waiting on a child whose step runs, a
pending execution, and ended ones with retries in their history. Then the worker is
killed and the orchestrator stopped, so the state stays as it is. The checker
finds nothing wrong with it; then each corruption, made in a transaction that is rolled
back, must be reported. A checker that cannot fail would prove nothing.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from durable_server.clock import ManualClock
from tests.faults import mixed_flows
from tests.faults.mixed_flows import Driver
from tests.faults.workload import LEDGERED, Workload
from tests.helpers.invariants import check_effects, check_invariants
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until

BLOCKED = ["fe_square", "cw_double", "ns_cube"]


class Frozen:
    """The frozen state: the connection, the workload and the ids of interest."""

    def __init__(self, conn: asyncpg.Connection, workload: Workload, ids: dict[str, str]):
        self.conn = conn
        self.workload = workload
        self.ids = ids

    async def problems_after(self, sql: str, *args: Any, overdue: bool = False) -> str:
        """Run ``sql`` in a transaction, check, roll back; the problems, one per line."""
        tr = self.conn.transaction()
        await tr.start()
        try:
            await self.conn.execute(sql, *args)
            found = await check_invariants(
                self.conn,
                overdue_after=timedelta(0) if overdue else None,
                now=ManualClock().now() + timedelta(days=400) if overdue else None,
            )
        finally:
            await tr.rollback()
        return "\n".join(found)

    async def effect_problems(
        self,
        sql: str = "SELECT 1",
        ledger: list[dict[str, Any]] | None = None,
        effects: dict[str, str] | None = None,
    ) -> str:
        tr = self.conn.transaction()
        await tr.start()
        try:
            await self.conn.execute(sql)
            found = await check_effects(
                self.conn,
                self.workload.ledger() if ledger is None else ledger,
                effects=mixed_flows.read_effects(self.workload.markers)
                if effects is None
                else effects,
                workflows=LEDGERED,
            )
        finally:
            await tr.rollback()
        return "\n".join(found)


@pytest.fixture
async def frozen(
    database_url: str, manual_clock: ManualClock, tmp_path: Path
) -> AsyncIterator[Frozen]:
    workload = Workload(tmp_path)
    async with (
        running_orchestrator(database_url, clock=manual_clock) as orch,
        Driver(orch.address, database_url) as driver,
    ):
        async with workload.worker(
            orch.address, "inv-a", concurrency=10, block_steps=BLOCKED, step_seconds=None
        ) as worker:
            started = await driver.start(len(mixed_flows.SHAPES), early_events=0.0)
            [pending] = await driver.start(1, shapes=["fx_sequence"], queue="nobody_polls_this")
            ids = {s.shape: s.execution_id for s in started} | {"pending": pending.execution_id}

            async def frozen_state() -> bool:
                steps = [line["step"] for line in workload.ledger() if line["ev"] == "start"]
                blocked = [steps.count(s) for s in BLOCKED]
                waits = await _fetch(
                    database_url, "SELECT kind FROM durable.waits ORDER BY kind", column=True
                )
                done = await _fetch(
                    database_url,
                    "SELECT workflow_name FROM durable.executions WHERE status = 'completed'"
                    " ORDER BY 1",
                    column=True,
                )
                return (
                    blocked == [2, 1, 2]
                    and waits == ["child", "event", "event"]
                    and done
                    == [
                        "fx_parallel",
                        "fx_sequence",
                    ]
                )

            await wait_until(frozen_state, timeout=30)
            worker.signal(signal.SIGKILL)
            await worker.wait_exit()
    # The orchestrator is stopped too: nothing changes the state while the test checks it.
    conn = await asyncpg.connect(database_url)
    try:
        child = await conn.fetchval(
            "SELECT id::text FROM durable.executions WHERE parent_id = $1", ids["fx_child"]
        )
        yield Frozen(conn, workload, ids | {"child": child})
    finally:
        await conn.close()


async def _fetch(database_url: str, sql: str, *, column: bool = False) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(sql)
    finally:
        await conn.close()
    return [r[0] for r in rows] if column else rows


async def assert_sound(frozen: Frozen) -> None:
    """The frozen state passes every check, and holds what the corruptions change."""
    assert await check_invariants(frozen.conn) == []
    assert await frozen.effect_problems() == ""
    # What the state holds, so the corruptions below hit real rows.
    rows = await frozen.conn.fetch("SELECT id::text, status FROM durable.executions")
    status = {r["id"]: r["status"] for r in rows}
    assert {name: status[eid] for name, eid in frozen.ids.items()} == {
        "fx_sequence": "completed",
        "fx_parallel": "completed",
        "fx_foreach": "running",  # two lanes leased, the others pending
        "fx_wait": "waiting",  # for its event, with a timer
        "fx_child": "waiting",  # for its child
        "child": "running",  # its step leased
        "fx_nested": "running",  # one lane waits, the other runs a foreach
        "pending": "pending",  # on a queue no worker polls
    }
    flaky = await frozen.conn.fetch(
        "SELECT attempt, status FROM durable.step_attempts WHERE step_name = 'seq_flaky'"
        " ORDER BY attempt"
    )
    assert [tuple(r) for r in flaky] == [(1, "failed"), (2, "completed")]


# (what goes wrong, the SQL that does it, what the checker must say)
CORRUPTIONS: list[tuple[str, str, str]] = [
    (
        "a waiting task loses its wait",
        "DELETE FROM durable.waits WHERE execution_id = '{fx_wait}'",
        "is waiting on 0 waits, must be exactly 1",
    ),
    (
        "an unfinished execution loses its task",
        "DELETE FROM durable.tasks WHERE execution_id = '{fx_wait}'",
        "nothing can move it: stuck",
    ),
    (
        "a second task at the top level",
        """INSERT INTO durable.tasks (execution_id, sequence, step_name, queue, priority,
               workflow_version, input, status, available_at)
           SELECT execution_id, 99, 'wt_after', queue, priority, workflow_version, input,
                  'ready', now() FROM durable.tasks WHERE execution_id = '{fx_wait}'""",
        "must have exactly one task or group moving it, has 2",
    ),
    (
        "waiting while a task is leased",
        "UPDATE durable.executions SET status = 'waiting' WHERE id = '{fx_foreach}'",
        "is waiting but has ready or leased tasks",
    ),
    (
        "a pending execution with a history",
        "UPDATE durable.executions SET status = 'pending' WHERE id = '{fx_child}'",
        "pending needs one ready top-level task and no history",
    ),
    (
        "a result recorded twice",
        """INSERT INTO durable.step_attempts (execution_id, sequence, attempt, step_name,
               status, result, finished_at, kind, lane_path)
           SELECT execution_id, sequence, attempt + 1, step_name, status, result,
                  finished_at, kind, lane_path
           FROM durable.step_attempts WHERE step_name = 'seq_end'""",
        "recorded a result 2 times",
    ),
    (
        "a gap in the attempts",
        "DELETE FROM durable.step_attempts WHERE step_name = 'seq_flaky' AND attempt = 1",
        "has attempts [2], not 1..1",
    ),
    (
        "an attempt after a result",
        """UPDATE durable.step_attempts SET status = 'completed'
           WHERE step_name = 'seq_flaky' AND attempt = 1""",
        "attempt 1 is completed, yet attempt 2 followed",
    ),
    (
        "a completed execution's last step run did not complete",
        "UPDATE durable.step_attempts SET status = 'failed' WHERE step_name = 'seq_end'",
        "its history is incomplete",
    ),
    (
        "a task left behind by an ended execution",
        """INSERT INTO durable.tasks (execution_id, sequence, step_name, queue, priority,
               workflow_version, input, status, available_at)
           SELECT id, 1, 'par_load', queue, priority, workflow_version, input, 'ready',
                  now() FROM durable.executions WHERE id = '{fx_parallel}'""",
        "ended but left 1 task(s) behind",
    ),
    (
        "a completed execution without a result",
        "UPDATE durable.executions SET result = NULL WHERE id = '{fx_parallel}'",
        "completed needs a result and no error",
    ),
    (
        "a failure without an error",
        "UPDATE durable.executions SET status = 'failed' WHERE id = '{fx_parallel}'",
        "ended failed without an error",
    ),
    (
        "a running lane with no task",
        """DELETE FROM durable.tasks WHERE id = (SELECT min(id) FROM durable.tasks
           WHERE execution_id = '{fx_foreach}' AND step_name = 'fe_square')""",
        "(running) of foreach 'each' has 0 task(s) or group(s) moving it, must have 1",
    ),
    (
        "a group miscounting its lanes",
        "UPDATE durable.groups SET finished = finished + 1 WHERE execution_id = '{fx_foreach}'",
        "counts (total, started, finished, failed)",
    ),
    (
        "a foreach that stops filling its free room",
        """UPDATE durable.lanes SET status = 'completed' WHERE (group_id, index) = (
               SELECT group_id, lane FROM durable.tasks WHERE id = (
                   SELECT min(id) FROM durable.tasks
                   WHERE execution_id = '{fx_foreach}' AND step_name = 'fe_square'));
           UPDATE durable.groups SET finished = finished + 1
           WHERE execution_id = '{fx_foreach}'""",
        "pending lane(s) but runs only 1 of 2",
    ),
    (
        "a wait whose deadline timer is gone",
        "DELETE FROM durable.timers WHERE execution_id = '{fx_wait}'",
        "needs exactly one, due then",
    ),
    (
        "a child ended without waking its parent",
        """UPDATE durable.executions SET status = 'completed', result = '1',
               finished_at = now() WHERE id = '{child}'""",
        "which ended completed: the wake-up was lost",
    ),
    (
        "a leased task without its token",
        """UPDATE durable.tasks SET lease_token = NULL WHERE id = (
               SELECT min(id) FROM durable.tasks WHERE status = 'leased')""",
        "is leased without a full lease",
    ),
    (
        "a ready task keeping its lease",
        """UPDATE durable.tasks SET status = 'ready' WHERE id = (
               SELECT min(id) FROM durable.tasks WHERE status = 'leased')""",
        "is ready but keeps a lease",
    ),
    (
        "a task running an attempt nobody recorded",
        """UPDATE durable.tasks SET attempt = 3 WHERE id = (
               SELECT min(id) FROM durable.tasks WHERE status = 'leased')""",
        "runs attempt 3 with no earlier attempt recorded",
    ),
    (
        "a compensation task while running",
        """UPDATE durable.tasks SET kind = 'compensation'
           WHERE execution_id = '{fx_wait}'""",
        "runs a compensation while waiting",
    ),
]


async def test_the_checker_passes_a_sound_database_and_catches_each_corruption(
    frozen: Frozen,
) -> None:
    await assert_sound(frozen)
    missed = []
    for corruption, sql, expected in CORRUPTIONS:
        problems = await frozen.problems_after(sql.format(**frozen.ids))
        if expected not in problems:
            missed.append(f"{corruption}: not caught; found:\n{problems or '(nothing)'}")
    assert missed == []
    assert await check_invariants(frozen.conn) == []  # every corruption was rolled back

    # A year on, the leases of the killed worker and the waits' timers are overdue: an
    # orchestrator that does not reclaim or fire them leaves executions stuck.
    problems = await frozen.problems_after("SELECT 1", overdue=True)
    assert "was never reclaimed" in problems
    assert "wait_timeout timer" in problems


async def test_the_checker_holds_the_database_against_the_ledger(frozen: Frozen) -> None:
    ledger = frozen.workload.ledger()
    completed = [line for line in ledger if line["ev"] == "done" and line["step"] == "seq_end"]
    [seq_end] = completed
    # A forged result: no run returned it (a stale report that got through would look so).
    forged = """UPDATE durable.step_attempts SET result = result || '{"run": "forged"}'
                WHERE step_name = 'seq_end'"""
    assert "which never returned (E1)" in await frozen.effect_problems(forged)
    # A result recorded for the wrong attempt: another step run's token.
    token = json.dumps({"run": seq_end["run"]})
    swapped = f"UPDATE durable.step_attempts SET result = result || '{token}'"
    assert "comes from another attempt's run" in await frozen.effect_problems(
        swapped + " WHERE step_name = 'seq_begin'"
    )
    # The same result recorded for two step runs.
    assert "was recorded 2 times (E3)" in await frozen.effect_problems(
        swapped + " WHERE step_name = 'par_load'"
    )
    # A completed workload step without a token.
    bare = "UPDATE durable.step_attempts SET result = result - 'run' WHERE step_name = 'seq_end'"
    assert "completed without a run token (E2)" in await frozen.effect_problems(bare)

    start = next(line for line in ledger if line["ev"] == "start" and line["step"] == "par_load")
    # The same attempt started twice at the same point: two leases on one task.
    twin = {**start, "run": "twin", "pid": 1}
    assert "two workers held one lease (E4)" in await frozen.effect_problems(ledger=[*ledger, twin])
    # A run of an attempt the orchestrator never handed out.
    phantom = {**start, "run": "phantom", "attempt": 7}
    assert "has no such attempt (E5)" in await frozen.effect_problems(ledger=[*ledger, phantom])
    # A completed step whose side effect never happened, or was applied twice.
    effects = mixed_flows.read_effects(frozen.workload.markers)
    key = next(k for k in effects if k.endswith(":par_load"))
    assert "was never applied (E6)" in await frozen.effect_problems(
        effects={k: v for k, v in effects.items() if k != key}
    )
    done = next(line for line in ledger if line["ev"] == "done" and line["step"] == "par_load")
    again = {**done, "run": "again", "applied": True}
    assert "the idempotency check failed (E6)" in await frozen.effect_problems(
        ledger=[*ledger, {**again, "ev": "start"}, again]
    )
