"""Send step reports to the orchestrator in batches, and never lose one to an outage.

One loop takes everything queued right now (waits for one report, then drains the
queue without waiting) and sends it as one CompleteTasks, one FailTasks, one
SuspendTasks and one ReleaseTasks call, run concurrently. When idle a report goes out at
once; under load reports pile up while a call is in flight and the next call carries
them all.

How a refused call is handled:

- FAILED_PRECONDITION listing stale task ids (trailer ``durable-stale-task-ids``):
  those leases were lost, so their reports are dropped with a warning, and the rest
  are sent again (the orchestrator applies a batch all or nothing).
- UNAVAILABLE, DEADLINE_EXCEEDED, connection errors: the same batch is sent again
  after a backoff, for as long as it takes.
- Anything else: the batch is dropped and logged as an error; its tasks run again
  once their leases expire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal

from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_worker import rpc
from durable_worker.backoff import Backoff
from durable_worker.outcome import Report

__all__ = ["Item", "Reporter", "chunks", "item_task_id"]

log = logging.getLogger(__name__)

Item = pb.TaskCompletion | pb.TaskFailure | pb.TaskSuspension | pb.TaskLease
"""One queued report: a result, a failure, a suspension, or (a bare lease) a task given
back unrun."""
Kind = Literal["complete", "fail", "suspend", "release"]

MAX_ITEMS_PER_CALL = 1000
MAX_NEXT_TASKS = 1000
DEFAULT_BATCH_BYTES = 3 * 1024 * 1024
"""Batches are cut to stay under gRPC's default 4 MiB message limit on the server."""


def _kind(item: Item) -> Kind:
    if isinstance(item, pb.TaskCompletion):
        return "complete"
    if isinstance(item, pb.TaskFailure):
        return "fail"
    return "suspend" if isinstance(item, pb.TaskSuspension) else "release"


def item_task_id(item: Item) -> int:
    """The id of the task an item reports on."""
    return item.task_id if isinstance(item, pb.TaskLease) else item.lease.task_id


def chunks(items: Sequence[Item], max_bytes: int) -> list[list[Item]]:
    """Split ``items`` into calls of at most ``max_bytes`` (one oversized item goes alone)."""
    out: list[list[Item]] = []
    size = 0
    for item in items:
        item_size = item.ByteSize()
        if not out or len(out[-1]) >= MAX_ITEMS_PER_CALL or size + item_size > max_bytes:
            out.append([])
            size = 0
        out[-1].append(item)
        size += item_size
    return out


class Reporter:
    """Batches reports into CompleteTasks/FailTasks/SuspendTasks/ReleaseTasks calls.

    Args:
        stub: The WorkerService stub.
        worker_id: Sent with every call.
        call_timeout: Deadline of each call, in seconds.
        batch_bytes: Largest call to send, in serialized bytes of its items.
        backoff: Makes a fresh backoff for each batch that meets an outage.
        sleep: Awaited between retries (injectable for tests).
        max_in_flight: Batches being sent at the same time, at most; while they are,
            new reports pile up for the next batch.
    """

    def __init__(
        self,
        stub: pb_grpc.WorkerServiceAsyncStub,
        worker_id: str,
        *,
        call_timeout: float = 30.0,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        backoff: Callable[[], Backoff] = Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_in_flight: int = 1,
    ) -> None:
        self._max_in_flight = max_in_flight
        self._queues: list[str] = []
        self._reserve: Callable[[int], int] | None = None
        self._unreserve: Callable[[int], None] = lambda _count: None
        self._start_task: Callable[[pb.Task], object] = lambda _task: None
        self._stub = stub
        self._worker_id = worker_id
        self._call_timeout = call_timeout
        self._batch_bytes = batch_bytes
        self._backoff = backoff
        self._sleep = sleep
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._unresolved = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._resolved = asyncio.Event()  # set whenever reports are acknowledged or dropped
        self._reported: dict[int, pb.TaskLease] = {}
        self._loop_task: asyncio.Task[None] | None = None

    # -- queueing ----------------------------------------------------------------------

    def take_tasks(
        self,
        queues: Sequence[str],
        reserve: Callable[[int], int],
        unreserve: Callable[[int], None],
        start: Callable[[pb.Task], object],
    ) -> None:
        """Ask for next tasks with each CompleteTasks call.

        ``reserve(n)`` holds up to ``n`` free slots for the call and says how many; up to
        that many of the tasks the call's completions make ready are leased to this worker
        in its response, each is given to ``start`` (no poll between two steps), and then
        the slots are given back with ``unreserve``.
        """
        self._queues = list(queues)
        self._reserve = reserve
        self._unreserve = unreserve
        self._start_task = start

    def stop_taking_tasks(self) -> None:
        """Ask for no more next tasks (draining)."""
        self._reserve = None

    def put(self, report: Report) -> None:
        """Queue a step's result, failure or suspension."""
        self._reported[report.lease.task_id] = report.lease
        self._enqueue(report)

    def release(self, leases: Iterable[pb.TaskLease]) -> None:
        """Queue leases to give back unrun (ReleaseTasks)."""
        for lease in leases:
            self._enqueue(lease)

    def _enqueue(self, item: Item) -> None:
        self._unresolved += 1
        self._idle.clear()
        self._queue.put_nowait(item)

    @property
    def pending(self) -> int:
        """Reports queued or in flight, not yet acknowledged or dropped."""
        return self._unresolved

    def pending_leases(self) -> list[pb.TaskLease]:
        """Leases of finished steps whose reports are not acknowledged yet (to heartbeat)."""
        return list(self._reported.values())

    async def wait_pending_below(self, limit: int) -> None:
        """Return once fewer than ``limit`` reports are unacknowledged (backpressure)."""
        while self._unresolved >= limit:
            self._resolved.clear()
            await self._resolved.wait()

    async def flush(self) -> None:
        """Return once every report queued so far is acknowledged (or dropped as stale)."""
        await self._idle.wait()

    # -- the loop ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the sending loop in the background."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(
                self.run(), name="durable-reporter"
            )

    async def stop(self) -> None:
        """Stop the sending loop; reports still queued are not sent."""
        unsent = self._unresolved
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if unsent:
            log.warning(
                "stopped with %d report(s) unsent; their tasks run again when the leases expire",
                unsent,
            )

    async def run(self) -> None:
        """Send batches until cancelled, at most ``max_in_flight`` at a time."""
        slots = asyncio.Semaphore(self._max_in_flight)
        sending: set[asyncio.Task[None]] = set()
        try:
            while True:
                batch = [await self._queue.get()]
                await slots.acquire()
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                task = asyncio.get_running_loop().create_task(self._send_one(batch, slots))
                sending.add(task)
                task.add_done_callback(sending.discard)
        finally:
            for task in sending:
                task.cancel()

    async def _send_one(self, batch: list[Item], slots: asyncio.Semaphore) -> None:
        try:
            await self.send(batch)
        except Exception:
            log.exception("dropped %d report(s) after an unexpected error", len(batch))
        finally:
            slots.release()
            self._resolve(batch)

    def _resolve(self, batch: Sequence[Item]) -> None:
        for item in batch:
            if not isinstance(item, pb.TaskLease):
                task_id = item.lease.task_id
                if self._reported.get(task_id) == item.lease:
                    del self._reported[task_id]
        self._unresolved -= len(batch)
        self._resolved.set()
        if self._unresolved == 0:
            self._idle.set()

    async def send(self, batch: Sequence[Item]) -> None:
        """Send one batch: one call per kind of item (and per size chunk), concurrently.

        A task whose lease was lost can come back to this worker (same id, new token)
        while the report of its earlier run is still queued: that report is stale, and a
        call naming a task twice is refused whole, so only the latest report of a task goes.
        """
        latest = {item_task_id(item): item for item in batch}
        if len(latest) < len(batch):
            superseded = {item_task_id(i) for i in batch if latest[item_task_id(i)] is not i}
            log.warning(
                "lease lost on task(s) %s: a later run of the same task replaces the earlier "
                "report",
                ", ".join(map(str, sorted(superseded))),
            )
        by_kind: dict[Kind, list[Item]] = {}
        for item in latest.values():
            by_kind.setdefault(_kind(item), []).append(item)
        await asyncio.gather(
            *(
                self._deliver(kind, chunk)
                for kind, items in by_kind.items()
                for chunk in chunks(items, self._batch_bytes)
            )
        )

    async def _deliver(self, kind: Kind, items: list[Item]) -> None:
        """Send one call until it is accepted, its stale items dropped, or it is refused."""
        backoff = self._backoff()
        while items:
            try:
                await self._call(kind, items)
                return
            except Exception as exc:
                stale = rpc.stale_task_ids(exc)
                kept = [i for i in items if item_task_id(i) not in stale]
                if len(kept) < len(items):
                    self._log_stale(kind, sorted(stale & {item_task_id(i) for i in items}))
                    items = kept
                    continue
                if not rpc.is_transient(exc):
                    log.error(
                        "%s of %d task(s) refused, dropped: %s", kind, len(items), rpc.describe(exc)
                    )
                    return
                delay = backoff.next_delay()
                log.warning(
                    "%s of %d task(s) failed (%s); retrying in %.2fs",
                    kind,
                    len(items),
                    rpc.describe(exc),
                    delay,
                )
                await self._sleep(delay)

    @staticmethod
    def _log_stale(kind: Kind, task_ids: list[int]) -> None:
        log.warning(
            "lease lost on task(s) %s: the orchestrator did not record this %s; "
            "the task was given to another worker or finished",
            ", ".join(map(str, task_ids)),
            kind,
        )

    async def _call(self, kind: Kind, items: list[Item]) -> None:
        """One RPC carrying ``items``."""
        worker_id, timeout = self._worker_id, self._call_timeout
        if kind == "complete":
            completions = [i for i in items if isinstance(i, pb.TaskCompletion)]
            room = self._reserve(MAX_NEXT_TASKS) if self._reserve is not None else 0
            try:
                response = await self._stub.CompleteTasks(
                    pb.CompleteTasksRequest(
                        worker_id=worker_id,
                        completions=completions,
                        max_next_tasks=room,
                        queues=self._queues if room else (),
                    ),
                    timeout=timeout,
                )
                for task in response.next_tasks:
                    self._start_task(task)
            finally:
                if room:
                    self._unreserve(room)
        elif kind == "fail":
            failures = [i for i in items if isinstance(i, pb.TaskFailure)]
            await self._stub.FailTasks(
                pb.FailTasksRequest(worker_id=worker_id, failures=failures), timeout=timeout
            )
        elif kind == "suspend":
            suspensions = [i for i in items if isinstance(i, pb.TaskSuspension)]
            await self._stub.SuspendTasks(
                pb.SuspendTasksRequest(worker_id=worker_id, suspensions=suspensions),
                timeout=timeout,
            )
        else:
            leases = [i for i in items if isinstance(i, pb.TaskLease)]
            await self._stub.ReleaseTasks(
                pb.ReleaseTasksRequest(worker_id=worker_id, leases=leases), timeout=timeout
            )
