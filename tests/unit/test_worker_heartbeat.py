"""The heartbeat loop keeps finished steps' leases alive while their reports wait."""

from __future__ import annotations

import asyncio
from typing import Any

from durable.v1 import worker_service_pb2 as pb
from durable_worker.heartbeat import Heartbeat
from durable_worker.runner import DEFAULT_HEARTBEAT_INTERVAL
from tests.helpers.wait import wait_until

LEASE = pb.TaskLease(task_id=7, lease_token="00000000-0000-0000-0000-000000000007")
PACE = 0.05


class FakeRunner:
    """One task that runs (asking for ``PACE``) until ``finish``."""

    def __init__(self) -> None:
        self.running = True

    def heartbeat_interval(self) -> float:
        return PACE if self.running else DEFAULT_HEARTBEAT_INTERVAL

    def leases(self) -> list[pb.TaskLease]:
        return [LEASE] if self.running else []

    def abandon(self, _task_ids: Any) -> list[int]:
        return []

    async def wait_interval_shortened(self) -> None:
        await asyncio.Event().wait()


class FakeStub:
    """Counts Heartbeat calls and what they carried."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def Heartbeat(self, request: pb.HeartbeatRequest, timeout: float | None = None) -> Any:
        self.calls.append([lease.task_id for lease in request.leases])
        return pb.HeartbeatResponse()


def test_unsent_reports_keep_the_pace_their_tasks_asked_for() -> None:
    runner, pending = FakeRunner(), [LEASE]
    beat = Heartbeat(FakeStub(), "w", runner, extra_leases=lambda: list(pending))  # type: ignore[arg-type]
    assert beat.interval() == PACE
    runner.running = False  # the step finished; its report waits (an outage, say)
    assert beat.interval() == PACE
    pending.clear()  # acknowledged: nothing is held, the idle interval is back
    assert beat.interval() == DEFAULT_HEARTBEAT_INTERVAL


async def test_the_lease_of_a_finished_step_is_heartbeated_until_its_report_goes_through() -> None:
    runner, stub, pending = FakeRunner(), FakeStub(), [LEASE]
    beat = Heartbeat(stub, "w", runner, extra_leases=lambda: list(pending))  # type: ignore[arg-type]

    async def beats(count: int) -> bool:
        return len(stub.calls) >= count

    beat.start()
    try:
        await wait_until(lambda: beats(2), timeout=5)
        runner.running = False
        sent = len(stub.calls)
        # Not after the 10 s idle interval: at the running task's pace.
        await wait_until(lambda: beats(sent + 3), timeout=2)
        assert stub.calls[-1] == [LEASE.task_id]
    finally:
        await beat.stop()
