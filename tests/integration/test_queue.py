"""The task queue over real gRPC: priority, scheduled starts, limits, queues, idempotency,
long-polls and version pinning."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from durable import Workflow
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb
from durable.v1.operations_service_pb2 import PauseQueueRequest
from durable.v1.operations_service_pb2_grpc import OperationsServiceStub
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from durable_server.store import tasks as task_store
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

single = Workflow("single")


@single.step
def only(data: object) -> object:
    return data


# Two versions of one workflow: v2 adds a step.
pinned_v1 = Workflow("pinned")
pinned_v2 = Workflow("pinned")


@pinned_v1.step(name="a")
@pinned_v2.step(name="a")
def step_a(data: object) -> object:
    return data


@pinned_v1.step(name="b")
@pinned_v2.step(name="b")
def step_b(data: object) -> object:
    return data


@pinned_v2.step(name="c")
def step_c(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(single)
    return client


def timestamp(value: object) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)  # type: ignore[arg-type]
    return ts


async def fetchval(database_url: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def parked(orch: Orchestrator, queue: str) -> bool:
    # The dispatcher's waiters by queue: the only sign that a PollTasks call is parked.
    return bool(orch.dispatcher._waiters.get(queue))


async def test_higher_priority_is_leased_first(raw: RawClient) -> None:
    by_priority = {p: await raw.start("single", priority=p) for p in (0, 10, 5)}
    leased = []
    for _ in range(3):
        [task] = await raw.poll(max_tasks=1)
        leased.append(task.execution_id)
    assert leased == [by_priority[10], by_priority[5], by_priority[0]]
    assert await raw.poll() == []


async def test_a_scheduled_start_waits_for_its_time(
    raw: RawClient, manual_clock: ManualClock
) -> None:
    at = manual_clock.now() + timedelta(hours=1)
    execution_id = await raw.start("single", scheduled_at=timestamp(at))

    execution = await raw.get(execution_id)
    assert execution.status == common_pb2.EXECUTION_STATUS_PENDING
    assert execution.scheduled_at.ToDatetime(tzinfo=at.tzinfo) == at
    assert await raw.poll() == []

    manual_clock.advance(timedelta(minutes=59, seconds=59))
    assert await raw.poll() == []
    assert (await raw.get(execution_id)).status == common_pb2.EXECUTION_STATUS_PENDING

    manual_clock.advance(timedelta(seconds=1))
    [task] = await raw.poll()
    assert (task.execution_id, task.step_name, task.attempt) == (execution_id, "only", 1)
    execution = await raw.get(execution_id)
    assert execution.status == common_pb2.EXECUTION_STATUS_RUNNING
    assert execution.started_at.ToDatetime(tzinfo=at.tzinfo) == at


async def test_a_parked_poll_wakes_when_the_clock_reaches_a_scheduled_start(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock
) -> None:
    at = manual_clock.now() + timedelta(hours=1)
    execution_id = await raw.start("single", scheduled_at=timestamp(at))
    poll = asyncio.create_task(raw.poll(wait=5))
    await wait_until(lambda: parked(orch, "default"))
    assert not poll.done()
    manual_clock.advance(timedelta(hours=1))
    [task] = await poll
    assert task.execution_id == execution_id


class TickingClock(ManualClock):
    """A manual clock that, once started, moves on by ``tick`` each time SQL asks for the time."""

    tick: timedelta | None = None

    def db_now(self) -> datetime | None:
        now = super().db_now()
        if self.tick is not None:
            self.advance(self.tick)
        return now


async def test_delayed_work_that_becomes_due_during_a_claim_is_not_slept_past(
    database_url: str,
) -> None:
    # A poll that claims nothing asks when delayed work is next due, and parks until then.
    # Work that became due between the claim and that question (a retry's short backoff
    # ending) was neither claimed nor due "later": the poll slept its whole wait.
    clock = TickingClock()
    async with (
        running_orchestrator(database_url, clock=clock) as orch,
        grpc.aio.insecure_channel(orch.address) as ch,
    ):
        raw = RawClient(ch)
        await raw.register(single)
        due = clock.now() + timedelta(milliseconds=5)
        await raw.start("single", scheduled_at=timestamp(due))
        clock.tick = timedelta(milliseconds=10)  # the claim sees T, the question T + 10 ms
        tasks, next_due = await orch.engine.claim(raw.worker_id, ["default"], 1)
        clock.tick = None
    assert tasks == []
    assert next_due == due  # already past: the parked poll claims again at once


async def test_a_queue_limit_caps_leased_tasks(
    database_url: str, manual_clock: ManualClock
) -> None:
    async with (
        running_orchestrator(database_url, clock=manual_clock, queue_limits={"limited": 2}) as orch,
        grpc.aio.insecure_channel(orch.address) as ch,
    ):
        w1, w2 = RawClient(ch, worker_id="w1"), RawClient(ch, worker_id="w2")
        await w1.register(single)
        await w2.register(single)
        ids = {await w1.start("single", queue="limited") for _ in range(3)}
        unlimited = await w1.start("single", queue="free")

        # Two workers asking at once for 10 each share the 2 slots.
        got = await asyncio.gather(w1.poll(10, queues=["limited"]), w2.poll(10, queues=["limited"]))
        leased = [t for tasks in got for t in tasks]
        assert len(leased) == 2
        assert {t.execution_id for t in leased} < ids
        assert await w1.poll(10, queues=["limited"]) == []
        assert (
            await fetchval(
                database_url, "SELECT count(*) FROM durable.tasks WHERE status = 'leased'"
            )
            == 2
        )

        # Other queues are not limited by it.
        [free] = await w2.poll(10, queues=["free"])
        assert free.execution_id == unlimited

        owner = w1 if leased[0] in got[0] else w2
        await owner.complete(leased[0], "1")
        [third] = await w1.poll(10, queues=["limited"])
        assert third.execution_id == (ids - {t.execution_id for t in leased}).pop()
        assert await w1.poll(10, queues=["limited"]) == []


async def test_queues_are_separate(raw: RawClient) -> None:
    on_a = {await raw.start("single", queue="a") for _ in range(2)}
    on_b = await raw.start("single", queue="b")

    from_a = await raw.poll(10, queues=["a"])
    assert {t.execution_id for t in from_a} == on_a
    assert await raw.poll(10, queues=["a"]) == []
    [from_b] = await raw.poll(10, queues=["b"])
    assert from_b.execution_id == on_b
    assert (await raw.get(on_b)).queue == "b"


async def test_a_poll_of_many_queues_claims_only_from_those_with_work(
    raw: RawClient,
    channel: grpc.aio.Channel,
    manual_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queues = [f"q{i:03d}" for i in range(100)]
    claimed_from: list[str] = []
    claim = task_store.task_claim_many

    async def counting(conn: object, **kwargs: Any) -> object:
        claimed_from.append(kwargs["queue"])
        return await claim(conn, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(task_store, "task_claim_many", counting)
    await OperationsServiceStub(channel).PauseQueue(PauseQueueRequest(queue="q090"))
    later = timestamp(manual_clock.now() + timedelta(hours=1))
    first = await raw.start("single", queue="q063")
    second = await raw.start("single", queue="q017")
    third = await raw.start("single", queue="q063")
    await raw.start("single", queue="q005", scheduled_at=later)  # not available yet
    await raw.start("single", queue="q090")  # paused

    tasks = await raw.poll(10, queues=queues)
    # One claim per queue with work, in the order the poll names them; none for the rest.
    assert claimed_from == ["q017", "q063"]
    assert [t.execution_id for t in tasks] == [second, first, third]
    claimed_from.clear()
    assert await raw.poll(10, queues=queues) == []
    assert claimed_from == []


async def test_a_start_with_a_known_idempotency_key_returns_the_first_execution(
    raw: RawClient, database_url: str
) -> None:
    first = await raw.flows.StartWorkflow(
        pb.StartWorkflowRequest(workflow_name="single", input_json="1", idempotency_key="k-1")
    )
    again = await raw.flows.StartWorkflow(
        pb.StartWorkflowRequest(workflow_name="single", input_json="2", idempotency_key="k-1")
    )
    assert first.created is True
    assert (again.execution_id, again.created) == (first.execution_id, False)
    assert await fetchval(database_url, "SELECT count(*) FROM durable.executions") == 1
    assert await fetchval(database_url, "SELECT count(*) FROM durable.tasks") == 1
    execution = await raw.get(first.execution_id)
    assert (execution.input_json, execution.idempotency_key) == ("1", "k-1")


async def test_a_parked_long_poll_gets_a_task_started_after_it(
    orch: Orchestrator, raw: RawClient
) -> None:
    poll = asyncio.create_task(raw.poll(wait=5))
    await wait_until(lambda: parked(orch, "default"))
    assert not poll.done()
    execution_id = await raw.start("single", '{"n": 1}')
    [task] = await poll
    assert (task.execution_id, task.step_name, task.input_json) == (
        execution_id,
        "only",
        '{"n": 1}',
    )


async def test_an_execution_stays_on_the_version_it_started_with(channel: grpc.aio.Channel) -> None:
    old = RawClient(channel, worker_id="old-worker")
    new = RawClient(channel, worker_id="new-worker")
    [v1] = await old.register(pinned_v1)
    first = await old.start("pinned", '"one"')
    [v2] = await new.register(pinned_v2)
    assert v1 != v2

    assert await new.poll() == []  # the v1 execution's task is not for a v2 worker
    [a] = await old.poll()
    assert (a.execution_id, a.step_name, a.workflow_version) == (first, "a", v1)
    await old.complete(a, '"a1"')
    assert await new.poll() == []
    [b] = await old.poll()
    assert (b.execution_id, b.step_name) == (first, "b")

    second = await new.start("pinned", '"two"')
    assert (await new.get(first)).workflow_version == v1
    assert (await new.get(second)).workflow_version == v2
    assert await old.poll() == []  # the v2 execution's task is not for a v1 worker

    await old.complete(b, '"b1"')
    done = await old.get(first)
    assert done.status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert done.result_json == '"b1"'
    assert [s.step_name for s in done.steps] == ["a", "b"]

    for expected in ("a", "b", "c"):
        [task] = await new.poll()
        assert (task.execution_id, task.step_name, task.workflow_version) == (second, expected, v2)
        await new.complete(task, f'"{expected}2"')
    done = await new.get(second)
    assert done.status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert [s.step_name for s in done.steps] == ["a", "b", "c"]
