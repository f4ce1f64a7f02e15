"""The reporter against a tiny in-process WorkerService: batching, stale leases, outages.

``FakeWorkerService`` and ``serving`` here are shared by the other worker tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message import Message

from durable._definition import definition_hash
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_worker.reporter import Reporter, chunks, item_task_id
from durable_worker.rpc import STALE_TRAILER
from tests.helpers.fake_server import fake_server
from tests.helpers.wait import wait_until

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass
class Abort:
    """A scripted refusal of the next call of one method."""

    code: grpc.StatusCode
    details: str = "scripted"
    stale_ids: tuple[int, ...] = ()
    trailers: tuple[tuple[str, str], ...] = ()


@dataclass
class FakeWorkerService(pb_grpc.WorkerServiceServicer):
    """Records every request; answers from scripts.

    ``aborts[method]`` refuses the next calls of a method in turn; ``stale`` task ids make
    reports that carry them fail as the real orchestrator does (all or nothing, ids in
    the trailer); ``lost`` ids come back from Heartbeat; ``tasks`` feed PollTasks.
    """

    requests: dict[str, list[Message]] = field(default_factory=dict)
    aborts: dict[str, deque[Abort]] = field(default_factory=dict)
    stale: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)
    tasks: asyncio.Queue[pb.Task] = field(default_factory=asyncio.Queue)

    def script(self, method: str, *aborts: Abort) -> None:
        self.aborts.setdefault(method, deque()).extend(aborts)

    def calls(self, method: str) -> list[Any]:
        return self.requests.get(method, [])

    async def _enter(self, method: str, request: Message, context: Context) -> None:
        self.requests.setdefault(method, []).append(request)
        queue = self.aborts.get(method)
        if queue:
            abort = queue.popleft()
            stale = ((STALE_TRAILER, ",".join(map(str, abort.stale_ids))),)
            await context.abort(
                abort.code,
                abort.details,
                trailing_metadata=(stale if abort.stale_ids else ()) + abort.trailers,
            )

    async def _check_stale(self, ids: list[int], context: Context) -> None:
        stale = sorted(self.stale & set(ids))
        if stale:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "stale lease",
                trailing_metadata=((STALE_TRAILER, ",".join(map(str, stale))),),
            )

    async def RegisterWorkflows(
        self, request: pb.RegisterWorkflowsRequest, context: Context
    ) -> pb.RegisterWorkflowsResponse:
        await self._enter("RegisterWorkflows", request, context)
        return pb.RegisterWorkflowsResponse(
            workflows=[
                pb.RegisteredWorkflow(name=d.name, version=definition_hash(d), created=True)
                for d in request.workflows
            ]
        )

    async def PollTasks(
        self, request: pb.PollTasksRequest, context: Context
    ) -> pb.PollTasksResponse:
        await self._enter("PollTasks", request, context)
        try:
            async with asyncio.timeout(request.wait_timeout.ToTimedelta().total_seconds()):
                tasks = [await self.tasks.get()]
        except TimeoutError:
            return pb.PollTasksResponse()
        while len(tasks) < request.max_tasks and not self.tasks.empty():
            tasks.append(self.tasks.get_nowait())
        return pb.PollTasksResponse(tasks=tasks)

    async def CompleteTasks(
        self, request: pb.CompleteTasksRequest, context: Context
    ) -> pb.CompleteTasksResponse:
        await self._enter("CompleteTasks", request, context)
        await self._check_stale([c.lease.task_id for c in request.completions], context)
        return pb.CompleteTasksResponse()

    async def FailTasks(
        self, request: pb.FailTasksRequest, context: Context
    ) -> pb.FailTasksResponse:
        await self._enter("FailTasks", request, context)
        await self._check_stale([f.lease.task_id for f in request.failures], context)
        return pb.FailTasksResponse()

    async def SuspendTasks(
        self, request: pb.SuspendTasksRequest, context: Context
    ) -> pb.SuspendTasksResponse:
        await self._enter("SuspendTasks", request, context)
        await self._check_stale([s.lease.task_id for s in request.suspensions], context)
        return pb.SuspendTasksResponse()

    async def ReleaseTasks(
        self, request: pb.ReleaseTasksRequest, context: Context
    ) -> pb.ReleaseTasksResponse:
        await self._enter("ReleaseTasks", request, context)
        await self._check_stale([lease.task_id for lease in request.leases], context)
        return pb.ReleaseTasksResponse()

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        await self._enter("Heartbeat", request, context)
        held = {lease.task_id for lease in request.leases}
        return pb.HeartbeatResponse(lost_task_ids=sorted(self.lost & held))

    # What the orchestrator accepted, call by call (refused calls excluded).
    def completed_ids(self) -> list[int]:
        return self._accepted("CompleteTasks", lambda r: [c.lease.task_id for c in r.completions])

    def failed_ids(self) -> list[int]:
        return self._accepted("FailTasks", lambda r: [f.lease.task_id for f in r.failures])

    def suspended_ids(self) -> list[int]:
        return self._accepted("SuspendTasks", lambda r: [s.lease.task_id for s in r.suspensions])

    def released_ids(self) -> list[int]:
        return self._accepted("ReleaseTasks", lambda r: [lease.task_id for lease in r.leases])

    def _accepted(self, method: str, ids: Any) -> list[int]:
        out: list[int] = []
        for request in self.calls(method):
            got = ids(request)
            if not self.stale & set(got):
                out.extend(got)
        return out


@contextlib.asynccontextmanager
async def serving(
    service: FakeWorkerService | None = None,
) -> AsyncIterator[tuple[FakeWorkerService, str]]:
    """The fake service on 127.0.0.1:<port chosen by the OS>, and its address."""
    service = service or FakeWorkerService()
    async with fake_server((pb_grpc.add_WorkerServiceServicer_to_server, service)) as address:
        yield service, address


@contextlib.asynccontextmanager
async def reporter_on(address: str, **kwargs: Any) -> AsyncIterator[tuple[Reporter, list[float]]]:
    """A started reporter whose retry pauses are recorded instead of slept."""
    delays: list[float] = []

    async def no_sleep(seconds: float) -> None:
        delays.append(seconds)

    async with grpc.aio.insecure_channel(address) as channel:
        reporter = Reporter(pb_grpc.WorkerServiceStub(channel), "w-1", sleep=no_sleep, **kwargs)
        reporter.start()
        try:
            yield reporter, delays
        finally:
            await reporter.stop()


def lease(task_id: int) -> pb.TaskLease:
    return pb.TaskLease(task_id=task_id, lease_token=f"tok-{task_id}")


def done(task_id: int, result: str = "1") -> pb.TaskCompletion:
    return pb.TaskCompletion(lease=lease(task_id), result_json=result)


def failed(task_id: int) -> pb.TaskFailure:
    return pb.TaskFailure(lease=lease(task_id), error=common_pb2.ErrorInfo(type="ValueError"))


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWorkerService, str]]:
    async with serving() as served:
        yield served


async def test_reports_queued_together_go_in_one_call_per_kind(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    async with reporter_on(address) as (reporter, _):
        for report in (done(1), failed(2), done(3), failed(4), done(5)):
            reporter.put(report)
        reporter.release([lease(6), lease(7)])
        await asyncio.wait_for(reporter.flush(), 10)
    assert [len(r.completions) for r in service.calls("CompleteTasks")] == [3]
    assert [len(r.failures) for r in service.calls("FailTasks")] == [2]
    assert service.released_ids() == [6, 7]
    assert service.completed_ids() == [1, 3, 5]
    assert service.calls("CompleteTasks")[0].worker_id == "w-1"


async def test_an_idle_reporter_sends_each_report_at_once(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    async with reporter_on(address) as (reporter, _):
        reporter.put(done(1))
        await asyncio.wait_for(reporter.flush(), 10)
        reporter.put(done(2))
        await asyncio.wait_for(reporter.flush(), 10)
    assert service.completed_ids() == [1, 2]
    assert len(service.calls("CompleteTasks")) == 2


async def test_stale_leases_are_dropped_and_the_rest_sent_again(
    fake: tuple[FakeWorkerService, str], caplog: pytest.LogCaptureFixture
) -> None:
    service, address = fake
    service.stale = {2}
    async with reporter_on(address) as (reporter, delays):
        for task_id in (1, 2, 3):
            reporter.put(done(task_id))
        await asyncio.wait_for(reporter.flush(), 10)
        assert reporter.pending == 0
        assert reporter.pending_leases() == []
    calls = service.calls("CompleteTasks")
    assert [[c.lease.task_id for c in r.completions] for r in calls] == [[1, 2, 3], [1, 3]]
    assert service.completed_ids() == [1, 3]
    assert delays == []  # a stale lease is not an outage: no backoff
    assert "lease lost on task(s) 2" in caplog.text


async def test_a_scripted_stale_trailer_is_read_once_then_the_call_succeeds(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script(
        "FailTasks", Abort(grpc.StatusCode.FAILED_PRECONDITION, "stale", stale_ids=(4, 6))
    )
    async with reporter_on(address) as (reporter, _):
        for task_id in (4, 5, 6, 7):
            reporter.put(failed(task_id))
        await asyncio.wait_for(reporter.flush(), 10)
    calls = service.calls("FailTasks")
    assert [[f.lease.task_id for f in r.failures] for r in calls] == [[4, 5, 6, 7], [5, 7]]


async def test_an_unavailable_orchestrator_delays_reports_but_never_loses_them(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script(
        "CompleteTasks",
        Abort(grpc.StatusCode.UNAVAILABLE),
        Abort(grpc.StatusCode.DEADLINE_EXCEEDED),
        Abort(grpc.StatusCode.UNAVAILABLE),
    )
    async with reporter_on(address) as (reporter, delays):
        reporter.put(done(1))
        reporter.put(done(2))
        await asyncio.wait_for(reporter.flush(), 10)
    assert len(service.calls("CompleteTasks")) == 4
    assert all(len(r.completions) == 2 for r in service.calls("CompleteTasks"))
    assert len(delays) == 3
    assert delays[0] <= 0.1  # exponential, from 0.1 s
    assert delays[0] < delays[2]


async def test_other_refusals_drop_the_batch_with_an_error(
    fake: tuple[FakeWorkerService, str], caplog: pytest.LogCaptureFixture
) -> None:
    service, address = fake
    service.script("CompleteTasks", Abort(grpc.StatusCode.INVALID_ARGUMENT, "bad result"))
    async with reporter_on(address) as (reporter, delays):
        reporter.put(done(1))
        await asyncio.wait_for(reporter.flush(), 10)
        reporter.put(done(2))
        await asyncio.wait_for(reporter.flush(), 10)
    assert [[c.lease.task_id for c in r.completions] for r in service.calls("CompleteTasks")] == [
        [1],
        [2],
    ]
    assert delays == []
    assert "INVALID_ARGUMENT: bad result" in caplog.text


async def test_a_failed_precondition_without_stale_ids_is_dropped(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script("ReleaseTasks", Abort(grpc.StatusCode.FAILED_PRECONDITION, "no trailer"))
    async with reporter_on(address) as (reporter, _):
        reporter.release([lease(1)])
        await asyncio.wait_for(reporter.flush(), 10)
    assert len(service.calls("ReleaseTasks")) == 1


async def test_unacknowledged_reports_keep_their_leases_listed(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script("CompleteTasks", *[Abort(grpc.StatusCode.UNAVAILABLE)] * 3)
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await gate.wait()

    async with grpc.aio.insecure_channel(address) as channel:
        reporter = Reporter(pb_grpc.WorkerServiceStub(channel), "w-1", sleep=held_sleep)
        reporter.start()
        reporter.put(done(9))
        await until(lambda: len(service.calls("CompleteTasks")) == 1)
        assert reporter.pending_leases() == [lease(9)]
        gate.set()
        await asyncio.wait_for(reporter.flush(), 10)
        assert reporter.pending_leases() == []
        await reporter.stop()


async def test_backpressure_waits_until_few_enough_reports_are_unacknowledged(
    fake: tuple[FakeWorkerService, str],
) -> None:
    # The poller takes no new work while reports pile up (a slow orchestrator).
    service, address = fake
    service.script("CompleteTasks", Abort(grpc.StatusCode.UNAVAILABLE))
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await gate.wait()

    async with grpc.aio.insecure_channel(address) as channel:
        reporter = Reporter(pb_grpc.WorkerServiceStub(channel), "w-1", sleep=held_sleep)
        reporter.start()
        for task_id in (1, 2, 3):
            reporter.put(done(task_id))
        await until(lambda: len(service.calls("CompleteTasks")) == 1)
        await asyncio.wait_for(reporter.wait_pending_below(4), 10)  # 3 < 4: at once
        waiter = asyncio.ensure_future(reporter.wait_pending_below(3))
        await until(lambda: reporter.pending == 3)
        assert not waiter.done()
        gate.set()  # the retry goes through
        await asyncio.wait_for(waiter, 10)
        assert reporter.pending == 0
        await reporter.stop()


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` with a deadline (shared by the other worker tests)."""

    async def probe() -> bool:
        return condition()

    await wait_until(probe, timeout=timeout)


def test_chunks_cut_by_size_and_keep_an_oversized_item_alone() -> None:
    small = [done(i, "1") for i in range(1, 5)]
    big = done(99, '"' + "x" * 1000 + '"')
    size = small[0].ByteSize()
    got = chunks([*small[:2], big, *small[2:]], max_bytes=2 * size)
    assert [[item_task_id(c) for c in chunk] for chunk in got] == [[1, 2], [99], [3, 4]]
