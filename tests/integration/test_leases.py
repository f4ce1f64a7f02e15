"""Leases, heartbeats, timeouts, losses and retries, driven by the manual clock."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest

from durable import RetryPolicy, Workflow, seconds
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as wpb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

S = common_pb2  # status enums

plain = Workflow("plain")  # one step, no retry policy


@plain.step
def work(data: object) -> object:
    return data


slow = Workflow("slow")  # a 10 s step timeout, one retry after 3 s


@slow.step(
    timeout=seconds(10),
    retry=RetryPolicy(max_attempts=2, backoff="fixed", initial_delay=seconds(3), jitter=0),
)
def crunch(data: object) -> object:
    return data


flaky = Workflow("flaky")


@flaky.step(
    retry=RetryPolicy(
        max_attempts=3,
        backoff="exponential",
        initial_delay=seconds(2),
        jitter=0,
        non_retryable_errors=["KeyError"],
    )
)
def charge(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(plain, slow, flaky)
    return client


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def task_row(database_url: str, task_id: int) -> asyncpg.Record | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchrow(
            "SELECT status, attempt, failures, losses, available_at, lease_expires_at,"
            " lease_token::text AS lease_token FROM durable.tasks WHERE id = $1",
            task_id,
        )
    finally:
        await conn.close()


async def reclaim(orch: Orchestrator) -> None:
    """Run the reclaimer until no expired lease is left.

    The background reclaimer wakes on the same clock move and may hold the rows (SKIP LOCKED)
    while our tick runs, so tick until the expired leases are gone.
    """
    now = orch.clock.now()

    async def no_expired_lease() -> bool:
        await orch.reclaimer.tick()
        expiry = await orch.engine.next_lease_expiry()
        return expiry is None or expiry > now

    await wait_until(no_expired_lease)


async def heartbeat(raw: RawClient, *tasks: wpb.Task) -> wpb.HeartbeatResponse:
    response: wpb.HeartbeatResponse = await raw.workers.Heartbeat(
        wpb.HeartbeatRequest(
            worker_id=raw.worker_id,
            leases=[wpb.TaskLease(task_id=t.task_id, lease_token=t.lease_token) for t in tasks],
        )
    )
    return response


def at(ts: object) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined,no-any-return]


def attempts(execution: object) -> list[tuple[str, int, int]]:
    return [(s.step_name, s.attempt, s.status) for s in execution.steps]  # type: ignore[attr-defined]


async def test_an_expired_lease_is_lost_and_runs_again_without_using_a_retry(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    execution_id = await raw.start("plain", '"in"')
    [first] = await raw.poll()
    assert first.attempt == 1
    assert at(first.lease_expires_at) == manual_clock.now() + timedelta(seconds=30)

    manual_clock.advance(timedelta(seconds=29))
    await orch.reclaimer.tick()
    assert (await task_row(database_url, first.task_id))["status"] == "leased"  # type: ignore[index]

    manual_clock.advance(timedelta(seconds=1))  # exactly at expiry
    await reclaim(orch)
    row = await task_row(database_url, first.task_id)
    assert row is not None
    assert (row["status"], row["attempt"], row["failures"], row["losses"]) == ("ready", 2, 0, 1)
    assert row["available_at"] == manual_clock.now()
    execution = await raw.get(execution_id)
    [lost] = execution.steps
    assert (lost.attempt, lost.status, lost.worker_id) == (
        1,
        S.STEP_ATTEMPT_STATUS_LOST,
        "test-worker",
    )
    assert lost.error.type == "LeaseExpired"
    assert "stopped heartbeating while running step 'work'" in lost.error.message
    assert not lost.HasField("retry_at")

    # The step has no retry policy (one attempt), yet the lost attempt did not use it up.
    [second] = await raw.poll()
    assert (second.task_id, second.attempt, second.input_json) == (first.task_id, 2, '"in"')
    await raw.complete(second, '"out"')
    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_COMPLETED
    assert attempts(execution) == [
        ("work", 1, S.STEP_ATTEMPT_STATUS_LOST),
        ("work", 2, S.STEP_ATTEMPT_STATUS_COMPLETED),
    ]


async def test_heartbeats_extend_a_lease_and_report_it_lost_after_reclaim(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    await raw.start("plain")
    [task] = await raw.poll()
    leased_at = manual_clock.now()
    assert at(task.lease_expires_at) == leased_at + timedelta(seconds=30)

    manual_clock.advance(timedelta(seconds=20))
    beat = await heartbeat(raw, task)
    assert list(beat.lost_task_ids) == []
    assert at(beat.lease_expires_at) == leased_at + timedelta(seconds=50)

    manual_clock.advance(timedelta(seconds=20))  # 40 s after the lease: past the first expiry
    await orch.reclaimer.tick()
    row = await task_row(database_url, task.task_id)
    assert row is not None
    assert (row["status"], row["lease_token"]) == ("leased", task.lease_token)
    assert row["lease_expires_at"] == leased_at + timedelta(seconds=50)

    manual_clock.advance(timedelta(seconds=10))  # the worker went silent
    await reclaim(orch)
    beat = await heartbeat(raw, task)
    assert list(beat.lost_task_ids) == [task.task_id]
    assert not beat.HasField("lease_expires_at")
    err = await rpc_error(raw.complete(task, "1"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_silent_step_past_its_timeout_is_timed_out_and_retried(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    execution_id = await raw.start("slow")
    [task] = await raw.poll()
    leased_at = manual_clock.now()
    assert task.timeout.ToTimedelta() == timedelta(seconds=10)
    # The lease ends at the timeout plus the 5 s grace, not after the 30 s lease.
    assert at(task.lease_expires_at) == leased_at + timedelta(seconds=15)

    manual_clock.advance(timedelta(seconds=12))  # past the timeout, within the grace
    beat = await heartbeat(raw, task)  # a heartbeat cannot stretch it past timeout + grace
    assert at(beat.lease_expires_at) == leased_at + timedelta(seconds=15)
    await orch.reclaimer.tick()
    assert (await task_row(database_url, task.task_id))["status"] == "leased"  # type: ignore[index]

    manual_clock.advance(timedelta(seconds=3))
    await reclaim(orch)
    reclaimed_at = manual_clock.now()
    execution = await raw.get(execution_id)
    [timed_out] = execution.steps
    assert (timed_out.attempt, timed_out.status) == (1, S.STEP_ATTEMPT_STATUS_TIMED_OUT)
    assert timed_out.error.type == "StepTimeout"
    assert "did not finish within its timeout of 10s" in timed_out.error.message
    assert at(timed_out.finished_at) == reclaimed_at
    assert at(timed_out.retry_at) == reclaimed_at + timedelta(seconds=3)
    row = await task_row(database_url, task.task_id)
    assert row is not None
    assert (row["status"], row["attempt"], row["failures"], row["losses"]) == ("ready", 2, 1, 0)

    assert await raw.poll() == []  # the policy's 3 s delay applies
    manual_clock.advance(timedelta(seconds=3))
    [retry] = await raw.poll()
    assert retry.attempt == 2

    manual_clock.advance(timedelta(seconds=15))  # the last attempt times out as well
    await reclaim(orch)
    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_FAILED
    assert execution.error.type == "StepTimeout"
    assert "step 'crunch' failed on attempt 2 and has no attempts left" in execution.error.message
    assert attempts(execution) == [
        ("crunch", 1, S.STEP_ATTEMPT_STATUS_TIMED_OUT),
        ("crunch", 2, S.STEP_ATTEMPT_STATUS_TIMED_OUT),
    ]
    assert await task_row(database_url, task.task_id) is None


async def test_a_step_lost_too_often_fails_the_execution(
    database_url: str, manual_clock: ManualClock
) -> None:
    async with (
        running_orchestrator(database_url, clock=manual_clock, max_lost_attempts=2) as orch,
        grpc.aio.insecure_channel(orch.address) as ch,
    ):
        raw = RawClient(ch)
        await raw.register(plain)
        execution_id = await raw.start("plain")
        for attempt in (1, 2, 3):
            [task] = await raw.poll()
            assert task.attempt == attempt
            manual_clock.advance(timedelta(seconds=31))
            await reclaim(orch)

        execution = await raw.get(execution_id)
        assert execution.status == S.EXECUTION_STATUS_FAILED
        assert execution.error.type == "StepLost"
        assert "step 'work' was lost 3 times" in execution.error.message
        assert attempts(execution) == [("work", n, S.STEP_ATTEMPT_STATUS_LOST) for n in (1, 2, 3)]
        assert await task_row(database_url, task.task_id) is None
        assert await raw.poll() == []


async def test_released_tasks_run_again_as_the_same_attempt(
    channel: grpc.aio.Channel, raw: RawClient, database_url: str
) -> None:
    execution_id = await raw.start("plain")
    [task] = await raw.poll()
    await raw.workers.ReleaseTasks(
        wpb.ReleaseTasksRequest(
            worker_id=raw.worker_id,
            leases=[wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)],
        )
    )
    row = await task_row(database_url, task.task_id)
    assert row is not None
    assert (row["status"], row["attempt"], row["failures"], row["losses"]) == ("ready", 1, 0, 0)
    assert row["lease_token"] is None
    assert list((await raw.get(execution_id)).steps) == []

    other = RawClient(channel, worker_id="other-worker")
    await other.register(plain)
    [again] = await other.poll()
    assert (again.task_id, again.attempt) == (task.task_id, 1)
    err = await rpc_error(raw.complete(task, "1"))  # the released lease is gone
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    await other.complete(again, "2")
    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_COMPLETED
    assert [(s.attempt, s.status, s.worker_id) for s in execution.steps] == [
        (1, S.STEP_ATTEMPT_STATUS_COMPLETED, "other-worker")
    ]


async def test_failures_are_retried_with_exponential_backoff(
    raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    execution_id = await raw.start("flaky", '{"amount": 5}')
    tick = timedelta(milliseconds=1)
    for attempt, delay in ((1, 2), (2, 4)):
        [task] = await raw.poll()
        assert (task.attempt, task.input_json) == (attempt, '{"amount": 5}')
        manual_clock.advance(timedelta(seconds=1))  # the attempt runs for a second
        await raw.fail(task, "ConnectionError", f"gateway down #{attempt}")
        failed_at = manual_clock.now()

        recorded = (await raw.get(execution_id)).steps[-1]
        assert (recorded.attempt, recorded.status) == (attempt, S.STEP_ATTEMPT_STATUS_FAILED)
        assert (recorded.error.type, recorded.error.message) == (
            "ConnectionError",
            f"gateway down #{attempt}",
        )
        assert at(recorded.started_at) == failed_at - timedelta(seconds=1)
        assert at(recorded.finished_at) == failed_at
        assert at(recorded.retry_at) == failed_at + timedelta(seconds=delay)
        row = await task_row(database_url, task.task_id)
        assert row is not None
        assert row["available_at"] == failed_at + timedelta(seconds=delay)

        manual_clock.advance(timedelta(seconds=delay) - tick)
        assert await raw.poll() == []
        manual_clock.advance(tick)

    [last] = await raw.poll()
    assert last.attempt == 3
    await raw.complete(last, '{"paid": 5}')
    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_COMPLETED
    assert execution.result_json == '{"paid": 5}'
    assert attempts(execution) == [
        ("charge", 1, S.STEP_ATTEMPT_STATUS_FAILED),
        ("charge", 2, S.STEP_ATTEMPT_STATUS_FAILED),
        ("charge", 3, S.STEP_ATTEMPT_STATUS_COMPLETED),
    ]
    assert not execution.steps[2].HasField("retry_at")


@pytest.mark.parametrize(
    ("error_type", "non_retryable"),
    [("ValueError", True), ("KeyError", False)],
    ids=["flagged-non-retryable", "listed-in-the-policy"],
)
async def test_a_non_retryable_failure_fails_the_execution_at_once(
    raw: RawClient, database_url: str, error_type: str, non_retryable: bool
) -> None:
    execution_id = await raw.start("flaky")
    [task] = await raw.poll()
    await raw.fail(task, error_type, "card is fraudulent", non_retryable=non_retryable)

    execution = await raw.get(execution_id)
    assert execution.status == S.EXECUTION_STATUS_FAILED
    assert execution.error.type == error_type
    assert execution.error.non_retryable is non_retryable
    assert (
        "step 'charge' failed on attempt 1 and is not retryable: card is fraudulent"
        in execution.error.message
    )
    assert execution.HasField("finished_at")
    assert attempts(execution) == [("charge", 1, S.STEP_ATTEMPT_STATUS_FAILED)]
    assert not execution.steps[0].HasField("retry_at")
    assert await task_row(database_url, task.task_id) is None
    assert await raw.poll() == []
