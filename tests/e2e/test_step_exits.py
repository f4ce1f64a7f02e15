"""A worker process survives its steps' sys.exit() and KeyboardInterrupt, and still drains.

Each such attempt fails with the exception's type and is retried by the step's policy; the
same worker then runs the next execution. Only the worker's own signals stop it.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import grpc

from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from tests.faults.procs import worker_process
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

DONE = {S.EXECUTION_STATUS_COMPLETED, S.EXECUTION_STATUS_FAILED}


async def _ended(raw: RawClient, execution_id: str) -> pb.Execution:
    async def ended() -> pb.Execution | None:
        got = await raw.get(execution_id)
        return got if got.status in DONE else None

    return await wait_until(ended, timeout=30)


async def test_a_step_that_exits_fails_its_attempts_and_the_worker_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    async with (
        running_orchestrator(database_url) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
        worker_process(
            orch.address,
            "exit-worker",
            tmp_path,
            step_log=tmp_path / "steps.log",
            module="tests.e2e.exit_flows",
            concurrency=2,
        ) as worker,
    ):
        raw = RawClient(channel)
        exits = (("exit_sync", "SystemExit"), ("exit_async", "KeyboardInterrupt"))
        for workflow, error_type in exits:
            ex = await _ended(raw, await raw.start(workflow, "{}"))
            assert ex.status == S.EXECUTION_STATUS_FAILED, worker.describe()
            assert ex.error.type == error_type
            attempts = [(a.attempt, a.status, a.error.type, a.worker_id) for a in ex.steps]
            assert attempts == [  # the policy's two attempts, both on the one worker
                (1, S.STEP_ATTEMPT_STATUS_FAILED, error_type, "exit-worker"),
                (2, S.STEP_ATTEMPT_STATUS_FAILED, error_type, "exit-worker"),
            ], worker.describe()
            assert worker.running, worker.describe()

        first = ex.steps[0].error
        assert first.message.startswith("KeyboardInterrupt in user code: it fails this attempt")
        assert "in interrupt" in first.traceback

        ex = await _ended(raw, await raw.start("exit_after", json.dumps({"n": 1})))
        assert ex.status == S.EXECUTION_STATUS_COMPLETED, worker.describe()
        assert [a.worker_id for a in ex.steps] == ["exit-worker"]

        # The worker's own SIGTERM still drains it: it exits 0.
        worker.signal(signal.SIGTERM)
        assert await worker.wait_exit(timeout=15) == 0, worker.describe()
