"""SIGTERM drains a worker process: running steps finish (or are given back), then exit 0.

The orchestrator runs on a manual clock, so no lease expires during these tests: whatever
happens to a task happens because the worker said so.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.faults.procs import WorkerProcess, step_runs, worker_process
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

EXIT_DEADLINE = 10.0
DRAINING = "draining: finishing running steps"


@pytest.fixture
async def orch(database_url: str, manual_clock: ManualClock) -> AsyncIterator[Orchestrator]:
    async with running_orchestrator(database_url, clock=manual_clock) as o:
        yield o


@pytest.fixture
async def raw(orch: Orchestrator) -> AsyncIterator[RawClient]:
    async with grpc.aio.insecure_channel(orch.address) as channel:
        yield RawClient(channel)


async def task_of(database_url: str, execution_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT status, attempt, failures, losses, worker_id, lease_token::text AS lease_token"
            " FROM durable.tasks WHERE execution_id = $1",
            execution_id,
        )
    finally:
        await conn.close()


async def settle_started(step_log: Path, worker: WorkerProcess) -> None:
    async def started() -> bool:
        return ("settle", 1, worker.pid) in step_runs(step_log)

    await wait_until(started)


async def completed(raw: RawClient, execution_id: str) -> pb.Execution:
    async def done() -> pb.Execution | None:
        execution = await raw.get(execution_id)
        return execution if execution.status == S.EXECUTION_STATUS_COMPLETED else None

    return await wait_until(done)


def attempts(execution: pb.Execution) -> list[tuple[str, int, int, str]]:
    return [(s.step_name, s.attempt, s.status, s.worker_id) for s in execution.steps]


async def test_sigterm_lets_the_running_step_finish_report_and_exit_0(
    orch: Orchestrator, raw: RawClient, database_url: str, tmp_path: Path
) -> None:
    step_log = tmp_path / "steps.log"
    async with worker_process(
        orch.address,
        "drain-a",
        tmp_path,
        step_log=step_log,
        block_steps=["settle"],
        args=["--drain-timeout", "15"],
    ) as worker_a:
        first = await raw.start("fault_drain", '{"amount": 3}')
        await settle_started(step_log, worker_a)

        worker_a.signal(signal.SIGTERM)
        await worker_a.wait_stderr(DRAINING)
        # Work that arrives during the drain is left for other workers.
        second = await raw.start("fault_drain", '{"amount": 4}')
        assert worker_a.running, worker_a.describe()  # still running the step

        await worker_a.release_step()
        assert await worker_a.wait_exit(EXIT_DEADLINE) == 0, worker_a.describe()
        assert "drained; 0 running task(s) given back" in worker_a.stderr()

    # The result was reported before the process exited.
    execution = await raw.get(first)
    assert execution.status == S.EXECUTION_STATUS_COMPLETED, worker_a.describe()
    assert json.loads(execution.result_json) == {"settled": 300}
    assert attempts(execution) == [("settle", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, "drain-a")]

    # The draining worker never leased the execution started during the drain.
    untouched = await task_of(database_url, second)
    assert untouched is not None
    assert (untouched["status"], untouched["attempt"], untouched["worker_id"]) == (
        "ready",
        1,
        None,
    )
    assert (await raw.get(second)).status == S.EXECUTION_STATUS_PENDING

    async with worker_process(orch.address, "drain-b", tmp_path, step_log=step_log) as worker_b:
        execution = await completed(raw, second)
    assert json.loads(execution.result_json) == {"settled": 400}
    assert attempts(execution) == [("settle", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, "drain-b")]
    assert step_runs(step_log) == [("settle", 1, worker_a.pid), ("settle", 1, worker_b.pid)]


@pytest.mark.parametrize(
    ("drain_timeout", "signals", "logged"),
    [
        ("0.5", 1, "steps still running after 0.5s; giving them back"),
        ("15", 2, "asked again: giving running steps back now"),
    ],
    ids=["drain-timeout-spent", "second-sigterm"],
)
async def test_a_step_outlasting_the_drain_is_given_back_and_finished_elsewhere(
    orch: Orchestrator,
    raw: RawClient,
    database_url: str,
    tmp_path: Path,
    drain_timeout: str,
    signals: int,
    logged: str,
) -> None:
    step_log = tmp_path / "steps.log"
    async with worker_process(
        orch.address,
        "drain-a",
        tmp_path,
        step_log=step_log,
        block_steps=["settle"],
        args=["--drain-timeout", drain_timeout],
    ) as worker_a:
        execution_id = await raw.start("fault_drain", '{"amount": 5}')
        await settle_started(step_log, worker_a)

        worker_a.signal(signal.SIGTERM)
        await worker_a.wait_stderr(DRAINING)
        if signals == 2:
            worker_a.signal(signal.SIGTERM)
        # The step never returns; the worker gives it back and exits anyway.
        assert await worker_a.wait_exit(EXIT_DEADLINE) == 0, worker_a.describe()
        err = worker_a.stderr()
        assert logged in err
        assert "drained; 1 running task(s) given back" in err
        assert "exiting with 1 step thread(s) still running" in err

    # Released, not lost: ready again at once as the same attempt, nothing recorded.
    row = await task_of(database_url, execution_id)
    assert row is not None
    assert (row["status"], row["attempt"], row["failures"], row["losses"]) == ("ready", 1, 0, 0)
    assert (row["worker_id"], row["lease_token"]) == (None, None)
    assert list((await raw.get(execution_id)).steps) == []

    async with worker_process(orch.address, "drain-b", tmp_path, step_log=step_log) as worker_b:
        execution = await completed(raw, execution_id)
    assert json.loads(execution.result_json) == {"settled": 500}
    assert attempts(execution) == [("settle", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, "drain-b")]
    assert step_runs(step_log) == [("settle", 1, worker_a.pid), ("settle", 1, worker_b.pid)]
