"""Child workflows in the worker: starts ride on completions, waits become SuspendTasks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio
import pytest

from durable import StepContext, Workflow, step
from durable._context import child_execution_id
from durable._definition import definition_hash, to_definition
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_worker import Worker
from durable_worker.outcome import Report
from durable_worker.reporter import Reporter
from durable_worker.runner import Runner
from tests.helpers.aio import yield_to_loop
from tests.unit.test_worker_reporter import (
    Abort,
    FakeWorkerService,
    done,
    lease,
    reporter_on,
    serving,
    until,
)
from tests.unit.test_worker_runner import ListSink

keys: list[Any] = []  # every branch key computed, to see that a suspension walks nowhere


def _key(data: Any) -> Any:
    keys.append(data)
    return "a"


def undo_by_call(result: Any, ctx: StepContext) -> Any:
    return ctx.call_workflow("refunds", result)


def undo_by_start(result: Any, ctx: StepContext) -> Any:
    return ctx.start_workflow("refunds", result)


def merge_by_call(data: Any, results: Any, ctx: StepContext) -> Any:
    return ctx.call_workflow("merger", results)


def lane(data: Any) -> Any:
    return data


wf = Workflow("parent")


@wf.step
def spawn(data: dict[str, Any], ctx: StepContext) -> Any:
    return {"ids": [ctx.start_workflow("child", {"n": n}) for n in data["ns"]]}


@wf.step
async def call_async(data: Any, ctx: StepContext) -> Any:
    await yield_to_loop()
    ctx.start_workflow("audit", data)
    got = ctx.call_workflow("child", {"x": data}, timeout=timedelta(seconds=30))
    return {"got": got}


@wf.step
def twice(data: Any, ctx: StepContext) -> Any:
    first = ctx.call_workflow("child", 1)
    ctx.start_workflow("audit", first)
    second = ctx.call_workflow(
        "child", 2, timeout=timedelta(minutes=1), timeout_value="late", queue="slow", priority=4
    )
    return [first, second]


@wf.step
def swallow_exception(data: Any, ctx: StepContext) -> Any:
    try:
        return ctx.call_workflow("child")
    except Exception:  # the usual catch-all: the suspension goes through it
        return "swallowed"


@wf.step
def swallow_base(data: Any, ctx: StepContext) -> Any:
    with contextlib.suppress(BaseException):  # never do this in a step
        ctx.call_workflow("child", "first")
    ctx.start_workflow("after", None)  # should never have run: not sent
    return "swallowed"


@wf.step
async def wrap_base(data: Any, ctx: StepContext) -> Any:
    try:
        ctx.call_workflow("child")
    except BaseException as exc:
        raise RuntimeError("wrapped") from exc


@wf.step
def fail_after_start(data: Any, ctx: StepContext) -> Any:
    ctx.start_workflow("child")
    raise ValueError("boom")


@wf.step
def big_input(data: int, ctx: StepContext) -> Any:
    return ctx.start_workflow("child", "x" * data)


@wf.step
def big_timeout_value(data: int, ctx: StepContext) -> Any:
    return ctx.call_workflow("child", timeout=timedelta(seconds=1), timeout_value="x" * data)


@wf.step(compensate=undo_by_call)
def pay(data: Any) -> Any:
    return data


@wf.step(compensate=undo_by_start)
def ship(data: Any) -> Any:
    return data


wf.parallel("group", [step(lane, name="lane")], into=merge_by_call)


@wf.step
def call_sync(data: Any, ctx: StepContext) -> Any:
    return ctx.call_workflow("child", data)


wf.branch("route", on=_key, cases={"a": []}, default=[])

VERSION = definition_hash(to_definition(wf))
LIMIT = 200
LEASE = pb.TaskLease(task_id=9, lease_token="tok-9")


def task(name: str, data: Any = None, *, memo: Any = None, **fields: Any) -> pb.Task:
    return pb.Task(
        task_id=fields.pop("task_id", 9),
        lease_token=fields.pop("lease_token", "tok-9"),
        execution_id="ex-1",
        workflow_name="parent",
        workflow_version=VERSION,
        step_name=name,
        sequence=4,
        attempt=fields.pop("attempt", 1),
        input_json=json.dumps(data),
        execution_input_json="{}",
        memo_json=fields.pop("memo_json", None) or ("" if memo is None else json.dumps(memo)),
        **fields,
    )


def ok(value: Any) -> dict[str, Any]:
    return {"ok": True, "value": value}


def start(index: int, name: str, input_json: str, **fields: Any) -> pb.ChildStart:
    return pb.ChildStart(index=index, workflow_name=name, input_json=input_json, **fields)


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    runner = Runner([wf], {"parent": VERSION}, sink, concurrency=2, max_payload_bytes=LIMIT)
    keys.clear()
    try:
        yield runner, sink
    finally:
        runner.close()


async def run(runner: tuple[Runner, ListSink], t: pb.Task) -> Report:
    r, sink = runner
    await r.run(t)
    assert len(sink.reports) == 1
    return sink.reports.pop()


async def suspended(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskSuspension:
    report = await run(runner, t)
    assert isinstance(report, pb.TaskSuspension), report
    assert report.lease == LEASE
    assert report.WhichOneof("wait") == "child"
    return report


async def failed(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskFailure:
    report = await run(runner, t)
    assert isinstance(report, pb.TaskFailure), report
    return report


# -- completions carry the starts -------------------------------------------------------


async def test_a_completion_carries_the_children_started(runner: tuple[Runner, ListSink]) -> None:
    report = await run(runner, task("spawn", {"ns": [1, 2]}))
    assert isinstance(report, pb.TaskCompletion)
    ids = [child_execution_id("ex-1", 4, i) for i in (0, 1)]
    assert json.loads(report.result_json) == {"ids": ids}
    assert list(report.children) == [
        start(0, "child", '{"n":1}'),
        start(1, "child", '{"n":2}'),
    ]


async def test_a_step_without_children_completes_without_any(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await run(runner, task("spawn", {"ns": []}))
    assert isinstance(report, pb.TaskCompletion)
    assert list(report.children) == []


async def test_a_failed_step_starts_nothing(runner: tuple[Runner, ListSink]) -> None:
    report = await failed(runner, task("fail_after_start"))
    assert (report.error.type, report.error.message) == ("ValueError", "boom")
    assert not report.error.non_retryable


# -- suspensions -----------------------------------------------------------------------


async def test_an_async_step_suspends_with_every_start_and_its_wait(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await suspended(runner, task("call_async", 5))
    assert list(report.children) == [start(0, "audit", "5"), start(1, "child", '{"x":5}')]
    assert report.child.index == 1
    assert report.child.timeout.ToTimedelta() == timedelta(seconds=30)
    assert not report.child.has_timeout_value


async def test_a_sync_step_suspends_and_walks_nowhere(runner: tuple[Runner, ListSink]) -> None:
    report = await suspended(runner, task("call_sync", "a"))
    assert list(report.children) == [start(0, "child", '"a"')]
    assert report.child == pb.ChildWait(index=0)
    assert keys == []  # the branch after the step is evaluated with its result, not now


async def test_the_step_resumes_from_its_memo(runner: tuple[Runner, ListSink]) -> None:
    report = await suspended(runner, task("twice", memo={"0": ok("one")}))
    # Call 0 answered from the memo (not started again); the start at 1 is sent again.
    assert list(report.children) == [
        start(1, "audit", '"one"'),
        start(2, "child", "2", queue="slow", priority=4),
    ]
    assert report.child.index == 2
    assert report.child.timeout.ToTimedelta() == timedelta(minutes=1)
    assert (report.child.timeout_value_json, report.child.has_timeout_value) == ('"late"', True)


async def test_with_every_outcome_recorded_the_step_completes(
    runner: tuple[Runner, ListSink],
) -> None:
    memo = {"0": ok("one"), "2": ok({"two": 2})}
    report = await run(runner, task("twice", memo=memo, attempt=2))
    assert isinstance(report, pb.TaskCompletion)
    assert json.loads(report.result_json) == ["one", {"two": 2}]
    assert list(report.children) == [start(1, "audit", '"one"')]


async def test_a_recorded_child_failure_fails_the_step_for_good(
    runner: tuple[Runner, ListSink],
) -> None:
    error = {"type": "ChildWorkflowFailed", "message": "child ended failed: no stock"}
    report = await failed(runner, task("call_sync", memo={"0": {"ok": False, "error": error}}))
    assert (report.error.type, report.error.message) == (
        "ChildWorkflowError",
        "child ended failed: no stock",
    )
    assert report.error.non_retryable


async def test_except_exception_does_not_swallow_the_suspension(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await suspended(runner, task("swallow_exception"))
    assert report.child.index == 0


async def test_a_step_that_swallows_its_suspension_is_suspended_anyway(
    runner: tuple[Runner, ListSink], caplog: pytest.LogCaptureFixture
) -> None:
    report = await suspended(runner, task("swallow_base"))
    assert report.child.index == 0
    assert list(report.children) == [start(0, "child", '"first"')]  # not the later start
    assert "caught the suspension that ctx.call_workflow raised (call 0)" in caplog.text


async def test_a_suspension_turned_into_an_error_is_still_a_suspension(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await suspended(runner, task("wrap_base"))
    assert report.child.index == 0


# -- what fails ------------------------------------------------------------------------


async def test_a_compensation_cannot_wait_for_a_child(runner: tuple[Runner, ListSink]) -> None:
    report = await failed(
        runner,
        task("undo_by_call", 1, kind=common_pb2.TASK_KIND_COMPENSATION, compensated_step="pay"),
    )
    assert report.error.type == "CallWorkflowOutsideStep"
    assert report.error.message.startswith("compensation 'undo_by_call' called ctx.call_workflow")
    assert "only a step can wait for a child workflow" in report.error.message
    assert report.error.non_retryable


async def test_an_into_cannot_wait_for_a_child(runner: tuple[Runner, ListSink]) -> None:
    payload = {"data": 1, "results": {"lane": 1}}
    report = await failed(runner, task("group", payload, kind=common_pb2.TASK_KIND_INTO))
    assert report.error.type == "CallWorkflowOutsideStep"
    assert report.error.message.startswith("into 'group' called ctx.call_workflow")
    assert report.error.non_retryable


async def test_a_compensation_may_start_a_child(runner: tuple[Runner, ListSink]) -> None:
    report = await run(
        runner,
        task("undo_by_start", 1, kind=common_pb2.TASK_KIND_COMPENSATION, compensated_step="ship"),
    )
    assert isinstance(report, pb.TaskCompletion)
    assert list(report.children) == [start(0, "refunds", "1")]


@pytest.mark.parametrize(
    ("step_name", "what", "size"),
    [
        ("big_input", "input", LIMIT + 2),  # '"xx...x"'
        ("big_timeout_value", "timeout value", LIMIT + 2),  # '"xx...x"'
    ],
)
async def test_child_payloads_over_the_limit_fail_for_good(
    runner: tuple[Runner, ListSink], step_name: str, what: str, size: int
) -> None:
    report = await failed(runner, task(step_name, LIMIT))
    assert report.error.type == "PayloadTooLarge"
    assert f"gave its child call 0 {size:,} bytes of JSON as {what}" in report.error.message
    assert report.error.non_retryable
    fits = await run(runner, task(step_name, LIMIT - 40))
    assert not isinstance(fits, pb.TaskFailure)


@pytest.mark.parametrize(
    ("memo_json", "message"),
    [
        ("{nope", "the task's memo is not valid JSON"),
        ("[1]", "the task's memo must be a JSON object"),
    ],
)
async def test_a_bad_memo_fails_for_good(
    runner: tuple[Runner, ListSink], memo_json: str, message: str
) -> None:
    report = await failed(runner, task("call_sync", memo_json=memo_json))
    assert report.error.type == "InputDecodeError"
    assert report.error.message.startswith(message)
    assert report.error.non_retryable


# -- the reporter and a whole worker ---------------------------------------------------


def suspension(task_id: int) -> pb.TaskSuspension:
    return pb.TaskSuspension(
        lease=lease(task_id),
        children=[start(0, "child", "null")],
        child=pb.ChildWait(index=0),
    )


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWorkerService, str]]:
    async with serving() as served:
        yield served


async def test_suspensions_are_batched_in_one_suspend_tasks_call(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    async with reporter_on(address) as (reporter, _):
        for report in (suspension(1), done(2), suspension(3)):
            reporter.put(report)
        await asyncio.wait_for(reporter.flush(), 10)
    [call] = service.calls("SuspendTasks")
    assert call.worker_id == "w-1"
    assert list(call.suspensions) == [suspension(1), suspension(3)]
    assert service.completed_ids() == [2]


async def test_stale_suspensions_are_dropped_and_the_rest_sent_again(
    fake: tuple[FakeWorkerService, str], caplog: pytest.LogCaptureFixture
) -> None:
    service, address = fake
    service.stale = {1}
    async with reporter_on(address) as (reporter, delays):
        reporter.put(suspension(1))
        reporter.put(suspension(2))
        await asyncio.wait_for(reporter.flush(), 10)
        assert reporter.pending_leases() == []
    calls = service.calls("SuspendTasks")
    assert [[s.lease.task_id for s in r.suspensions] for r in calls] == [[1, 2], [2]]
    assert service.suspended_ids() == [2]
    assert delays == []
    assert "lease lost on task(s) 1" in caplog.text


async def test_an_unacknowledged_suspension_keeps_its_lease_alive(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script("SuspendTasks", Abort(grpc.StatusCode.UNAVAILABLE))
    gate = asyncio.Event()

    async def held_sleep(seconds: float) -> None:
        await gate.wait()

    async with grpc.aio.insecure_channel(address) as channel:
        reporter = Reporter(pb_grpc.WorkerServiceStub(channel), "w-1", sleep=held_sleep)
        reporter.start()
        reporter.put(suspension(7))
        await until(lambda: len(service.calls("SuspendTasks")) == 1)
        assert reporter.pending_leases() == [lease(7)]  # the heartbeat keeps it alive
        gate.set()
        await asyncio.wait_for(reporter.flush(), 10)
        assert reporter.pending_leases() == []
        await reporter.stop()
    assert [list(r.suspensions) for r in service.calls("SuspendTasks")] == [[suspension(7)]] * 2


async def test_a_worker_suspends_and_completes_through_the_service(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    worker = Worker(address, [wf], worker_id="w-test", poll_wait=timedelta(seconds=5))
    async with worker:
        service.tasks.put_nowait(task("call_async", 1, task_id=1, lease_token="tok-1"))
        await until(lambda: service.suspended_ids() == [1])
        memo = {"1": ok("done")}
        service.tasks.put_nowait(task("call_async", 1, memo=memo, task_id=1, lease_token="tok-2"))
        await until(lambda: service.completed_ids() == [1])
    [suspend] = service.calls("SuspendTasks")
    [parked] = suspend.suspensions
    assert parked.lease == pb.TaskLease(task_id=1, lease_token="tok-1")
    assert [c.workflow_name for c in parked.children] == ["audit", "child"]
    assert parked.child.index == 1
    [complete] = service.calls("CompleteTasks")
    [result] = complete.completions
    assert result.lease == pb.TaskLease(task_id=1, lease_token="tok-2")
    assert json.loads(result.result_json) == {"got": "done"}
    assert list(result.children) == [start(0, "audit", "1")]
