"""Keep the leases of running steps alive, and stop steps whose leases were lost."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_worker import rpc
from durable_worker.backoff import Backoff
from durable_worker.runner import Runner

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


MAX_LEASES_PER_CALL = 5000
"""Leases per Heartbeat call: a worker whose reports lag may hold more than that."""


def _no_leases() -> list[pb.TaskLease]:
    return []


class Heartbeat:
    """Sends one Heartbeat call with every held lease, as often as the tasks ask.

    The interval is the shortest ``heartbeat_interval`` among running tasks (10 s when
    none says). The loop also wakes when a task starts that asks for a shorter interval
    than the one in use, so that task is heartbeated in time; under steady load it does
    not wake per task. No call is sent while nothing is held.

    A finished step's lease is held until its report is acknowledged, which an outage
    can delay for long; such leases keep the pace their tasks asked for while they ran
    (the shortest interval seen), so they do not expire while the report waits.

    Args:
        stub: The WorkerService stub.
        worker_id: Sent with every call.
        runner: Gives the running tasks' leases, and abandons the lost ones.
        extra_leases: More leases to keep alive: finished steps whose reports are
            still in flight.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        stub: pb_grpc.WorkerServiceAsyncStub,
        worker_id: str,
        runner: Runner,
        *,
        extra_leases: Callable[[], list[pb.TaskLease]] = _no_leases,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        self._worker_id = worker_id
        self._runner = runner
        self._extra_leases = extra_leases
        self._clock = clock
        self._backoff = Backoff()
        self._pace = float("inf")  # the shortest interval running tasks asked for so far
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the heartbeat loop in the background."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(
                self.run(), name="durable-heartbeat"
            )

    async def stop(self) -> None:
        """Stop the loop (and any call in flight)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None

    async def run(self) -> None:
        """Heartbeat until cancelled."""
        last = self._clock()
        while True:
            interval = self.interval()
            remaining = last + interval - self._clock()
            if remaining > 0:
                await self._wait_change(remaining)
                continue
            last = self._clock()
            try:
                await self.beat(rpc_timeout=interval)
                self._backoff.reset()
            except Exception as exc:
                delay = min(self._backoff.next_delay(), interval)
                log.warning("heartbeat failed (%s); retrying in %.2fs", rpc.describe(exc), delay)
                last = self._clock() - interval + delay

    def interval(self) -> float:
        """Seconds between heartbeats now: running tasks' pace, kept for unsent reports."""
        interval = self._runner.heartbeat_interval()
        self._pace = min(self._pace, interval)
        if self._extra_leases():
            interval = min(interval, self._pace)
        return interval

    async def _wait_change(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._runner.wait_interval_shortened()
        except TimeoutError:
            pass

    def leases(self) -> list[pb.TaskLease]:
        """Every lease held now: running steps, then reports not yet acknowledged."""
        held = {lease.task_id: lease for lease in self._extra_leases()}
        held.update((lease.task_id, lease) for lease in self._runner.leases())
        return list(held.values())

    async def beat(self, *, rpc_timeout: float | None = None) -> list[int]:
        """Send one heartbeat (if any lease is held); abandon the lost tasks and return them."""
        leases = self.leases()
        if not leases:
            return []
        lost: list[int] = []
        for start in range(0, len(leases), MAX_LEASES_PER_CALL):  # the orchestrator's limit
            response = await self._stub.Heartbeat(
                pb.HeartbeatRequest(
                    worker_id=self._worker_id,
                    leases=leases[start : start + MAX_LEASES_PER_CALL],
                ),
                timeout=rpc_timeout,
            )
            lost += response.lost_task_ids
        if lost:
            # Only the leases this call sent are lost: a task that came back to this worker
            # with a new lease while the call was in flight runs on.
            sent = {lease.task_id: lease.lease_token for lease in leases}
            now = {lease.task_id: lease.lease_token for lease in self._runner.leases()}
            abandoned = self._runner.abandon(i for i in lost if now.get(i) == sent.get(i))
            # A task reported while this heartbeat was in flight is "lost" too: harmless.
            log.log(
                logging.WARNING if abandoned else logging.DEBUG,
                "lease lost on task(s) %s; stopped %d running step(s): their results will "
                "not be recorded",
                ", ".join(map(str, lost)),
                len(abandoned),
            )
        return lost
