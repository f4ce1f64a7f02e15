"""Calls through an outage: the clients' retry policy, and ``wait`` asking again.

A tiny WorkflowService answers UNAVAILABLE as an orchestrator whose database is down
would, then answers normally. Its UNAVAILABLE answers carry ``grpc-retry-pushback-ms: 1``,
which tells gRPC to retry after 1 ms instead of its backoff, so the tests take no time;
each attempt records ``grpc-previous-rpc-attempts``, which gRPC sets on the retries it
sends itself (a new call from the SDK starts again at none).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from durable import Client, ExecutionStatus, SyncClient, UnavailableError
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from tests.helpers.fake_server import fake_server

Context = grpc.aio.ServicerContext[Any, Any]
PUSHBACK = (("grpc-retry-pushback-ms", "1"),)


class OutageService(pb_grpc.WorkflowServiceServicer):
    """Answers each method UNAVAILABLE its first ``outage[method]`` times, then normally."""

    def __init__(self) -> None:
        self.outage: dict[str, int] = {}
        self.attempts: dict[str, list[int]] = {}  # method -> previous attempts of each

    async def _answer(self, method: str, context: Context) -> None:
        previous = dict(context.invocation_metadata() or ()).get("grpc-previous-rpc-attempts")
        self.attempts.setdefault(method, []).append(int(previous or 0))
        if len(self.attempts[method]) <= self.outage.get(method, 0):
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "the database is unavailable; try again later",
                trailing_metadata=PUSHBACK,
            )

    def execution(self, status: int) -> pb.Execution:
        return pb.Execution(id="ex-1", workflow_name="wf", status=status)  # type: ignore[arg-type]

    async def GetExecution(
        self, request: pb.GetExecutionRequest, context: Context
    ) -> pb.GetExecutionResponse:
        await self._answer("GetExecution", context)
        return pb.GetExecutionResponse(
            execution=self.execution(common_pb2.EXECUTION_STATUS_RUNNING)
        )

    async def WaitExecution(
        self, request: pb.WaitExecutionRequest, context: Context
    ) -> pb.WaitExecutionResponse:
        await self._answer("WaitExecution", context)
        status = common_pb2.EXECUTION_STATUS_COMPLETED
        return pb.WaitExecutionResponse(execution=self.execution(status))

    async def StartWorkflow(
        self, request: pb.StartWorkflowRequest, context: Context
    ) -> pb.StartWorkflowResponse:
        await self._answer("StartWorkflow", context)
        return pb.StartWorkflowResponse(execution_id="ex-1", created=True)


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[OutageService, str]]:
    service = OutageService()
    async with fake_server((pb_grpc.add_WorkflowServiceServicer_to_server, service)) as address:
        yield service, address


@pytest.fixture
async def outage() -> AsyncIterator[tuple[OutageService, str]]:
    async with serving() as served:
        yield served


async def test_a_read_is_retried_through_unavailable_answers(
    outage: tuple[OutageService, str],
) -> None:
    service, address = outage
    service.outage["GetExecution"] = 3
    async with Client(address) as client:
        execution = await client.get_execution("ex-1")
    assert execution.status is ExecutionStatus.RUNNING
    # One call: the first attempt and three retries by the channel, the last one answered.
    assert service.attempts["GetExecution"] == [0, 1, 2, 3]

    service.attempts.clear()
    with SyncClient(address) as sync_client:
        assert (await asyncio.to_thread(sync_client.get_execution, "ex-1")).id == "ex-1"
    assert service.attempts["GetExecution"] == [0, 1, 2, 3]


async def test_a_read_gives_up_after_five_attempts(outage: tuple[OutageService, str]) -> None:
    service, address = outage
    service.outage["GetExecution"] = 100
    async with Client(address) as client:
        with pytest.raises(UnavailableError, match="database is unavailable"):
            await client.get_execution("ex-1")
    assert service.attempts["GetExecution"] == [0, 1, 2, 3, 4]


async def test_a_start_is_never_sent_twice_by_the_channel(
    outage: tuple[OutageService, str],
) -> None:
    service, address = outage
    service.outage["StartWorkflow"] = 1
    async with Client(address) as client:
        with pytest.raises(UnavailableError):
            await client.start("wf")
    with SyncClient(address) as sync_client:
        assert await asyncio.to_thread(sync_client.start, "wf") == "ex-1"
    assert service.attempts["StartWorkflow"] == [0, 0]


async def test_wait_keeps_waiting_through_an_outage_longer_than_the_retry_policy(
    outage: tuple[OutageService, str],
) -> None:
    service, address = outage
    # 12 UNAVAILABLE answers: more than the channel's 5 attempts of one call, twice.
    service.outage["WaitExecution"] = 12
    async with Client(address) as client:
        execution = await client.wait("ex-1", timeout=30, poll_interval=0.001)
    assert execution.status is ExecutionStatus.COMPLETED
    assert service.attempts["WaitExecution"] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]

    service.attempts.clear()
    with SyncClient(address) as sync_client:
        got = await asyncio.to_thread(sync_client.wait, "ex-1", timeout=30, poll_interval=0.001)
    assert got.status is ExecutionStatus.COMPLETED
    assert service.attempts["WaitExecution"] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2]


async def test_wait_stops_asking_at_its_own_deadline(outage: tuple[OutageService, str]) -> None:
    service, address = outage
    service.outage["WaitExecution"] = 10**9
    async with Client(address) as client:
        with pytest.raises(UnavailableError, match="database is unavailable"):
            await client.wait("ex-1", timeout=0.3, poll_interval=0.01)
    with SyncClient(address) as sync_client:
        with pytest.raises(UnavailableError, match="database is unavailable"):
            await asyncio.to_thread(sync_client.wait, "ex-1", timeout=0.3, poll_interval=0.01)
    # It asked more than once: new calls (no previous attempts) after the first.
    assert service.attempts["WaitExecution"].count(0) > 2
