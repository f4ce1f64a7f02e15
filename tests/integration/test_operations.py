"""Operators' calls: pause, drain and resume a queue; queue statistics; retry; diagnose."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import timedelta

import asyncpg
import grpc
import pytest
from grpc import StatusCode as Code

from durable import Workflow, hours
from durable._definition import to_definition
from durable.v1 import common_pb2 as S
from durable.v1 import operations_service_pb2 as opb
from durable.v1 import operations_service_pb2_grpc as ogrpc
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

pair = Workflow("pair")


@pair.step
def a(data: object) -> object:
    return data


@pair.step
def b(data: object) -> object:
    return data


bounded = Workflow("bounded_pair", timeout=hours(1))


@bounded.step
def only(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(pair, bounded)
    return client


@pytest.fixture
def ops(channel: grpc.aio.Channel) -> ogrpc.OperationsServiceStub:
    return ogrpc.OperationsServiceStub(channel)


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def test_a_paused_queue_hands_out_nothing_until_resumed(
    raw: RawClient, ops: ogrpc.OperationsServiceStub, manual_clock: ManualClock
) -> None:
    await raw.start("pair", "{}")
    paused = await ops.PauseQueue(opb.PauseQueueRequest(queue="default", reason="deploy"))
    assert (paused.queue.state, paused.queue.reason, paused.queue.ready) == (
        opb.QUEUE_STATE_PAUSED,
        "deploy",
        1,
    )
    assert await raw.poll() == []
    manual_clock.advance(timedelta(seconds=5))
    [queue] = (await ops.ListQueues(opb.ListQueuesRequest())).queues
    assert queue.oldest_ready_age.ToTimedelta() == timedelta(seconds=5)
    await ops.ResumeQueue(opb.ResumeQueueRequest(queue="default"))
    [task] = await raw.poll()
    assert task.step_name == "a"
    [queue] = (await ops.ListQueues(opb.ListQueuesRequest())).queues
    assert (queue.state, queue.ready, queue.leased) == (opb.QUEUE_STATE_ACTIVE, 0, 1)


async def test_a_draining_queue_refuses_new_executions_and_finishes_its_work(
    raw: RawClient, ops: ogrpc.OperationsServiceStub
) -> None:
    execution_id = await raw.start("pair", "{}")
    await ops.DrainQueue(opb.DrainQueueRequest(queue="default", reason="moving"))
    err = await _error(raw.start("pair", "{}"))
    assert err.code() == Code.FAILED_PRECONDITION
    assert "queue 'default' is draining (moving)" in (err.details() or "")
    for _ in range(2):
        [task] = await raw.poll()
        await raw.complete(task, '"ok"')
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_COMPLETED
    await ops.ResumeQueue(opb.ResumeQueueRequest(queue="default"))
    await raw.start("pair", "{}")


async def test_a_failed_execution_runs_again_from_its_failed_step(
    raw: RawClient, ops: ogrpc.OperationsServiceStub
) -> None:
    execution_id = await raw.start("pair", '{"n": 1}')
    [first] = await raw.poll()
    await raw.complete(first, '{"n": 2}')
    [second] = await raw.poll()
    await raw.fail(second, "KeyError", "'sku'", non_retryable=True)
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_FAILED

    reply = await ops.RetryExecution(opb.RetryExecutionRequest(execution_id=execution_id))
    assert reply.step_name == "b"
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_RUNNING
    [again] = await raw.poll()
    assert (again.step_name, json.loads(again.input_json)) == ("b", {"n": 2})
    assert again.sequence > second.sequence
    await raw.complete(again, '"done"')
    done = await raw.get(execution_id)
    assert done.status == S.EXECUTION_STATUS_COMPLETED
    assert [(s.step_name, s.status) for s in done.steps] == [
        ("a", S.STEP_ATTEMPT_STATUS_COMPLETED),
        ("b", S.STEP_ATTEMPT_STATUS_FAILED),
        ("b", S.STEP_ATTEMPT_STATUS_COMPLETED),
    ]
    err = await _error(ops.RetryExecution(opb.RetryExecutionRequest(execution_id=execution_id)))
    assert err.code() == Code.FAILED_PRECONDITION
    err = await _error(
        ops.RetryExecution(
            opb.RetryExecutionRequest(execution_id="0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f")
        )
    )
    assert err.code() == Code.NOT_FOUND


async def test_a_retried_execution_gets_its_workflow_timeout_again_from_the_retry(
    raw: RawClient,
    ops: ogrpc.OperationsServiceStub,
    manual_clock: ManualClock,
    orch: Orchestrator,
) -> None:
    execution_id = await raw.start("bounded_pair", "1")
    manual_clock.advance(timedelta(minutes=50))  # queued for most of its hour
    [task] = await raw.poll()
    await raw.fail(task, "ValueError", "bad", non_retryable=True)
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_FAILED
    await ops.RetryExecution(opb.RetryExecutionRequest(execution_id=execution_id))
    [again] = await raw.poll()

    # Past the first deadline (an hour after the start): the retry's own hour still runs.
    manual_clock.advance(timedelta(minutes=30))
    assert await orch.engine.fire_timers() == 0
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_RUNNING
    manual_clock.advance(timedelta(minutes=30))  # an hour after the retry

    async def timed_out() -> bool:
        return (await raw.get(execution_id)).status == S.EXECUTION_STATUS_TIMED_OUT

    await wait_until(timed_out)
    err = await _error(raw.complete(again, '"late"'))
    assert err.code() == Code.FAILED_PRECONDITION


async def test_diagnose_finds_executions_nothing_can_move(
    raw: RawClient, ops: ogrpc.OperationsServiceStub, database_url: str
) -> None:
    # The only worker polls another queue: the execution's step waits for nobody.
    await raw.workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(
            worker_id=raw.worker_id, workflows=[to_definition(pair)], queues=["elsewhere"]
        )
    )
    orphan = await raw.start("pair", "{}")
    zombie = await raw.start("pair", "{}")
    conn = await asyncpg.connect(database_url)
    try:  # a manual change left an execution with no task at all
        await conn.execute("DELETE FROM durable.tasks WHERE execution_id = $1", zombie)
    finally:
        await conn.close()
    found = await ops.Diagnose(opb.DiagnoseRequest())
    problems = sorted((f.execution_id, f.problem) for f in found.findings)
    assert problems == sorted([(orphan, "no_worker_for_queue"), (zombie, "no_task")])
    detail = {f.problem: f.detail for f in found.findings}
    assert "queue 'default', which no live worker polls" in detail["no_worker_for_queue"]
    await raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=zombie))
    await ops.PauseQueue(opb.PauseQueueRequest(queue="default"))
    found = await ops.Diagnose(opb.DiagnoseRequest())
    assert sorted(f.problem for f in found.findings) == ["no_worker_for_queue", "queue_paused"]
