"""A worker running half of a parallel group's branches (or a foreach's items) is killed.

Another worker finishes the execution after the dead leases expire; every branch and
item result is present exactly once, and each lane's step completed exactly once.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import grpc

from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
from tests.faults.procs import step_runs, worker_process
from tests.helpers.invariants import check_invariants
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

LEASE_SECS = 30.0


async def _run_with_a_crash(
    database_url: str,
    clock: ManualClock,
    tmp_path: Path,
    *,
    workflow: str,
    input_json: str,
    blocking: list[str],
    running_in_a: int,
) -> tuple[pb.Execution, list[tuple[str, int, int]]]:
    step_log = tmp_path / "steps.log"
    async with (
        running_orchestrator(database_url, clock=clock, lease_secs=LEASE_SECS) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        raw = RawClient(channel)
        async with worker_process(
            orch.address,
            "group-a",
            tmp_path,
            step_log=step_log,
            block_steps=blocking,
            concurrency=running_in_a,
        ) as worker_a:
            execution_id = await raw.start(workflow, input_json)

            async def half_running() -> bool:
                runs = [r for r in step_runs(step_log) if r[2] == worker_a.pid]
                return len(runs) == running_in_a

            await wait_until(half_running)
            worker_a.signal(signal.SIGKILL)
            await worker_a.wait_exit()

        # The dead leases expire (the reclaimer loop is woken by the clock) before the
        # second worker starts, so its own leases never outlive a clock jump.
        clock.advance(timedelta(seconds=LEASE_SECS + 1))
        async with worker_process(
            orch.address, "group-b", tmp_path, step_log=step_log, concurrency=4
        ):

            async def finished() -> pb.Execution | None:
                got = await raw.get(execution_id)
                done = got.status == S.EXECUTION_STATUS_COMPLETED
                return got if done else None

            execution = await wait_until(finished, timeout=30)
    assert await check_invariants(database_url) == []
    return execution, step_runs(step_log)


def _completed_per_lane(execution: pb.Execution) -> Counter[str]:
    return Counter(
        a.lane_path
        for a in execution.steps
        if a.status == S.STEP_ATTEMPT_STATUS_COMPLETED and a.kind == S.TASK_KIND_STEP
    )


async def test_parallel_group_survives_a_worker_killed_mid_branches(
    database_url: str, manual_clock: ManualClock, tmp_path: Path
) -> None:
    work = [f"work_{i}" for i in range(4)]
    execution, runs = await _run_with_a_crash(
        database_url,
        manual_clock,
        tmp_path,
        workflow="fault_parallel",
        input_json='{"n": 5}',
        blocking=work,
        running_in_a=2,
    )
    result = json.loads(execution.result_json)
    assert result == {
        f"b{i}": {"ok": True, "value": {"branch": f"work_{i}", "n": 5}} for i in range(4)
    }
    assert _completed_per_lane(execution) == {f"fan_out/b{i}": 1 for i in range(4)}
    lost = [a for a in execution.steps if a.status == S.STEP_ATTEMPT_STATUS_LOST]
    assert len(lost) == 2
    # The two killed branches ran twice (once per worker); the other two once.
    per_step = Counter(step for step, _, _ in runs)
    assert sorted(per_step.values()) == [1, 1, 2, 2]


async def test_foreach_survives_a_worker_killed_mid_items(
    database_url: str, manual_clock: ManualClock, tmp_path: Path
) -> None:
    items = list(range(1, 9))
    execution, runs = await _run_with_a_crash(
        database_url,
        manual_clock,
        tmp_path,
        workflow="fault_foreach",
        input_json=json.dumps({"items": items}),
        blocking=["square"],
        running_in_a=4,
    )
    assert json.loads(execution.result_json) == [i * i for i in items]
    assert _completed_per_lane(execution) == {f"squares/{i}": 1 for i in range(8)}
    lost = [a for a in execution.steps if a.status == S.STEP_ATTEMPT_STATUS_LOST]
    assert len(lost) == 4
    assert len(runs) == 12  # 4 started in the killed worker, then all 8 in the other
