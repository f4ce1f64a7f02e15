"""The long-poll loop: lease tasks whenever a slot is free and hand them to the runner."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration

from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_worker import rpc
from durable_worker.backoff import Backoff
from durable_worker.runner import Runner

__all__ = ["DEFAULT_POLL_WAIT", "POLL_DEADLINE_MARGIN", "Poller"]

log = logging.getLogger(__name__)

DEFAULT_POLL_WAIT = timedelta(seconds=30)
POLL_DEADLINE_MARGIN = 10.0
"""Seconds the gRPC deadline of a poll allows beyond its wait, for the server to answer."""
MAX_TASKS_PER_POLL = 1000


class Poller:
    """Polls for tasks while the worker has room, and never crashes on a failed call.

    UNAVAILABLE, DEADLINE_EXCEEDED and connection errors are retried with exponential
    backoff and jitter (0.1 s doubling to 5 s); so is anything else, logged as an error.
    FAILED_PRECONDITION saying the worker is unknown (the orchestrator forgot it)
    registers the worker again first.

    Args:
        stub: The WorkerService stub.
        worker_id: Sent with every poll.
        queues: The queues to take tasks from.
        runner: Says how many slots are free, and runs the leased tasks.
        register: Registers this worker's workflows again.
        backlog: Awaited before each poll: returns once the reports not yet acknowledged
            are few enough to take more work.
        poll_wait: How long one poll may wait on the orchestrator for a task.
        backoff: The retry delays (injectable for tests).
        sleep: Awaited between retries (injectable for tests).
    """

    def __init__(
        self,
        stub: pb_grpc.WorkerServiceAsyncStub,
        worker_id: str,
        queues: Sequence[str],
        runner: Runner,
        *,
        register: Callable[[], Awaitable[object]],
        backlog: Callable[[], Awaitable[None]] | None = None,
        poll_wait: timedelta = DEFAULT_POLL_WAIT,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._stub = stub
        self._worker_id = worker_id
        self._queues = list(queues)
        self._runner = runner
        self._register = register
        self._backlog = backlog
        self._poll_wait = poll_wait
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling in the background."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(
                self.run(), name="durable-poller"
            )

    async def stop(self) -> None:
        """Stop polling, cancelling the poll in flight."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            await self._runner.wait_for_slot()
            if self._backlog is not None:  # no new work while reports pile up unsent
                await self._backlog()
            try:
                await self.poll_once()
            except Exception as exc:
                await self._recover(exc)
            else:
                self._backoff.reset()

    async def poll_once(self) -> int:
        """One PollTasks call for as many tasks as there are free slots; returns how many.

        The slots asked for are reserved while the call is in flight, so next tasks that
        come back with reports meanwhile never overfill the runner.
        """
        reserved = self._runner.reserve(MAX_TASKS_PER_POLL)
        if reserved == 0:
            return 0  # the reporter holds the free slots; wait for one again
        try:
            wait = Duration()
            wait.FromTimedelta(self._poll_wait)
            request = pb.PollTasksRequest(
                worker_id=self._worker_id,
                queues=self._queues,
                max_tasks=reserved,
                wait_timeout=wait,
            )
            response = await self._stub.PollTasks(
                request, timeout=self._poll_wait.total_seconds() + POLL_DEADLINE_MARGIN
            )
            for task in response.tasks:
                self._runner.start(task)
        finally:
            self._runner.unreserve(reserved)
        return len(response.tasks)

    async def _recover(self, exc: Exception) -> None:
        """Register again if the orchestrator forgot this worker; else back off."""
        if rpc.is_unknown_worker(exc):
            log.warning("the orchestrator does not know this worker; registering again")
            try:
                await self._register()
            except Exception as again:
                exc = again
            else:
                self._backoff.reset()
                return
        delay = self._backoff.next_delay()
        level = logging.WARNING if rpc.is_transient(exc) else logging.ERROR
        log.log(level, "poll failed (%s); retrying in %.2fs", rpc.describe(exc), delay)
        await self._sleep(delay)
