"""Client and SyncClient against a tiny in-process WorkflowService (no orchestrator)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message import Message

from durable import (
    Client,
    DeadlineExceededError,
    ExecutionStatus,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    SyncClient,
    UnavailableError,
    Workflow,
)
from durable._requests import children_request, list_request, start_request
from durable._waiting import LONG_POLL_SECS, MAX_POLL_INTERVAL, WaitDeadline
from durable.errors import DurableError
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from tests.helpers.fake_server import fake_server

S = common_pb2


class FakeWorkflowService(pb_grpc.WorkflowServiceServicer):
    """Answers from ``scripts``: each GetExecution of an id takes its next status."""

    def __init__(self) -> None:
        self.requests: list[Message] = []
        self.scripts: dict[str, list[int]] = {
            "ex-done": [S.EXECUTION_STATUS_COMPLETED],
            "ex-slow": [
                S.EXECUTION_STATUS_PENDING,
                S.EXECUTION_STATUS_RUNNING,
                S.EXECUTION_STATUS_WAITING,
                S.EXECUTION_STATUS_COMPLETED,
            ],
            "ex-stuck": [S.EXECUTION_STATUS_RUNNING],
        }

    def execution(self, execution_id: str, status: int) -> pb.Execution:
        return pb.Execution(
            id=execution_id,
            workflow_name="wf",
            status=status,  # type: ignore[arg-type]
            queue="default",
            input_json='{"n": 1}',
            result_json='{"total": 3}' if status == S.EXECUTION_STATUS_COMPLETED else "",
        )

    async def StartWorkflow(
        self, request: pb.StartWorkflowRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.StartWorkflowResponse:
        self.requests.append(request)
        if not request.workflow_name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "workflow_name is required")
        if request.workflow_name == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "workflow 'missing' is not registered")
        return pb.StartWorkflowResponse(
            execution_id="ex-done", created=request.idempotency_key != "seen"
        )

    async def GetExecution(
        self, request: pb.GetExecutionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetExecutionResponse:
        self.requests.append(request)
        script = self.scripts.get(request.execution_id)
        if script is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"execution {request.execution_id!r} not found"
            )
            raise AssertionError("unreachable")
        status = script.pop(0) if len(script) > 1 else script[0]
        return pb.GetExecutionResponse(execution=self.execution(request.execution_id, status))

    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListExecutionsResponse:
        self.requests.append(request)
        if request.page_size > 1000:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must be at most 1000")
        return pb.ListExecutionsResponse(
            executions=[
                self.execution("ex-stuck", S.EXECUTION_STATUS_RUNNING),
                self.execution("ex-done", S.EXECUTION_STATUS_COMPLETED),
            ],
            next_page_token="page-2",
            total_count=5,
        )

    async def ListChildren(
        self, request: pb.ListChildrenRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListChildrenResponse:
        self.requests.append(request)
        if request.parent_execution_id == "nope":
            await context.abort(grpc.StatusCode.NOT_FOUND, "execution 'nope' not found")
        child = self.execution("ex-child", S.EXECUTION_STATUS_FAILED)
        child.parent_execution_id = request.parent_execution_id
        return pb.ListChildrenResponse(executions=[child], next_page_token="kids-2")

    async def CancelExecution(
        self, request: pb.CancelExecutionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CancelExecutionResponse:
        self.requests.append(request)
        if request.execution_id == "ex-done":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "execution 'ex-done' has finished"
            )
        return pb.CancelExecutionResponse(
            execution=self.execution(request.execution_id, S.EXECUTION_STATUS_CANCELLED)
        )


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[FakeWorkflowService, str]]:
    """The fake service on 127.0.0.1:<port chosen by the OS>, and its address."""
    service = FakeWorkflowService()
    async with fake_server((pb_grpc.add_WorkflowServiceServicer_to_server, service)) as address:
        yield service, address


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWorkflowService, str]]:
    async with serving() as served:
        yield served


async def test_start_sends_the_encoded_input(fake: tuple[FakeWorkflowService, str]) -> None:
    service, address = fake
    wf = Workflow("wf")
    at = datetime(2030, 1, 2, tzinfo=UTC)
    async with Client(address) as client:
        execution_id = await client.start(
            wf, {"at": at, "n": (1, 2)}, queue="q", priority=3, scheduled_at=at
        )
        again = await client.start_execution("wf", idempotency_key="seen")
    assert execution_id == "ex-done"
    assert (again.execution_id, again.created) == ("ex-done", False)
    first = service.requests[0]
    assert isinstance(first, pb.StartWorkflowRequest)
    assert first.workflow_name == "wf"
    assert first.input_json == '{"at":"2030-01-02T00:00:00+00:00","n":[1,2]}'
    assert (first.queue, first.priority, first.idempotency_key) == ("q", 3, "")
    assert first.scheduled_at.ToDatetime(tzinfo=UTC) == at
    second = service.requests[1]
    assert isinstance(second, pb.StartWorkflowRequest)
    assert second.input_json == "null"
    assert not second.HasField("scheduled_at")


async def test_get_execution(fake: tuple[FakeWorkflowService, str]) -> None:
    service, address = fake
    async with Client(address) as client:
        got = await client.get_execution("ex-done", include_steps=True)
    assert got.status is ExecutionStatus.COMPLETED
    assert (got.input, got.result) == ({"n": 1}, {"total": 3})
    assert service.requests == [
        pb.GetExecutionRequest(execution_id="ex-done", include_steps=True, include_logs=False)
    ]


async def test_list_executions(fake: tuple[FakeWorkflowService, str]) -> None:
    service, address = fake
    after = datetime(2024, 1, 1, tzinfo=UTC)
    async with Client(address) as client:
        page = await client.list_executions(
            workflow="wf",
            statuses=[ExecutionStatus.RUNNING, "waiting"],
            top_level_only=True,
            created_after=after,
            page_size=2,
            page_token="page-1",
        )
    assert [e.id for e in page.executions] == ["ex-stuck", "ex-done"]
    assert (page.next_page_token, page.total_count) == ("page-2", 5)
    sent = service.requests[0]
    assert isinstance(sent, pb.ListExecutionsRequest)
    assert list(sent.statuses) == [S.EXECUTION_STATUS_RUNNING, S.EXECUTION_STATUS_WAITING]
    assert (sent.workflow_name, sent.top_level_only, sent.page_size) == ("wf", True, 2)
    assert sent.page_token == "page-1"
    assert sent.created_after.ToDatetime(tzinfo=UTC) == after
    assert not sent.HasField("created_before")


async def test_list_children(fake: tuple[FakeWorkflowService, str]) -> None:
    service, address = fake
    async with Client(address) as client:
        page = await client.list_children(
            "ex-parent", statuses=["failed", ExecutionStatus.CANCELLED], page_token="kids-1"
        )
    [child] = page.executions
    assert (child.id, child.parent_execution_id, child.status) == (
        "ex-child",
        "ex-parent",
        ExecutionStatus.FAILED,
    )
    assert (page.next_page_token, page.total_count) == ("kids-2", None)
    assert service.requests == [
        pb.ListChildrenRequest(
            parent_execution_id="ex-parent",
            statuses=[S.EXECUTION_STATUS_FAILED, S.EXECUTION_STATUS_CANCELLED],
            page_size=0,
            page_token="kids-1",
        )
    ]


async def test_sync_list_children(fake: tuple[FakeWorkflowService, str]) -> None:
    service, address = fake

    def call() -> Any:
        with SyncClient(address) as client:
            return client.list_children("ex-parent", statuses="running", page_size=10)

    page = await asyncio.to_thread(call)
    assert [e.id for e in page.executions] == ["ex-child"]
    assert page.total_count is None
    assert service.requests == [
        pb.ListChildrenRequest(
            parent_execution_id="ex-parent", statuses=[S.EXECUTION_STATUS_RUNNING], page_size=10
        )
    ]


def test_children_request_refuses_unknown_statuses() -> None:
    with pytest.raises(ValueError, match="unknown execution status 'done'"):
        children_request("ex-parent", statuses=["done"], page_size=0, page_token=None)


async def test_cancel(fake: tuple[FakeWorkflowService, str]) -> None:
    service, address = fake
    async with Client(address) as client:
        got = await client.cancel("ex-stuck", reason="no longer needed")
    assert got.status is ExecutionStatus.CANCELLED
    assert service.requests == [
        pb.CancelExecutionRequest(execution_id="ex-stuck", reason="no longer needed")
    ]


@pytest.mark.parametrize(
    ("call", "error", "code", "message"),
    [
        (
            lambda c: c.get_execution("nope"),
            NotFoundError,
            grpc.StatusCode.NOT_FOUND,
            "execution 'nope' not found",
        ),
        (
            lambda c: c.start("missing"),
            NotFoundError,
            grpc.StatusCode.NOT_FOUND,
            "workflow 'missing' is not registered",
        ),
        (
            lambda c: c.start(""),
            InvalidArgumentError,
            grpc.StatusCode.INVALID_ARGUMENT,
            "workflow_name is required",
        ),
        (
            lambda c: c.list_executions(page_size=5000),
            InvalidArgumentError,
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_size must be at most 1000",
        ),
        (
            lambda c: c.list_children("nope"),
            NotFoundError,
            grpc.StatusCode.NOT_FOUND,
            "execution 'nope' not found",
        ),
        (
            lambda c: c.cancel("ex-done"),
            FailedPreconditionError,
            grpc.StatusCode.FAILED_PRECONDITION,
            "execution 'ex-done' has finished",
        ),
    ],
)
async def test_errors_are_typed(
    fake: tuple[FakeWorkflowService, str],
    call: Any,
    error: type[DurableError],
    code: grpc.StatusCode,
    message: str,
) -> None:
    _, address = fake
    async with Client(address) as client:
        with pytest.raises(error) as info:
            await call(client)
    assert info.value.code == code
    assert info.value.message == message
    assert str(info.value) == message
    assert isinstance(info.value.__cause__, grpc.RpcError)
    with SyncClient(address) as sync_client:
        with pytest.raises(error) as sync_info:
            await asyncio.to_thread(call, sync_client)
    assert (sync_info.value.code, sync_info.value.message) == (code, message)
    assert isinstance(sync_info.value.__cause__, grpc.RpcError)


async def test_unreachable_server_is_unavailable(tmp_path: Path) -> None:
    address = f"unix:{tmp_path / 'nobody.sock'}"
    async with Client(address, timeout=5) as client:
        with pytest.raises(UnavailableError):
            await client.cancel("x")  # not retried: it fails at once
    async with Client(address, timeout=0.5) as client:
        # A read is retried for about 8 s, here past its deadline.
        with pytest.raises(DeadlineExceededError):
            await client.get_execution("x")
    with pytest.raises(UnavailableError, match="cannot reach the orchestrator"):
        await Client.connect(address, timeout=0.1)
    with SyncClient(address, timeout=5) as sync_client:
        with pytest.raises(UnavailableError):
            await asyncio.to_thread(sync_client.cancel, "x")


async def test_connect(fake: tuple[FakeWorkflowService, str]) -> None:
    _, address = fake
    client = await Client.connect(address, timeout=5)
    try:
        assert (await client.get_execution("ex-done")).id == "ex-done"
    finally:
        await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_execution("ex-done")
    sync_client = await asyncio.to_thread(SyncClient.connect, address, timeout=5)
    sync_client.close()


# The fake has no WaitExecution (UNIMPLEMENTED, as an older orchestrator): wait polls.


async def test_wait_polls_an_orchestrator_without_wait_execution(
    fake: tuple[FakeWorkflowService, str],
) -> None:
    service, address = fake
    async with Client(address) as client:
        got = await client.wait("ex-slow", timeout=10, poll_interval=0.001)
    assert got.status is ExecutionStatus.COMPLETED
    assert got.result == {"total": 3}
    assert len(service.requests) == 4


async def test_sync_wait_polls_an_orchestrator_without_wait_execution(
    fake: tuple[FakeWorkflowService, str],
) -> None:
    service, address = fake
    with SyncClient(address) as client:
        got = await asyncio.to_thread(client.wait, "ex-slow", timeout=10, poll_interval=0.001)
    assert got.status is ExecutionStatus.COMPLETED
    assert len(service.requests) == 4


async def test_wait_times_out(fake: tuple[FakeWorkflowService, str]) -> None:
    _, address = fake
    async with Client(address) as client:
        with pytest.raises(DeadlineExceededError, match="execution ex-stuck did not finish"):
            await client.wait("ex-stuck", timeout=0.05, poll_interval=0.01)
    with SyncClient(address) as sync_client:
        with pytest.raises(DeadlineExceededError, match=r"within 0\.05s"):
            await asyncio.to_thread(sync_client.wait, "ex-stuck", timeout=0.05)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_wait_deadline_grows_the_interval_and_expires() -> None:
    clock = FakeMonotonic()
    waiting = WaitDeadline("e1", 10.0, 0.1, now=clock)
    delays = [waiting.next_delay() for _ in range(8)]
    assert delays[:3] == pytest.approx([0.1, 0.15, 0.225])
    assert max(delays) == MAX_POLL_INTERVAL
    assert waiting.rpc_timeout(30.0) == 10.0
    clock.now += 9.5
    assert waiting.next_delay() == pytest.approx(0.5)
    assert waiting.rpc_timeout(30.0) == pytest.approx(0.5)
    assert not waiting.is_over()
    clock.now += 0.5
    assert waiting.is_over()
    with pytest.raises(DeadlineExceededError, match=r"execution e1 did not finish within 10\.0s"):
        waiting.next_delay()


def test_wait_deadline_parks_each_wait_execution_for_the_time_left() -> None:
    clock = FakeMonotonic()
    waiting = WaitDeadline("e1", 100.0, 0.1, now=clock)
    assert waiting.server_wait() == LONG_POLL_SECS
    clock.now += 90
    assert waiting.server_wait() == pytest.approx(10.0)
    clock.now += 20
    assert waiting.server_wait() == 0.0
    assert WaitDeadline("e2", None, 0.1, now=clock).server_wait() == LONG_POLL_SECS


def test_wait_deadline_without_timeout() -> None:
    clock = FakeMonotonic()
    waiting = WaitDeadline("e1", None, 0.05, now=clock)
    clock.now += 1e9
    assert not waiting.is_over()
    assert waiting.rpc_timeout(30.0) == 30.0
    assert waiting.next_delay() == 0.05


@pytest.mark.parametrize(
    ("timeout", "interval", "message"),
    [(-1.0, 0.05, "timeout must not be negative"), (1.0, 0.0, "poll_interval must be positive")],
)
def test_wait_deadline_validation(timeout: float, interval: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WaitDeadline("e1", timeout, interval)


def test_requests_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="scheduled_at must be a timezone-aware datetime"):
        start_request(
            "wf",
            None,
            queue=None,
            priority=0,
            scheduled_at=datetime(2030, 1, 1),
            idempotency_key=None,
        )


def list_kwargs(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workflow": None,
        "statuses": None,
        "queue": None,
        "parent_execution_id": None,
        "top_level_only": False,
        "created_after": None,
        "created_before": None,
        "page_size": 50,
        "page_token": None,
    }
    return {**base, **overrides}


def test_list_request_statuses() -> None:
    assert list(list_request(**list_kwargs(statuses="running")).statuses) == [
        S.EXECUTION_STATUS_RUNNING
    ]
    assert list_request(**list_kwargs()) == pb.ListExecutionsRequest(page_size=50)
    with pytest.raises(ValueError, match="unknown execution status 'done'"):
        list_request(**list_kwargs(statuses=["done"]))


def test_client_construction_needs_no_event_loop() -> None:
    client = Client("127.0.0.1:1", timeout=1)
    assert client.address == "127.0.0.1:1"
    with pytest.raises(ValueError, match="timeout must be positive"):
        Client(timeout=0)
