"""An execution's life over real gRPC: workflow timeout, cancellation, reading and listing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from durable import Workflow, seconds
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

S = common_pb2  # status enums

bounded = Workflow("bounded", timeout=seconds(60))


@bounded.step
def linger(data: object) -> object:
    return data


pair = Workflow("pair")


@pair.step
def first(data: object) -> object:
    return data


@pair.step
def second(data: object) -> object:
    return data


alpha = Workflow("alpha")


@alpha.step(name="a")
def alpha_step(data: object) -> object:
    return data


beta = Workflow("beta")


@beta.step(name="b")
def beta_step(data: object) -> object:
    return data


@pytest.fixture
async def orch(database_url: str, manual_clock: ManualClock) -> AsyncIterator[Orchestrator]:
    # Leases outlive the 60 s workflow timeout, so no reclaim interferes with it.
    async with running_orchestrator(database_url, clock=manual_clock, lease_secs=300) as o:
        yield o


@pytest.fixture
async def channel(orch: Orchestrator) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(orch.address) as ch:
        yield ch


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(bounded, pair, alpha, beta)
    return client


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def fetchval(database_url: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def count_rows(database_url: str, table: str, execution_id: str) -> object:
    return await fetchval(
        database_url, f"SELECT count(*) FROM durable.{table} WHERE execution_id = $1", execution_id
    )


async def fire_timers(orch: Orchestrator) -> None:
    """Run the timer loop until nothing due is left (the background loop may race us)."""
    now = orch.clock.now()

    async def nothing_due() -> bool:
        await orch.timer_loop.tick()
        due = await orch.engine.next_timer_due()
        return due is None or due > now

    await wait_until(nothing_due)


async def heartbeat(raw: RawClient, task: wpb.Task) -> wpb.HeartbeatResponse:
    response: wpb.HeartbeatResponse = await raw.workers.Heartbeat(
        wpb.HeartbeatRequest(
            worker_id=raw.worker_id,
            leases=[wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)],
        )
    )
    return response


def at(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


# -- workflow timeout ------------------------------------------------------------------


async def test_a_workflow_past_its_timeout_is_timed_out(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    started = manual_clock.now()
    execution_id = await raw.start("bounded")
    assert at((await raw.get(execution_id)).deadline_at) == started + timedelta(seconds=60)
    [task] = await raw.poll()

    manual_clock.advance(timedelta(seconds=59))
    await orch.timer_loop.tick()
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_RUNNING

    manual_clock.advance(timedelta(seconds=2))
    await fire_timers(orch)
    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_TIMED_OUT
    assert execution.error.type == "WorkflowTimeout"
    assert "the execution did not finish by 2030-01-01T00:01:00" in execution.error.message
    assert at(execution.finished_at) == started + timedelta(seconds=61)
    assert execution.current_step == ""
    assert await count_rows(database_url, "tasks", execution_id) == 0
    assert await count_rows(database_url, "timers", execution_id) == 0

    err = await rpc_error(raw.complete(task, '"too late"'))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "stale or wrong" in (err.details() or "")
    assert list((await heartbeat(raw, task)).lost_task_ids) == [task.task_id]
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_TIMED_OUT
    assert await count_rows(database_url, "step_attempts", execution_id) == 0


# -- cancellation ----------------------------------------------------------------------


async def test_cancelling_a_running_execution_stops_it(raw: RawClient, database_url: str) -> None:
    execution_id = await raw.start("pair", '"in"')
    [one] = await raw.poll()
    await raw.complete(one, '"one"')
    [two] = await raw.poll()
    assert two.step_name == "second"

    reply = await raw.flows.CancelExecution(
        pb.CancelExecutionRequest(execution_id=execution_id, reason="customer changed their mind")
    )
    assert reply.execution.status == S.EXECUTION_STATUS_CANCELLED
    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_CANCELLED
    assert (execution.error.type, execution.error.message) == (
        "Cancelled",
        "customer changed their mind",
    )
    assert execution.HasField("finished_at")
    assert await count_rows(database_url, "tasks", execution_id) == 0

    err = await rpc_error(raw.complete(two, '"two"'))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert list((await heartbeat(raw, two)).lost_task_ids) == [two.task_id]
    assert await raw.poll() == []
    execution = await raw.get(execution_id)
    assert [(s.step_name, s.status) for s in execution.steps] == [
        ("first", S.STEP_ATTEMPT_STATUS_COMPLETED)
    ]
    assert execution.result_json == ""

    again = await rpc_error(
        raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=execution_id))
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is already cancelled" in (again.details() or "")


async def test_cancelling_a_pending_execution_with_no_reason(
    raw: RawClient, database_url: str
) -> None:
    execution_id = await raw.start("bounded")
    reply = await raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=execution_id))
    assert reply.execution.status == S.EXECUTION_STATUS_CANCELLED
    assert reply.execution.error.message == "cancelled by request"
    assert not reply.execution.HasField("started_at")
    assert await raw.poll() == []
    assert await count_rows(database_url, "timers", execution_id) == 0


# -- reading one -----------------------------------------------------------------------


async def test_get_execution_shows_the_running_attempt_and_current_step(
    raw: RawClient, manual_clock: ManualClock
) -> None:
    execution_id = await raw.start("pair", '{"x": 1}')
    pending = await raw.get(execution_id)
    assert (pending.status, pending.current_step, list(pending.steps)) == (
        S.EXECUTION_STATUS_PENDING,
        "first",
        [],
    )

    [one] = await raw.poll()
    manual_clock.advance(timedelta(seconds=1))
    await raw.complete(one, '{"x": 2}')
    manual_clock.advance(timedelta(seconds=1))
    [two] = await raw.poll()
    leased_at = manual_clock.now()

    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_RUNNING
    assert execution.current_step == "second"
    done, running = execution.steps
    assert (done.step_name, done.sequence, done.attempt, done.status, done.result_json) == (
        "first",
        1,
        1,
        S.STEP_ATTEMPT_STATUS_COMPLETED,
        '{"x": 2}',
    )
    assert (running.step_name, running.sequence, running.attempt, running.status) == (
        "second",
        2,
        1,
        S.STEP_ATTEMPT_STATUS_RUNNING,
    )
    assert running.worker_id == "test-worker"
    assert at(running.started_at) == leased_at
    assert not running.HasField("finished_at")
    assert running.result_json == ""

    assert list((await raw.get(execution_id, steps=False)).steps) == []

    await raw.complete(two, '{"x": 3}')
    finished = await raw.get(execution_id)
    assert (finished.status, finished.current_step, finished.result_json) == (
        S.EXECUTION_STATUS_COMPLETED,
        "",
        '{"x": 3}',
    )


# -- listing ---------------------------------------------------------------------------


async def list_ids(raw: RawClient, **filters: object) -> tuple[list[str], int]:
    reply = await raw.flows.ListExecutions(pb.ListExecutionsRequest(**filters))
    return [e.id for e in reply.executions], reply.total_count


async def test_list_executions_filters(
    raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    minute = timedelta(minutes=1)

    e1 = await raw.start("alpha")  # completed
    [task] = await raw.poll()
    await raw.complete(task, "1")
    manual_clock.advance(minute)
    e2 = await raw.start("alpha", queue="q2")  # cancelled
    await raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=e2))
    manual_clock.advance(minute)
    e3 = await raw.start("beta")  # running
    [task] = await raw.poll()
    manual_clock.advance(minute)
    e4 = await raw.start("beta", queue="q2")  # pending, a child of e3
    await fetchval(
        database_url, "UPDATE durable.executions SET parent_id = $1 WHERE id = $2", e3, e4
    )
    manual_clock.advance(minute)
    e5 = await raw.start("alpha")  # failed
    [task] = await raw.poll()
    await raw.fail(task, "ValueError", "bad")

    created = {e: at((await raw.get(e)).created_at) for e in (e1, e2, e3, e4, e5)}
    assert created[e2] - created[e1] == minute

    assert await list_ids(raw) == ([e5, e4, e3, e2, e1], 5)
    assert await list_ids(raw, workflow_name="alpha") == ([e5, e2, e1], 3)
    assert await list_ids(raw, workflow_name="gamma") == ([], 0)
    assert await list_ids(
        raw, statuses=[S.EXECUTION_STATUS_COMPLETED, S.EXECUTION_STATUS_RUNNING]
    ) == ([e3, e1], 2)
    assert await list_ids(
        raw,
        statuses=[
            S.EXECUTION_STATUS_PENDING,
            S.EXECUTION_STATUS_CANCELLED,
            S.EXECUTION_STATUS_FAILED,
        ],
    ) == ([e5, e4, e2], 3)
    assert await list_ids(raw, queue="q2") == ([e4, e2], 2)
    assert await list_ids(raw, workflow_name="alpha", queue="default") == ([e5, e1], 2)
    # created_after is inclusive, created_before exclusive.
    assert await list_ids(
        raw, created_after=timestamp(created[e2]), created_before=timestamp(created[e4])
    ) == ([e3, e2], 2)
    assert await list_ids(raw, created_after=timestamp(created[e5])) == ([e5], 1)
    assert await list_ids(raw, created_before=timestamp(created[e1])) == ([], 0)
    assert await list_ids(raw, top_level_only=True) == ([e5, e3, e2, e1], 4)
    assert await list_ids(raw, parent_execution_id=e3) == ([e4], 1)
    assert await list_ids(raw, parent_execution_id=str(uuid.uuid4())) == ([], 0)


@pytest.mark.parametrize("spaced", [True, False], ids=["distinct-times", "same-instant"])
async def test_list_executions_pages_visit_each_once_newest_first(
    raw: RawClient, manual_clock: ManualClock, spaced: bool
) -> None:
    started = []
    for _ in range(5):
        started.append(await raw.start("alpha"))
        if spaced:
            manual_clock.advance(timedelta(seconds=1))
    # Same created_at: newest first falls back to the id order.
    expected = started[::-1] if spaced else sorted(started, key=uuid.UUID, reverse=True)

    pages: list[list[str]] = []
    token = ""
    while True:
        reply = await raw.flows.ListExecutions(
            pb.ListExecutionsRequest(page_size=2, page_token=token)
        )
        assert reply.total_count == 5
        pages.append([e.id for e in reply.executions])
        token = reply.next_page_token
        if not token:
            break
        assert len(pages) < 5, "pagination does not end"

    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e for p in pages for e in p] == expected
