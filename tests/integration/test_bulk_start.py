"""StartWorkflows (``Client.start_many``): many executions per call, checked before any starts."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from durable import Client
from durable._definition import to_definition
from durable.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import worker_service_pb2_grpc as wgrpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc
from durable_server.app import Orchestrator
from examples.order import process_order


async def _register(channel: grpc.aio.Channel) -> None:
    await wgrpc.WorkerServiceStub(channel).RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(worker_id="w1", workflows=[to_definition(process_order)])
    )


async def _count(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM durable.executions"))
    finally:
        await conn.close()


async def test_start_many_starts_each_input_in_order(
    orch: Orchestrator, channel: grpc.aio.Channel
) -> None:
    await _register(channel)
    async with Client(orch.address) as client:
        inputs = [{"id": i, "items": [i]} for i in range(2500)]  # three calls
        ids = await client.start_many("process_order", inputs)
        assert len(ids) == len(set(ids)) == 2500
        for i in (0, 999, 1000, 2499):
            execution = await client.get_execution(ids[i])
            assert execution.input == inputs[i]
            assert execution.workflow_name == "process_order"


async def test_start_many_with_idempotency_keys_returns_the_same_executions(
    orch: Orchestrator, channel: grpc.aio.Channel, database_url: str
) -> None:
    await _register(channel)
    async with Client(orch.address) as client:
        keys = [f"order-{i}" for i in range(5)]
        inputs = [{"id": i, "items": []} for i in range(5)]
        first = await client.start_many("process_order", inputs, idempotency_keys=keys)
        again = await client.start_many("process_order", inputs, idempotency_keys=keys)
        assert again == first
        assert await _count(database_url) == 5
        with pytest.raises(ValueError, match="2 keys for 5 inputs"):
            await client.start_many("process_order", inputs, idempotency_keys=keys[:2])


async def test_one_bad_request_fails_the_call_before_anything_starts(
    orch: Orchestrator, channel: grpc.aio.Channel, database_url: str
) -> None:
    await _register(channel)
    stub = pbgrpc.WorkflowServiceStub(channel)
    good = pb.StartWorkflowRequest(workflow_name="process_order", input_json='{"id": 1}')
    cases = [
        (pb.StartWorkflowRequest(workflow_name="process_order", input_json="{oops"),
         grpc.StatusCode.INVALID_ARGUMENT, "requests[1]"),
        (pb.StartWorkflowRequest(workflow_name="no_such_flow"),
         grpc.StatusCode.NOT_FOUND, "requests[1]: workflow 'no_such_flow' is not registered"),
        (pb.StartWorkflowRequest(workflow_name="process_order", queue="bad queue!"),
         grpc.StatusCode.INVALID_ARGUMENT, "requests[1]"),
    ]  # fmt: skip
    for bad, code, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.StartWorkflows(pb.StartWorkflowsRequest(requests=[good, bad, good]))
        assert err.value.code() == code
        assert message in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.StartWorkflows(pb.StartWorkflowsRequest(requests=[good] * 1001))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 1000" in (err.value.details() or "")
    assert await _count(database_url) == 0
    empty = await stub.StartWorkflows(pb.StartWorkflowsRequest())
    assert list(empty.results) == []


async def test_sdk_errors_and_draining_queue(orch: Orchestrator, channel: grpc.aio.Channel) -> None:
    await _register(channel)
    async with Client(orch.address) as client:
        with pytest.raises(NotFoundError):
            await client.start_many("missing", [1, 2])
        with pytest.raises(InvalidArgumentError):
            await client.start_many("process_order", [{"id": 1}], queue="no spaces allowed")
        await client.drain_queue("default", reason="maintenance")
        with pytest.raises(FailedPreconditionError, match="draining"):
            await client.start_many("process_order", [{"id": 1}, {"id": 2}])


async def test_concurrent_starts_share_writes_but_not_failures(
    orch: Orchestrator, channel: grpc.aio.Channel, database_url: str
) -> None:
    """Starts sent together: one whose input is refused (jsonb cannot hold \\u0000) fails
    alone. The SDK would refuse to encode it, so it is sent as a raw request."""
    await _register(channel)
    flows = pbgrpc.WorkflowServiceStub(channel)
    async with Client(orch.address) as client:
        good = [client.start("process_order", {"id": i, "items": []}) for i in range(20)]
        bad = flows.StartWorkflow(
            pb.StartWorkflowRequest(workflow_name="process_order", input_json='{"id": "\\u0000"}')
        )
        results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(r, str) for r in results[:-1])
    assert isinstance(results[-1], grpc.aio.AioRpcError)
    assert results[-1].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await _count(database_url) == 20
