"""Workers are SIGKILLed again and again, at random points, while the mixed workload runs.

Two worker processes run the mixed workload (sequences with a retry, parallel groups,
foreach, event waits, child workflows, nested groups) while new executions keep arriving.
Five times, a random worker is killed at a random point: while one of its steps runs
(after a random number of new runs), or right after one of its steps returned (its
report in flight or just sent); a fresh worker replaces it. The orchestrator (on the
real clock, with 1.5 s leases) reclaims the dead workers' leases.

Then every execution must complete with the right result, the database must pass every
invariant (:mod:`tests.helpers.invariants`), the ledger must show at-least-once execution
with exactly-once recording, and every run a kill cut short must be recorded as a lost
attempt.
"""

from __future__ import annotations

import os
import random
import signal
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import asyncpg

from tests.faults.mixed_flows import SHAPES, Driver, running_in
from tests.faults.workload import Workload
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until

LEASE_SECS = 1.5
KILLS = 5
WORKERS = 2


def _count(ledger: list[dict[str, object]], pid: int, event: str) -> int:
    return sum(1 for x in ledger if x["ev"] == event and x["pid"] == pid)


async def _attempt_statuses(database_url: str) -> dict[tuple[str, int, int], str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT execution_id::text, sequence, attempt, status FROM durable.step_attempts"
        )
    finally:
        await conn.close()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


async def test_workers_killed_at_random_points_lose_nothing_and_record_once(
    database_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("FAULT_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    print(f"FAULT_SEED={seed}")  # shown when the test fails: rerun with the same kills
    workload = Workload(tmp_path)
    killed: list[tuple[int, str]] = []  # (pid, how)
    async with (
        running_orchestrator(database_url, lease_secs=LEASE_SECS, max_lost_attempts=1000) as orch,
        Driver(orch.address, database_url) as driver,
        AsyncExitStack() as stack,
    ):
        workers = [
            await stack.enter_async_context(workload.worker(orch.address, f"victim-{i}"))
            for i in range(WORKERS)
        ]
        for round_ in range(KILLS):
            await driver.start(len(SHAPES), tag=f"r{round_}")
            slot = rng.randrange(WORKERS)
            victim = workers[slot]
            # Mid-step: once it started a few more runs and one runs now. Otherwise: as soon
            # as a few more of its runs returned (the last one's report in flight or sent).
            mid_step = rng.random() < 0.7
            event = "start" if mid_step else "done"
            wanted = _count(workload.ledger(), victim.pid, event) + rng.randint(1, 4)

            async def at_the_point(
                pid: int = victim.pid, wanted: int = wanted, event: str = event
            ) -> bool:
                ledger = workload.ledger()
                if _count(ledger, pid, event) < wanted:
                    return False
                return event == "done" or bool(running_in(ledger, pid))

            await wait_until(at_the_point, timeout=30, interval=0.005)
            victim.signal(signal.SIGKILL)
            await victim.wait_exit()
            killed.append((victim.pid, "mid-step" if mid_step else "after a step returned"))
            workers[slot] = await stack.enter_async_context(
                workload.worker(orch.address, f"victim-{WORKERS + round_}")
            )
        await driver.wait_finished(timeout=60)

    assert await driver.check_results() == [], f"FAULT_SEED={seed}"
    assert await workload.check(database_url, overdue_after=timedelta(seconds=5)) == []

    # Every run a kill cut short (started, never ended) belongs to an attempt recorded lost.
    statuses = await _attempt_statuses(database_url)
    ledger = workload.ledger()
    cut_short = [run for pid, _ in killed for run in running_in(ledger, pid)]
    assert cut_short, f"no kill hit a running step ({killed}, FAULT_SEED={seed})"
    assert {
        (run["step"], statuses.get((run["exec"], run["seq"], run["attempt"]))) for run in cut_short
    } == {(run["step"], "lost") for run in cut_short}
    assert list(statuses.values()).count("lost") >= len(cut_short)
