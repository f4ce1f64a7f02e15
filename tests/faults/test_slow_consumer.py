"""A slow consumer: a worker stops heartbeating but keeps running, and finishes late.

Worker "slow" reaches the orchestrator through a TCP proxy; worker "steady" runs the mixed
workload directly. The slow worker takes the one step of ``fx_slow`` (which blocks until
the test releases it), then the proxy stalls: its heartbeats and reports go nowhere while
the step keeps running. Its 2 s lease expires; the reclaimer records attempt 1 lost and
worker "retry" runs attempt 2, whose result completes the execution.

Then the slow worker comes back, in one of two ways:

- ``finished-late``: its step returns while it is cut off; when the path is back its
  report arrives with the old lease token and is refused (FAILED_PRECONDITION); the worker
  drops it and says so.
- ``still-running``: the path is back first; its next heartbeat learns the lease is lost
  and the worker abandons the step, which then returns with nothing reported.

Either way the late result is fenced: the retry's result is the one recorded, once, and
the same report sent by hand with the old token is refused as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest

from durable import Workflow
from durable.v1 import common_pb2 as S
from durable.v1 import worker_service_pb2 as wpb
from durable_server.clock import ManualClock
from durable_worker.heartbeat import Heartbeat
from tests.faults.mixed_flows import Driver
from tests.faults.tcp_proxy import TcpProxy
from tests.faults.workload import Workload
from tests.helpers.invariants import check_invariants
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

LEASE_SECS = 2.0


async def _attempts(database_url: str, execution_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT attempt, status, worker_id, result::text AS result FROM durable.step_attempts"
            " WHERE execution_id = $1 ORDER BY attempt",
            execution_id,
        )
        return rows
    finally:
        await conn.close()


async def _slow_lease(database_url: str, execution_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT id, lease_token::text AS token FROM durable.tasks"
            " WHERE execution_id = $1 AND status = 'leased' AND worker_id = 'slow'",
            execution_id,
        )
    finally:
        await conn.close()


def _refused_completions(log: str) -> set[int]:
    """The task ids whose completions the worker logged as refused (stale lease)."""
    found = re.findall(
        r"lease lost on task\(s\) ([\d, ]+): the orchestrator did not record this complete", log
    )
    return {int(i) for ids in found for i in ids.split(",")}


@pytest.mark.parametrize("comeback", ["finished-late", "still-running"])
async def test_a_slow_consumers_late_result_is_fenced_and_the_retry_kept(
    database_url: str, tmp_path: Path, comeback: str
) -> None:
    workload = Workload(tmp_path)
    async with (
        running_orchestrator(database_url, lease_secs=LEASE_SECS) as orch,
        TcpProxy(orch.address) as proxy,
        workload.worker(proxy.address, "slow", block_steps=["slow_step"]) as slow,
        workload.worker(orch.address, "steady", queues=["default"]),
        Driver(orch.address, database_url) as driver,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        [fenced] = await driver.start(1, shapes=["fx_slow"])
        await driver.start(12)

        async def slow_step_running() -> asyncpg.Record | None:
            if not any(r["step"] == "slow_step" for r in workload.runs_by(slow.pid)):
                return None
            return await _slow_lease(database_url, fenced.execution_id)

        lease = await wait_until(slow_step_running, timeout=30)
        assert lease is not None
        proxy.stall()  # no heartbeat gets through now; the step runs on

        async def lost() -> bool:
            attempts = await _attempts(database_url, fenced.execution_id)
            return [(a["attempt"], a["status"]) for a in attempts] == [(1, "lost")]

        await wait_until(lost, timeout=30)
        async with workload.worker(orch.address, "retry", queues=["fault_slow"]) as retry:

            async def completed() -> bool:
                attempts = await _attempts(database_url, fenced.execution_id)
                return bool(attempts) and attempts[-1]["status"] == "completed"

            await wait_until(completed, timeout=30)

            async def slow_run_ended() -> bool:
                return any(
                    x["ev"] == "done" and x["step"] == "slow_step" and x["pid"] == slow.pid
                    for x in workload.ledger()
                )

            if comeback == "finished-late":
                await slow.release_step()
                await wait_until(slow_run_ended, timeout=10)
                proxy.resume()

                async def refused_late() -> bool:  # (stale reports are logged in batches)
                    return lease["id"] in _refused_completions(slow.stderr())

                await wait_until(refused_late, timeout=10)
            else:
                proxy.resume()
                await slow.wait_stderr("abandoned: its lease was lost")
                await slow.release_step()
                await wait_until(slow_run_ended, timeout=10)

            # The slow worker's report, sent by hand with its old token: refused too.
            raw = RawClient(channel, worker_id="slow")
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await raw.complete(
                    wpb.Task(task_id=lease["id"], lease_token=lease["token"]),
                    json.dumps({"n": fenced.n, "slow": True, "run": "late"}),
                )
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "is stale or wrong" in (refused.value.details() or "")

            await driver.wait_finished(timeout=60)
            retry_pid = retry.pid
        assert proxy.stalled is False

    attempts = await _attempts(database_url, fenced.execution_id)
    assert [(a["attempt"], a["status"], a["worker_id"]) for a in attempts] == [
        (1, "lost", "slow"),
        (2, "completed", "retry"),
    ]
    # The result recorded is the retry's run; the slow run's is nowhere.
    ledger = workload.ledger()
    runs = {x["run"]: x["pid"] for x in ledger if x["ev"] == "done" and x["step"] == "slow_step"}
    kept = json.loads(attempts[-1]["result"])["run"]
    assert runs[kept] == retry_pid
    assert sorted(runs.values()) == sorted([slow.pid, retry_pid])
    assert await driver.check_results() == []
    assert await workload.check(database_url, overdue_after=timedelta(seconds=5)) == []


echo = Workflow("fault_echo", queue="echo")


@echo.step
def repeat(data: object) -> object:
    return data


class _Runner:
    """The part of the worker's runner a heartbeat uses: running leases, and abandon."""

    def __init__(self, *leases: wpb.TaskLease) -> None:
        self.running = {lease.task_id: lease for lease in leases}
        self.abandoned: list[int] = []

    def leases(self) -> list[wpb.TaskLease]:
        return list(self.running.values())

    def abandon(self, task_ids: Iterable[int]) -> list[int]:
        stopped = [i for i in task_ids if i in self.running]
        self.abandoned += stopped
        return stopped


async def test_a_lost_lease_stops_only_its_own_run_not_the_tasks_next_one(
    database_url: str, manual_clock: ManualClock
) -> None:
    # The fence must hit the stale lease only. A task can come back to the same worker with
    # a new lease (it was given back, or its suspension was recorded and its wait was over
    # at once) while a heartbeat carrying the old lease is in flight; the answer "task N is
    # lost" is about the old lease, and the new run must go on and be recorded.
    async with (
        running_orchestrator(database_url, clock=manual_clock) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        raw = RawClient(channel, worker_id="hb-worker")
        await raw.register(echo)
        execution_id = await raw.start("fault_echo", '"hello"')
        [old] = await raw.poll(queues=["echo"])
        old_lease = wpb.TaskLease(task_id=old.task_id, lease_token=old.lease_token)
        runner = _Runner(old_lease)
        await raw.workers.ReleaseTasks(
            wpb.ReleaseTasksRequest(worker_id=raw.worker_id, leases=[old_lease])
        )

        class InFlight:
            """The worker's stub: the task comes back while the heartbeat is answered."""

            async def Heartbeat(
                self, request: wpb.HeartbeatRequest, timeout: float | None
            ) -> wpb.HeartbeatResponse:
                reply = await raw.workers.Heartbeat(request, timeout=timeout)
                [new] = await raw.poll(queues=["echo"])
                assert (new.task_id, new.attempt) == (old.task_id, 1)
                runner.running[new.task_id] = wpb.TaskLease(
                    task_id=new.task_id, lease_token=new.lease_token
                )
                return reply

        heartbeat = Heartbeat(InFlight(), raw.worker_id, runner)  # type: ignore[arg-type]
        assert await heartbeat.beat() == [old.task_id]  # the old lease is gone ...
        assert runner.abandoned == []  # ... but the run of the new one goes on
        new_lease = runner.running[old.task_id]
        await raw.complete(wpb.Task(task_id=new_lease.task_id, lease_token=new_lease.lease_token))
        execution = await raw.get(execution_id)
        assert execution.status == S.EXECUTION_STATUS_COMPLETED
        assert await check_invariants(database_url) == []
