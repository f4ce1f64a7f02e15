"""Duplicate delivery: the same report twice, late, with an old lease token, or at once.

The design: a step may run more than once, its result is recorded once; a report with a
stale lease token is refused (FAILED_PRECONDITION, the stale task ids in the trailer
``durable-stale-task-ids``) and changes nothing. The first tests speak WorkerService
directly, as a worker in any language would, on an orchestrator whose clock moves only
when told; the last one replays stale reports against a live worker running the mixed
workload. Each ends with the invariant checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import cast

import asyncpg
import grpc
import pytest

from durable import RetryPolicy, StepContext, Workflow
from durable.v1 import common_pb2 as S
from durable.v1 import worker_service_pb2 as wpb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from durable_server.engine.engine import STALE_TRAILER
from durable_worker.reporter import Reporter
from tests.faults.mixed_flows import Driver
from tests.faults.workload import Workload
from tests.helpers.invariants import check_invariants
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient, snapshot
from tests.helpers.wait import wait_until

LEASE_SECS = 30.0
QUEUE = "dup"

dup = Workflow("fault_dup", queue=QUEUE)


@dup.step(retry=RetryPolicy(max_attempts=3, backoff="fixed", initial_delay=timedelta(0), jitter=0))
def first(data: object, ctx: StepContext) -> object:
    return data


@dup.step
def second(data: object, ctx: StepContext) -> object:
    return data


@pytest.fixture
async def orch(database_url: str, manual_clock: ManualClock) -> AsyncIterator[Orchestrator]:
    async with running_orchestrator(database_url, clock=manual_clock, lease_secs=LEASE_SECS) as o:
        yield o


@pytest.fixture
async def raw(orch: Orchestrator) -> AsyncIterator[RawClient]:
    async with grpc.aio.insecure_channel(orch.address) as channel:
        client = RawClient(channel, worker_id="dup-worker")
        await client.register(dup)
        yield client


async def refused(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def stale_ids(err: grpc.aio.AioRpcError) -> list[str]:
    trailers = cast(Iterable[tuple[str, str]], err.trailing_metadata() or ())
    return [v for k, v in trailers if k == STALE_TRAILER]


def completion(task: wpb.Task, result: object, token: str | None = None) -> wpb.TaskCompletion:
    return wpb.TaskCompletion(
        lease=wpb.TaskLease(task_id=task.task_id, lease_token=token or task.lease_token),
        result_json=json.dumps(result),
    )


async def complete_many(raw: RawClient, *items: wpb.TaskCompletion) -> None:
    await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(worker_id=raw.worker_id, completions=list(items))
    )


async def poll_one(raw: RawClient) -> wpb.Task:
    [task] = await raw.poll(1, queues=[QUEUE])
    return task


async def expire_leases(orch: Orchestrator, clock: ManualClock) -> None:
    """Move the clock past every lease and let the reclaimer take them all."""
    clock.advance(timedelta(seconds=LEASE_SECS + 1))
    now = clock.now()

    async def none_expired() -> bool:
        await orch.reclaimer.tick()
        expiry = await orch.engine.next_lease_expiry()
        return expiry is None or expiry > now

    await wait_until(none_expired)


async def history(raw: RawClient, execution_id: str) -> list[tuple[str, int, int, str]]:
    execution = await raw.get(execution_id)
    return [(s.step_name, s.attempt, s.status, s.result_json) for s in execution.steps]


async def test_a_report_sent_again_after_it_was_recorded_is_refused(
    raw: RawClient, database_url: str
) -> None:
    execution_id = await raw.start("fault_dup", '"in"')
    task = await poll_one(raw)
    await raw.complete(task, '"one"')
    before = await snapshot(database_url)

    again = await refused(raw.complete(task, '"one"'))  # the same completion, delivered twice
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"the lease on task(s) {task.task_id} is stale or wrong" in (again.details() or "")
    assert stale_ids(again) == [str(task.task_id)]
    other = await refused(raw.complete(task, '"forged"'))  # or with another result
    assert other.code() == grpc.StatusCode.FAILED_PRECONDITION
    failed = await refused(raw.fail(task))  # or reported failed
    assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await snapshot(database_url) == before

    # Twice in one call is a malformed request, refused before anything is looked at.
    nxt = await poll_one(raw)
    twice = await refused(complete_many(raw, completion(nxt, "a"), completion(nxt, "a")))
    assert twice.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a task id appears twice in one call" in (twice.details() or "")
    await complete_many(raw, completion(nxt, "two"))
    assert await history(raw, execution_id) == [
        ("first", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, '"one"'),
        ("second", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, '"two"'),
    ]
    assert await check_invariants(database_url) == []


async def test_a_late_report_with_an_old_lease_token_is_refused_the_new_one_counts(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    execution_id = await raw.start("fault_dup", '"in"')
    old = await poll_one(raw)
    await expire_leases(orch, manual_clock)  # the worker went silent: attempt 1 is lost
    new = await poll_one(raw)
    assert (new.task_id, new.attempt) == (old.task_id, 2)
    assert new.lease_token != old.lease_token

    other_id = await raw.start("fault_dup", '"other"')
    other = await poll_one(raw)

    before = await snapshot(database_url)
    late = await refused(raw.complete(old, '"late"'))
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stale_ids(late) == [str(old.task_id)]
    # All or nothing: a stale report fails the whole call; the fresh one in it is not
    # recorded either, and the trailer names only the stale task, to send the rest again.
    mixed = await refused(complete_many(raw, completion(other, "other"), completion(old, "late")))
    assert mixed.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stale_ids(mixed) == [str(old.task_id)]
    assert await snapshot(database_url) == before

    await complete_many(raw, completion(other, "other"))  # the rest, sent again: recorded
    await raw.complete(new, '"fresh"')  # the attempt that holds the lease now: recorded
    gone = await refused(raw.complete(old, '"late"'))  # and the old token stays refused
    assert gone.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await history(raw, execution_id))[:2] == [
        ("first", 1, S.STEP_ATTEMPT_STATUS_LOST, ""),
        ("first", 2, S.STEP_ATTEMPT_STATUS_COMPLETED, '"fresh"'),
    ]
    assert (await history(raw, other_id))[:1] == [
        ("first", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, '"other"')
    ]
    assert await check_invariants(database_url) == []


async def test_a_worker_never_sends_a_tasks_old_and_new_report_in_one_call(
    orch: Orchestrator, raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    # A worker whose report is held up (an outage longer than the lease) can get the same
    # task back and finish it again before the old report went out: both then wait in its
    # reporter. A call naming the task twice would be refused whole (INVALID_ARGUMENT) and
    # every report in it dropped; the reporter sends only the latest one instead.
    execution_id = await raw.start("fault_dup", '"in"')
    old = await poll_one(raw)
    await expire_leases(orch, manual_clock)
    new = await poll_one(raw)
    reporter = Reporter(raw.workers, raw.worker_id)
    await reporter.send([completion(old, "old run"), completion(new, "new run")])
    assert (await history(raw, execution_id))[:2] == [
        ("first", 1, S.STEP_ATTEMPT_STATUS_LOST, ""),
        ("first", 2, S.STEP_ATTEMPT_STATUS_COMPLETED, '"new run"'),
    ]
    assert await check_invariants(database_url) == []


@pytest.mark.parametrize("outcome", ["complete", "fail", "suspend"])
async def test_concurrent_duplicates_are_recorded_once(
    raw: RawClient, database_url: str, outcome: str
) -> None:
    # The same report sent eight times at once (a retrying client, two connections): the
    # task's row lock serialises them; one is recorded, the others find the lease gone.
    execution_id = await raw.start("fault_dup", '"in"')
    task = await poll_one(raw)
    lease = wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)

    async def send() -> grpc.StatusCode:
        try:
            if outcome == "complete":
                await raw.complete(task, '"once"')
            elif outcome == "fail":
                await raw.fail(task, "RuntimeError", "flaky")
            else:
                await raw.workers.SuspendTasks(
                    wpb.SuspendTasksRequest(
                        worker_id=raw.worker_id,
                        suspensions=[
                            wpb.TaskSuspension(
                                lease=lease,
                                events=wpb.EventWait(
                                    index=0, names=["go"], mode=S.EVENT_WAIT_MODE_ONE
                                ),
                            )
                        ],
                    )
                )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(send() for _ in range(8)))
    assert Counter(c.name for c in codes) == {"OK": 1, "FAILED_PRECONDITION": 7}

    steps = await history(raw, execution_id)
    if outcome == "complete":
        assert steps[0] == ("first", 1, S.STEP_ATTEMPT_STATUS_COMPLETED, '"once"')
    elif outcome == "fail":  # one failure, one retry: attempt 2 is ready, not 8
        assert steps == [("first", 1, S.STEP_ATTEMPT_STATUS_FAILED, "")]
        retry = await poll_one(raw)
        assert (retry.task_id, retry.attempt) == (task.task_id, 2)
    else:
        conn = await asyncpg.connect(database_url)
        try:
            waits = await conn.fetchval("SELECT count(*) FROM durable.waits")
        finally:
            await conn.close()
        assert (steps, waits) == ([("first", 1, S.STEP_ATTEMPT_STATUS_WAITING, "")], 1)
    assert await check_invariants(database_url) == []


async def test_stale_reports_replayed_under_load_change_nothing(
    database_url: str, tmp_path: Path
) -> None:
    # A live worker runs the mixed workload. The test watches the leases it is given and,
    # once each is over (its task finished, or moved on to another attempt), replays a
    # report with that lease's token: a completion with a forged result, a failure, a
    # suspension. Every replay must be refused, and no forged result recorded.
    workload = Workload(tmp_path)
    replies: dict[str, list[str]] = {"complete": [], "fail": [], "suspend": []}
    async with (
        running_orchestrator(database_url) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
        workload.worker(orch.address, "live", concurrency=4),
        Driver(orch.address, database_url) as driver,
    ):
        raw = RawClient(channel, worker_id="live")
        await driver.start(18)
        watcher = asyncio.create_task(_replay_over_leases(database_url, raw, replies))
        try:
            await driver.wait_finished(timeout=60)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    codes = {kind: set(got) for kind, got in replies.items()}
    assert codes == {kind: {"FAILED_PRECONDITION"} for kind in replies}, replies
    assert sum(len(got) for got in replies.values()) >= 30
    assert await driver.check_results() == []
    assert await workload.check(database_url, overdue_after=timedelta(seconds=5)) == []


async def _replay_over_leases(
    database_url: str, raw: RawClient, replies: dict[str, list[str]]
) -> None:
    seen: dict[tuple[int, str], None] = {}
    kinds = list(replies)
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            rows = await conn.fetch(
                "SELECT id, lease_token::text AS token FROM durable.tasks WHERE status = 'leased'"
            )
            live = {(r["id"], r["token"]) for r in rows}
            for lease in live:
                seen.setdefault(lease)
            for task_id, token in [lease for lease in seen if lease not in live]:
                del seen[(task_id, token)]  # over: the token can never be valid again
                kind = kinds[task_id % len(kinds)]
                replies[kind].append(await _replay(raw, kind, task_id, token))
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def _replay(raw: RawClient, kind: str, task_id: int, token: str) -> str:
    lease = wpb.TaskLease(task_id=task_id, lease_token=token)
    try:
        if kind == "complete":
            await raw.workers.CompleteTasks(
                wpb.CompleteTasksRequest(
                    worker_id=raw.worker_id,
                    completions=[wpb.TaskCompletion(lease=lease, result_json='{"run": "forged"}')],
                )
            )
        elif kind == "fail":
            await raw.workers.FailTasks(
                wpb.FailTasksRequest(
                    worker_id=raw.worker_id,
                    failures=[wpb.TaskFailure(lease=lease, error=S.ErrorInfo(type="Forged"))],
                )
            )
        else:
            await raw.workers.SuspendTasks(
                wpb.SuspendTasksRequest(
                    worker_id=raw.worker_id,
                    suspensions=[
                        wpb.TaskSuspension(
                            lease=lease,
                            events=wpb.EventWait(index=0, names=["x"], mode=S.EVENT_WAIT_MODE_ONE),
                        )
                    ],
                )
            )
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    return "OK"
