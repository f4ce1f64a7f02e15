"""A worker process is SIGKILLed mid-step: another one finishes, the result is recorded once.

The orchestrator runs in the test on a manual clock, so the dead worker's lease expires
exactly when the test moves the clock past it, and never by accident on a slow machine.
"""

from __future__ import annotations

import json
import signal
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc
import pytest

from durable import RetryPolicy, StepContext, Workflow
from durable._definition import definition_hash, to_definition
from durable.v1 import common_pb2 as S
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
from durable_server.engine.engine import STALE_TRAILER
from tests.faults import crash_flows
from tests.faults.procs import step_runs, worker_process
from tests.helpers.invariants import check_invariants
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient, snapshot
from tests.helpers.wait import wait_until

LEASE_SECS = 30.0


async def crunch_task(database_url: str, execution_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT id, status, attempt, failures, losses, worker_id,"
            " lease_token::text AS lease_token FROM durable.tasks"
            " WHERE execution_id = $1 AND step_name = 'crunch'",
            execution_id,
        )
    finally:
        await conn.close()


async def test_a_killed_workers_step_runs_again_elsewhere_and_is_recorded_once(
    database_url: str, manual_clock: ManualClock, tmp_path: Path
) -> None:
    step_log = tmp_path / "steps.log"
    async with (
        running_orchestrator(database_url, clock=manual_clock, lease_secs=LEASE_SECS) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        raw = RawClient(channel)
        async with worker_process(
            orch.address, "fault-a", tmp_path, step_log=step_log, block_steps=["crunch"]
        ) as worker_a:
            execution_id = await raw.start("fault_crash", '{"n": 7}')

            # The step is running in worker A: it said so, and the database agrees.
            async def crunch_started() -> bool:
                return ("crunch", 1, worker_a.pid) in step_runs(step_log)

            await wait_until(crunch_started)
            running = await crunch_task(database_url, execution_id)
            assert running is not None
            assert (running["status"], running["attempt"], running["worker_id"]) == (
                "leased",
                1,
                "fault-a",
            )
            dead = wpb.Task(task_id=running["id"], lease_token=running["lease_token"])

            worker_a.signal(signal.SIGKILL)
            assert await worker_a.wait_exit() == -signal.SIGKILL

        # Nothing renews the lease now; once the clock passes it, the reclaimer loop (woken
        # by the clock) makes the step ready again as attempt 2, the first one lost.
        manual_clock.advance(timedelta(seconds=LEASE_SECS + 1))

        async def reclaimed() -> asyncpg.Record | None:
            row = await crunch_task(database_url, execution_id)
            return row if row is not None and row["status"] == "ready" else None

        row = await wait_until(reclaimed)
        assert (row["attempt"], row["failures"], row["losses"]) == (2, 0, 1)
        assert row["lease_token"] is None

        # The dead worker's report, arriving late, is refused and changes nothing.
        before = await snapshot(database_url)
        late = RawClient(channel, worker_id="fault-a")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await late.complete(dead, '{"n": 7, "squared": -1}')
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert (STALE_TRAILER, str(dead.task_id)) in list(refused.value.trailing_metadata())
        assert await snapshot(database_url) == before

        async with worker_process(
            orch.address, "fault-b", tmp_path, step_log=step_log, block_steps=["crunch"]
        ) as worker_b:

            async def crunch_rerun() -> bool:
                return ("crunch", 2, worker_b.pid) in step_runs(step_log)

            await wait_until(crunch_rerun)
            live = await crunch_task(database_url, execution_id)
            assert live is not None
            assert (live["status"], live["attempt"], live["worker_id"]) == ("leased", 2, "fault-b")
            assert live["lease_token"] != dead.lease_token

            # While worker B holds the new lease, the old token is refused too.
            before = await snapshot(database_url)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await late.complete(dead, '{"n": 7, "squared": -1}')
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert await snapshot(database_url) == before

            await worker_b.release_step()

            async def finished() -> pb.Execution | None:
                execution = await raw.get(execution_id)
                return execution if execution.status == S.EXECUTION_STATUS_COMPLETED else None

            execution = await wait_until(finished)

        assert json.loads(execution.result_json) == "7^2 = 49"
        assert [(s.step_name, s.attempt, s.status, s.worker_id) for s in execution.steps] == [
            ("prepare", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, "fault-a"),
            ("crunch", 1, S.STEP_ATTEMPT_STATUS_LOST, "fault-a"),
            ("crunch", 2, S.STEP_ATTEMPT_STATUS_COMPLETED, "fault-b"),
            ("summarize", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, "fault-b"),
        ]
        lost, done = execution.steps[1], execution.steps[2]
        assert lost.error.type == "LeaseExpired"
        assert lost.result_json == ""
        assert json.loads(done.result_json) == {"n": 7, "squared": 49}

        # The step ran twice (at least once), each worker once; every other step once.
        assert step_runs(step_log) == [
            ("prepare", 1, worker_a.pid),
            ("crunch", 1, worker_a.pid),
            ("crunch", 2, worker_b.pid),
            ("summarize", 1, worker_b.pid),
        ]

        # Both processes registered the one version the execution runs on.
        conn = await asyncpg.connect(database_url)
        try:
            versions = await conn.fetch(
                "SELECT version FROM durable.workflow_versions WHERE name = 'fault_crash'"
            )
            workers = await conn.fetch("SELECT id, versions FROM durable.workers ORDER BY id")
            started_on = await conn.fetchval(
                "SELECT workflow_version FROM durable.executions WHERE id = $1", execution_id
            )
        finally:
            await conn.close()
        version = definition_hash(to_definition(crash_flows.fault_crash))
        assert [r["version"] for r in versions] == [version] == [started_on]
        assert [(w["id"], version in w["versions"]) for w in workers] == [
            ("fault-a", True),
            ("fault-b", True),
        ]

        # Even now the execution is over, the dead worker's report changes nothing.
        before = await snapshot(database_url)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await late.complete(dead, '{"n": 7, "squared": -1}')
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert await snapshot(database_url) == before
        assert await check_invariants(database_url) == []


def test_the_version_hashes_the_declaration_not_the_step_bodies() -> None:
    # Why both processes above register one version although only one of them blocks:
    # the hash covers names and options, never code.
    twin = Workflow("fault_crash")

    @twin.step
    def prepare(data: object, ctx: StepContext) -> object:
        return "another body"

    @twin.step
    def crunch(data: object, ctx: StepContext) -> object:
        return None

    @twin.step
    def summarize(data: object, ctx: StepContext) -> object:
        return data

    assert definition_hash(to_definition(twin)) == definition_hash(
        to_definition(crash_flows.fault_crash)
    )

    @twin.step(retry=RetryPolicy(max_attempts=2))
    def extra(data: object, ctx: StepContext) -> object:
        return data

    assert definition_hash(to_definition(twin)) != definition_hash(
        to_definition(crash_flows.fault_crash)
    )
