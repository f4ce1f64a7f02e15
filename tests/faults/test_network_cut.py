"""The network between a worker and the orchestrator fails in every way a network can.

An orchestrator process (2 s leases) serves two workers running the mixed workload: worker
"cut" through a TCP proxy (:mod:`tests.faults.tcp_proxy`), worker "direct" without one. While
executions keep arriving, the path of worker "cut" is

1. **dropped** (every connection reset) while its long-poll is parked in the orchestrator:
   the poll fails, the worker connects again and polls again;
2. **stalled** (bytes stop, connections stay open) while a step runs, until that step's
   lease expired: the other worker retries it; the step returns meanwhile and, when the
   path comes back, its late report carries a stale token and is refused;
3. **down** (every connection reset, and new ones too) while steps run, until the worker
   has tried to connect again twice, then up: its reports wait and go through then.

Afterwards every execution completes, the database passes every invariant, each result
is recorded once (the late reports changed nothing), and worker "cut" worked again after
each fault.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from tests.faults.mixed_flows import Driver, running_in
from tests.faults.procs import WorkerProcess, free_port, orchestrator_process
from tests.faults.tcp_proxy import TcpProxy
from tests.faults.workload import Workload
from tests.helpers.wait import wait_until

ORCHESTRATOR_ENV = {"DURABLE_LEASE_SECONDS": "2"}
POLL_FAILED = "poll failed (UNAVAILABLE"


def _done_by(workload: Workload, pid: int) -> int:
    return sum(1 for x in workload.ledger() if x["ev"] == "done" and x["pid"] == pid)


async def _works_again(workload: Workload, worker: WorkerProcess, *, more_than: int) -> None:
    """Wait until ``worker`` finished more steps than ``more_than``."""

    async def progressed() -> bool:
        return _done_by(workload, worker.pid) > more_than

    await wait_until(progressed, timeout=30)


async def _mid_step(workload: Workload, worker: WorkerProcess) -> list[dict[str, Any]]:
    """Wait until ``worker`` runs a step; the runs in progress."""

    async def running() -> list[dict[str, Any]]:
        return running_in(workload.ledger(), worker.pid)

    return await wait_until(running, timeout=30, interval=0.005)


async def _status(database_url: str, run: dict[str, Any]) -> str | None:
    conn = await asyncpg.connect(database_url)
    try:
        status: str | None = await conn.fetchval(
            "SELECT status FROM durable.step_attempts"
            " WHERE execution_id = $1 AND sequence = $2 AND attempt = $3",
            run["exec"],
            run["seq"],
            run["attempt"],
        )
    finally:
        await conn.close()
    return status


async def test_cut_stalled_and_downed_paths_lose_nothing_and_record_once(
    database_url: str, tmp_path: Path
) -> None:
    workload = Workload(tmp_path)
    port = free_port()
    address = f"127.0.0.1:{port}"
    async with (
        orchestrator_process(database_url, port, tmp_path, "orch", env=ORCHESTRATOR_ENV),
        TcpProxy(address) as proxy,
        workload.worker(proxy.address, "cut") as cut,
        workload.worker(address, "direct", concurrency=2),
        Driver(address, database_url) as driver,
    ):
        await driver.start(6, tag="1")
        await _works_again(workload, cut, more_than=2)

        # 1. Dropped while the worker is idle, so its long-poll is parked in the orchestrator:
        # the poll fails, the worker connects again and polls again.
        await driver.wait_finished(timeout=60)
        polls_failed = cut.stderr().count(POLL_FAILED)
        accepted = proxy.accepted
        assert proxy.drop() >= 1
        await cut.wait_stderr_count(POLL_FAILED, polls_failed + 1)
        await driver.start(6, tag="2")
        done = _done_by(workload, cut.pid)
        await _works_again(workload, cut, more_than=done)
        assert proxy.accepted > accepted  # it connected again

        # 2. Stalled while a step runs, until that step's lease expired.
        await driver.start(6, tag="3")
        [stalled, *_] = await _mid_step(workload, cut)
        proxy.stall()

        async def fenced() -> bool:
            return await _status(database_url, stalled) == "lost"

        await wait_until(fenced, timeout=30)
        proxy.resume()
        done = _done_by(workload, cut.pid)
        await driver.start(6, tag="3b")
        await _works_again(workload, cut, more_than=done)

        # 3. Down: connections reset and new ones refused, until the worker tried again.
        await driver.start(6, tag="4")
        await _mid_step(workload, cut)
        proxy.refuse()
        proxy.drop()

        async def refused_twice() -> bool:
            return proxy.refused >= 2

        await wait_until(refused_twice, timeout=30)
        proxy.accept()
        done = _done_by(workload, cut.pid)
        await driver.start(6, tag="4b")
        await _works_again(workload, cut, more_than=done)

        await driver.wait_finished(timeout=60)

    assert await driver.check_results() == []
    assert await workload.check(database_url, overdue_after=timedelta(seconds=5)) == []
    # The step that ran while its path stalled returned, but its lease had expired: its
    # result was refused (the checks above: the result recorded is the retry's).
    returned = [x for x in workload.ledger() if x["ev"] != "start" and x["run"] == stalled["run"]]
    assert [x["ev"] for x in returned] in (["done"], ["raised"])
    assert await _status(database_url, stalled) == "lost"
