"""The orchestrator process is SIGKILLed in the middle of a foreach, then started again.

Every state change is one transaction, so the restarted orchestrator finds each lane
either done or not: the workers' reports that were cut off are sent again (or found
stale), and the execution completes with every item's result exactly once.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import grpc

from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from tests.faults.procs import free_port, orchestrator_process, step_runs, worker_process
from tests.helpers.invariants import check_invariants
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

ITEMS = list(range(1, 25))


async def test_a_foreach_survives_the_orchestrator_being_killed(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    step_log = tmp_path / "steps.log"
    async with worker_process(
        address,
        "survivor",
        tmp_path,
        step_log=step_log,
        block_steps=["square"],
        concurrency=4,
        wait_ready=False,
    ) as worker:
        async with orchestrator_process(database_url, port, tmp_path, "orch-1") as first:
            await worker.wait_ready(timeout=30)
            async with grpc.aio.insecure_channel(address) as channel:
                execution_id = await RawClient(channel).start(
                    "fault_foreach", json.dumps({"items": ITEMS})
                )

            async def four_running() -> bool:
                return len(step_runs(step_log)) == 4

            await wait_until(four_running)  # four items run (blocked) in the worker
            first.signal(signal.SIGKILL)
            await first.wait_exit()

        # Orchestrator gone: let the four steps finish; their reports cannot get through.
        for _ in range(4):
            await worker.release_step()

        async with (
            orchestrator_process(database_url, port, tmp_path, "orch-2"),
            grpc.aio.insecure_channel(address) as channel,
        ):
            raw = RawClient(channel)

            async def finished() -> pb.Execution | None:
                # One line per probe releases the items that run now: lines written all at
                # once could be read into one blocked thread's buffer, starving the others.
                await worker.release_step()
                got = await raw.get(execution_id)
                return got if got.status == S.EXECUTION_STATUS_COMPLETED else None

            execution = await wait_until(finished, timeout=60)

    assert json.loads(execution.result_json) == [i * i for i in ITEMS]
    completed = Counter(
        a.lane_path
        for a in execution.steps
        if a.step_name == "square" and a.status == S.STEP_ATTEMPT_STATUS_COMPLETED
    )
    assert completed == {f"squares/{i}": 1 for i in range(len(ITEMS))}
    assert await check_invariants(database_url) == []
