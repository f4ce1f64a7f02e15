"""WaitExecution: a long poll that answers when the execution finishes, on any orchestrator."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import grpc
import pytest
from grpc import StatusCode as Code

from durable import Client, ExecutionStatus, Workflow
from durable.errors import DeadlineExceededError
from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from durable_server.engine.states import ExecutionStatus as Status
from durable_server.engine.states import allowed_from
from durable_server.store import executions as ex_store
from durable_server.watch import RECHECK_SECS
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient, snapshot
from tests.helpers.wait import wait_until

single = Workflow("wait_single")


@single.step
def only(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(single)
    return client


def _wait(raw: RawClient, execution_id: str, seconds: float | None) -> pb.WaitExecutionRequest:
    request = pb.WaitExecutionRequest(execution_id=execution_id)
    if seconds is not None:
        request.timeout.FromTimedelta(timedelta(seconds=seconds))
    return request


async def _parked(orch: Orchestrator, count: int = 1) -> None:
    """Return once ``count`` waits are parked on ``orch``."""

    async def parked() -> bool:
        return len(orch.watch) >= count

    await wait_until(parked, interval=0.005)


async def test_a_parked_wait_answers_when_the_execution_finishes(
    raw: RawClient, orch: Orchestrator
) -> None:
    execution_id = await raw.start("wait_single", '"in"')
    # Longer than the re-check: only the finish itself can answer it in time.
    call = asyncio.ensure_future(
        raw.flows.WaitExecution(_wait(raw, execution_id, RECHECK_SECS * 3))
    )
    await _parked(orch)
    assert not call.done()
    [task] = await raw.poll(wait=2)
    await raw.complete(task, '"out"')
    reply = await asyncio.wait_for(call, RECHECK_SECS)
    assert reply.execution.status == S.EXECUTION_STATUS_COMPLETED
    assert reply.execution.result_json == '"out"'
    assert list(reply.execution.steps) == []
    assert len(orch.watch) == 0  # nothing left parked


async def test_a_finished_execution_is_answered_at_once_and_a_running_one_at_the_timeout(
    raw: RawClient, orch: Orchestrator
) -> None:
    execution_id = await raw.start("wait_single", "1")
    now = await raw.flows.WaitExecution(_wait(raw, execution_id, 0))
    assert now.execution.status == S.EXECUTION_STATUS_PENDING
    later = await raw.flows.WaitExecution(_wait(raw, execution_id, 0.05))
    assert later.execution.status == S.EXECUTION_STATUS_PENDING
    [task] = await raw.poll(wait=2)
    await raw.complete(task, "2")
    done = await raw.flows.WaitExecution(_wait(raw, execution_id, None))
    assert done.execution.status == S.EXECUTION_STATUS_COMPLETED
    assert len(orch.watch) == 0


async def test_many_waits_on_many_executions_each_get_their_own(
    raw: RawClient, orch: Orchestrator
) -> None:
    ids = [await raw.start("wait_single", str(i)) for i in range(5)]
    calls = [
        asyncio.ensure_future(raw.flows.WaitExecution(_wait(raw, eid, RECHECK_SECS * 3)))
        for eid in ids
        for _ in range(2)
    ]
    await _parked(orch, len(calls))
    tasks = await raw.poll(max_tasks=10, wait=2)
    by_execution = {t.execution_id: t for t in tasks}
    await raw.complete(by_execution[ids[2]], '"two"')
    first = await asyncio.wait_for(asyncio.gather(calls[4], calls[5]), RECHECK_SECS)
    assert [r.execution.id for r in first] == [ids[2], ids[2]]
    assert all(not c.done() for i, c in enumerate(calls) if i not in (4, 5))
    for eid in ids:
        if eid != ids[2]:
            await raw.complete(by_execution[eid], '"x"')
    replies = await asyncio.wait_for(asyncio.gather(*calls), RECHECK_SECS)
    assert [r.execution.id for r in replies] == [eid for eid in ids for _ in range(2)]
    assert {r.execution.status for r in replies} == {S.EXECUTION_STATUS_COMPLETED}


async def test_a_finish_on_another_orchestrator_wakes_the_wait(
    raw: RawClient, orch: Orchestrator, database_url: str, manual_clock: ManualClock
) -> None:
    execution_id = await raw.start("wait_single", '"in"')
    async with (
        running_orchestrator(database_url, clock=manual_clock) as other,
        grpc.aio.insecure_channel(other.address) as other_channel,
    ):
        elsewhere = RawClient(other_channel)
        call = asyncio.ensure_future(
            elsewhere.flows.WaitExecution(_wait(elsewhere, execution_id, RECHECK_SECS * 3))
        )
        await _parked(other)
        [task] = await raw.poll(wait=2)
        await raw.complete(task, '"out"')  # finished by the first orchestrator
        reply = await asyncio.wait_for(call, RECHECK_SECS)  # NOTIFY, not the re-check
        assert reply.execution.status == S.EXECUTION_STATUS_COMPLETED


async def test_a_cancel_and_a_failure_also_answer(raw: RawClient, orch: Orchestrator) -> None:
    cancelled = await raw.start("wait_single", "1")
    call = asyncio.ensure_future(raw.flows.WaitExecution(_wait(raw, cancelled, 30)))
    await _parked(orch)
    await raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=cancelled))
    reply = await asyncio.wait_for(call, RECHECK_SECS)
    assert reply.execution.status == S.EXECUTION_STATUS_CANCELLED


async def test_shutting_down_answers_parked_waits_with_the_execution_as_it_is(
    database_url: str, manual_clock: ManualClock
) -> None:
    async with running_orchestrator(database_url, clock=manual_clock) as orch:
        async with grpc.aio.insecure_channel(orch.address) as channel:
            raw = RawClient(channel)
            await raw.register(single)
            execution_id = await raw.start("wait_single", "1")
            call = asyncio.ensure_future(raw.flows.WaitExecution(_wait(raw, execution_id, 60)))
            await _parked(orch)
            stopping = asyncio.ensure_future(orch.stop(grace=5))
            reply = await asyncio.wait_for(call, RECHECK_SECS)
            assert reply.execution.status == S.EXECUTION_STATUS_PENDING
            await stopping


@pytest.mark.parametrize(
    ("execution_id", "seconds", "code", "says"),
    [
        ("0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", 1, Code.NOT_FOUND, "does not exist"),
        ("not-an-id", 1, Code.INVALID_ARGUMENT, "execution_id"),
        (None, -1, Code.INVALID_ARGUMENT, "timeout must be between 0 and 300 s"),
        (None, 301, Code.INVALID_ARGUMENT, "timeout must be between 0 and 300 s"),
    ],
)
async def test_bad_waits_are_refused_and_change_nothing(
    raw: RawClient,
    database_url: str,
    execution_id: str | None,
    seconds: float,
    code: grpc.StatusCode,
    says: str,
) -> None:
    real = await raw.start("wait_single", "1")
    before = await snapshot(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw.flows.WaitExecution(_wait(raw, execution_id or real, seconds))
    assert err.value.code() == code
    assert says in (err.value.details() or "")
    assert await snapshot(database_url) == before


async def test_the_sdk_wait_returns_when_the_execution_finishes(
    raw: RawClient, orch: Orchestrator
) -> None:
    execution_id = await raw.start("wait_single", '"in"')
    async with Client(orch.address) as client:
        waiting = asyncio.ensure_future(client.wait(execution_id, timeout=RECHECK_SECS * 3))
        await _parked(orch)
        [task] = await raw.poll(wait=2)
        await raw.complete(task, '"out"')
        done = await asyncio.wait_for(waiting, RECHECK_SECS)
        assert (done.status, done.result) == (ExecutionStatus.COMPLETED, "out")
        # Past its timeout, wait raises; the execution is untouched.
        other = await raw.start("wait_single", "2")
        with pytest.raises(DeadlineExceededError, match=r"did not finish within 0\.2s"):
            await client.wait(other, timeout=0.2)
        assert (await client.get_execution(other)).status == ExecutionStatus.PENDING


async def test_a_statement_finishing_hundreds_notifies_every_id_in_payloads_under_the_limit(
    raw: RawClient, orch: Orchestrator, database_url: str
) -> None:
    async with Client(orch.address) as client:
        ids = await client.start_many("wait_single", list(range(450)))
    heard: list[str] = []
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("finish_test", lambda *args: heard.append(args[-1]))
        async with orch.engine.db.transaction() as conn:
            finished = await ex_store.execution_finish_many(
                conn,
                [ex_store.ExecutionFinish(i, Status.CANCELLED.value) for i in ids],
                allowed_from=allowed_from(Status.CANCELLED),
                now=None,
                notify_channel="finish_test",
            )
        assert sorted(f.id for f in finished) == sorted(ids)

        async def all_heard() -> bool:
            return sum(len(p.split(",")) for p in heard) >= len(ids)

        await wait_until(all_heard)
    finally:
        await listener.close()
    assert sorted(i for p in heard for i in p.split(",")) == sorted(ids)
    assert len(heard) == 3  # 200 ids a payload at most
    assert max(len(p.encode()) for p in heard) < 8000  # PostgreSQL's payload limit
