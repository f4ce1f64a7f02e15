"""Waits in the worker: each becomes a TaskSuspension with its own oneof field."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable import InputField, StepContext, Workflow, step
from durable._definition import definition_hash, to_definition
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable_worker import Worker
from durable_worker.outcome import Report, suspension
from durable_worker.runner import Runner
from tests.helpers.aio import yield_to_loop
from tests.unit.test_worker_reporter import (
    FakeWorkerService,
    done,
    lease,
    reporter_on,
    serving,
    until,
)
from tests.unit.test_worker_runner import ListSink

WAKE = datetime(2100, 1, 2, 9, 0, tzinfo=UTC)
keys: list[Any] = []  # every branch key computed: a suspension walks nowhere
side_effects: list[str] = []  # what ran before the waits, run by run


def _key(data: Any) -> Any:
    keys.append(data)
    return "a"


def undo_by_sleeping(result: Any, ctx: StepContext) -> Any:
    ctx.sleep(timedelta(seconds=1))
    return result


def merge_by_waiting(data: Any, results: Any, ctx: StepContext) -> Any:
    return ctx.wait_for_event("merge_ok")


def lane(data: Any) -> Any:
    return data


wf = Workflow("waiter")


@wf.step
def nap(data: Any, ctx: StepContext) -> Any:
    ctx.start_workflow("audit", data)
    ctx.sleep(timedelta(minutes=5))
    return "rested"


@wf.step
def until_morning(data: Any, ctx: StepContext) -> Any:
    ctx.sleep_until(WAKE)
    return "morning"


@wf.step
async def one_event(data: Any, ctx: StepContext) -> Any:
    await yield_to_loop()
    return {"paid": ctx.wait_for_event("paid", timeout=timedelta(hours=1), timeout_value=None)}


@wf.step
def any_event(data: Any, ctx: StepContext) -> Any:
    name, payload = ctx.wait_for_any(["approved", "rejected"])
    return [name, payload]


@wf.step
def all_events(data: Any, ctx: StepContext) -> Any:
    return ctx.wait_for_all(["a", "b"], timeout=timedelta(days=1))


@wf.step
def form(data: Any, ctx: StepContext) -> Any:
    return ctx.wait_for_input(
        "address",
        kind="form",
        prompt="Where to?",
        fields=[InputField("street", "string", label="Street"), {"name": "zip", "required": False}],
        timeout=timedelta(days=2),
        timeout_value={"street": "unknown"},
    )


@wf.step
def everything(data: Any, ctx: StepContext) -> Any:
    side_effects.append("before")
    child = ctx.call_workflow("child", data)  # 0
    ctx.sleep(timedelta(seconds=30))  # 1
    ctx.start_workflow("audit", child)  # 2
    answer = ctx.wait_for_input("ok", kind="approval", prompt="Go on?")  # 3
    return {"child": child, "answer": answer}


@wf.step
def swallow(data: Any, ctx: StepContext) -> Any:
    with contextlib.suppress(BaseException):  # never do this in a step
        ctx.wait_for_event("first")
    ctx.sleep(timedelta(seconds=1))  # never reported: the first wait wins
    return "swallowed"


@wf.step
def big_timeout_value(data: int, ctx: StepContext) -> Any:
    return ctx.wait_for_event("e", timeout=timedelta(seconds=1), timeout_value="x" * data)


@wf.step(compensate=undo_by_sleeping)
def pay(data: Any) -> Any:
    return data


wf.parallel("group", [step(lane, name="lane")], into=merge_by_waiting)


@wf.step
def before_branch(data: Any, ctx: StepContext) -> Any:
    return ctx.wait_for_event("go")


wf.branch("route", on=_key, cases={"a": []}, default=[])

VERSION = definition_hash(to_definition(wf))
LIMIT = 200
LEASE = pb.TaskLease(task_id=9, lease_token="tok-9")


def task(name: str, data: Any = None, *, memo: Any = None, **fields: Any) -> pb.Task:
    return pb.Task(
        task_id=fields.pop("task_id", 9),
        lease_token=fields.pop("lease_token", "tok-9"),
        execution_id="ex-1",
        workflow_name="waiter",
        workflow_version=VERSION,
        step_name=name,
        sequence=2,
        attempt=1,
        input_json=json.dumps(data),
        execution_input_json="{}",
        memo_json="" if memo is None else json.dumps(memo),
        **fields,
    )


def ok(value: Any) -> dict[str, Any]:
    return {"ok": True, "value": value}


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    r = Runner([wf], {"waiter": VERSION}, sink, concurrency=2, max_payload_bytes=LIMIT)
    keys.clear()
    side_effects.clear()
    try:
        yield r, sink
    finally:
        r.close()


async def run(runner: tuple[Runner, ListSink], t: pb.Task) -> Report:
    r, sink = runner
    await r.run(t)
    assert len(sink.reports) == 1
    return sink.reports.pop()


async def suspended(runner: tuple[Runner, ListSink], t: pb.Task, kind: str) -> pb.TaskSuspension:
    report = await run(runner, t)
    assert isinstance(report, pb.TaskSuspension), report
    assert report.lease == LEASE
    assert report.WhichOneof("wait") == kind
    return report


async def failed(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskFailure:
    report = await run(runner, t)
    assert isinstance(report, pb.TaskFailure), report
    return report


async def completed(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskCompletion:
    report = await run(runner, t)
    assert isinstance(report, pb.TaskCompletion), report
    return report


# -- what each wait sends --------------------------------------------------------------


async def test_sleep_sends_a_sleep_wait_with_a_duration_and_the_starts_so_far(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await suspended(runner, task("nap", 7), "sleep")
    expected = pb.SleepWait(index=1)
    expected.duration.FromTimedelta(timedelta(minutes=5))
    assert report.sleep == expected
    assert list(report.children) == [pb.ChildStart(index=0, workflow_name="audit", input_json="7")]


async def test_sleep_until_sends_a_sleep_wait_with_a_time(runner: tuple[Runner, ListSink]) -> None:
    report = await suspended(runner, task("until_morning"), "sleep")
    assert report.sleep.index == 0
    assert report.sleep.WhichOneof("until") == "until_time"
    assert report.sleep.until_time.ToJsonString() == "2100-01-02T09:00:00Z"
    assert list(report.children) == []


async def test_wait_for_event_sends_an_event_wait_of_mode_one(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await suspended(runner, task("one_event"), "events")
    expected = pb.EventWait(
        index=0,
        names=["paid"],
        mode=common_pb2.EVENT_WAIT_MODE_ONE,
        timeout_value_json="null",
        has_timeout_value=True,
    )
    expected.timeout.FromTimedelta(timedelta(hours=1))
    assert report.events == expected


async def test_wait_for_any_and_all_send_their_modes(runner: tuple[Runner, ListSink]) -> None:
    any_report = await suspended(runner, task("any_event"), "events")
    assert any_report.events == pb.EventWait(
        index=0, names=["approved", "rejected"], mode=common_pb2.EVENT_WAIT_MODE_ANY
    )
    all_report = await suspended(runner, task("all_events"), "events")
    assert list(all_report.events.names) == ["a", "b"]
    assert all_report.events.mode == common_pb2.EVENT_WAIT_MODE_ALL
    assert all_report.events.timeout.ToTimedelta() == timedelta(days=1)
    assert not all_report.events.has_timeout_value


async def test_wait_for_input_sends_an_input_wait(runner: tuple[Runner, ListSink]) -> None:
    report = await suspended(runner, task("form"), "input")
    expected = pb.InputWait(
        index=0,
        name="address",
        kind=common_pb2.INPUT_KIND_FORM,
        prompt="Where to?",
        fields=[
            common_pb2.InputField(name="street", type="string", required=True, label="Street"),
            common_pb2.InputField(name="zip", type="any", required=False),
        ],
        timeout_value_json='{"street":"unknown"}',
        has_timeout_value=True,
    )
    expected.timeout.FromTimedelta(timedelta(days=2))
    assert report.input == expected


async def test_a_suspension_walks_nowhere_and_a_resumed_step_does(
    runner: tuple[Runner, ListSink],
) -> None:
    await suspended(runner, task("before_branch", 1), "events")
    assert keys == []  # evaluations are never sent with a suspension
    report = await completed(runner, task("before_branch", 1, memo={"0": ok({"k": 1})}))
    assert json.loads(report.result_json) == {"k": 1}
    assert keys == [{"k": 1}]
    assert report.evaluations["route"].value_json == '"a"'


# -- resuming from the memo ------------------------------------------------------------


async def test_a_step_resumes_wait_by_wait_and_completes(runner: tuple[Runner, ListSink]) -> None:
    first = await suspended(runner, task("everything", "in"), "child")
    assert first.child == pb.ChildWait(index=0)
    assert [c.index for c in first.children] == [0]

    second = await suspended(runner, task("everything", "in", memo={"0": ok("c")}), "sleep")
    assert second.sleep.index == 1
    assert second.sleep.duration.ToTimedelta() == timedelta(seconds=30)
    assert list(second.children) == []  # the answered child call is not started again

    memo = {"0": ok("c"), "1": ok(None)}
    third = await suspended(runner, task("everything", "in", memo=memo), "input")
    assert third.input == pb.InputWait(
        index=3, name="ok", kind=common_pb2.INPUT_KIND_APPROVAL, prompt="Go on?"
    )
    assert list(third.children) == [pb.ChildStart(index=2, workflow_name="audit", input_json='"c"')]

    memo["3"] = ok(True)
    report = await completed(runner, task("everything", "in", memo=memo))
    assert json.loads(report.result_json) == {"child": "c", "answer": True}
    audit = pb.ChildStart(index=2, workflow_name="audit", input_json='"c"')
    assert list(report.children) == [audit]
    assert side_effects == ["before"] * 4  # code before the waits runs once per run


async def test_any_and_timeout_values_replay_in_the_worker(runner: tuple[Runner, ListSink]) -> None:
    memo = {"0": ok({"event": "rejected", "payload": {"why": "late"}})}
    report = await completed(runner, task("any_event", memo=memo))
    assert json.loads(report.result_json) == ["rejected", {"why": "late"}]
    form_report = await completed(runner, task("form", memo={"0": ok({"street": "unknown"})}))
    assert json.loads(form_report.result_json) == {"street": "unknown"}


async def test_a_recorded_timeout_fails_the_step_for_good(runner: tuple[Runner, ListSink]) -> None:
    error = {"type": "EventTimeout", "message": "events did not arrive before the wait's timeout"}
    report = await failed(runner, task("all_events", memo={"0": {"ok": False, "error": error}}))
    assert (report.error.type, report.error.message) == (
        "WaitTimeoutError",
        "events did not arrive before the wait's timeout",
    )
    assert report.error.non_retryable


async def test_a_step_that_swallows_its_wait_is_suspended_at_it(
    runner: tuple[Runner, ListSink], caplog: pytest.LogCaptureFixture
) -> None:
    report = await suspended(runner, task("swallow"), "events")
    assert report.events.index == 0
    assert list(report.events.names) == ["first"]
    assert "caught the suspension that ctx.wait_for_event raised (call 0)" in caplog.text


# -- what fails ------------------------------------------------------------------------


async def test_a_compensation_cannot_sleep(runner: tuple[Runner, ListSink]) -> None:
    report = await failed(
        runner,
        task("undo_by_sleeping", 1, kind=common_pb2.TASK_KIND_COMPENSATION, compensated_step="pay"),
    )
    assert report.error.type == "WaitOutsideStep"
    assert report.error.message == (
        "compensation 'undo_by_sleeping' called ctx.sleep, but only a step can wait"
    )
    assert report.error.non_retryable


async def test_an_into_cannot_wait_for_an_event(runner: tuple[Runner, ListSink]) -> None:
    payload = {"data": 1, "results": {"lane": 1}}
    report = await failed(runner, task("group", payload, kind=common_pb2.TASK_KIND_INTO))
    assert report.error.type == "WaitOutsideStep"
    assert report.error.message == (
        "into 'group' called ctx.wait_for_event, but only a step can wait"
    )


async def test_a_timeout_value_over_the_limit_fails_for_good(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await failed(runner, task("big_timeout_value", LIMIT))
    assert report.error.type == "PayloadTooLarge"
    assert f"gave its wait 0 {LIMIT + 2:,} bytes of JSON as timeout value" in report.error.message
    assert report.error.non_retryable
    fits = await run(runner, task("big_timeout_value", LIMIT - 40))
    assert isinstance(fits, pb.TaskSuspension)


# -- outcome.suspension, the reporter and a whole worker -------------------------------


@pytest.mark.parametrize(
    ("wait", "field"),
    [
        (pb.ChildWait(index=0), "child"),
        (pb.SleepWait(index=1), "sleep"),
        (pb.EventWait(index=2, names=["e"]), "events"),
        (pb.InputWait(index=3, name="i"), "input"),
    ],
)
def test_outcome_puts_each_wait_in_its_oneof_field(wait: Any, field: str) -> None:
    t = task("nap")
    starts = [pb.ChildStart(index=0, workflow_name="c")]
    report = suspension(t, starts, wait)
    assert report.WhichOneof("wait") == field
    assert getattr(report, field) == wait
    assert report.lease == LEASE
    assert list(report.children) == starts


def parked(task_id: int, index: int) -> pb.TaskSuspension:
    wait = pb.SleepWait(index=index)
    wait.duration.FromTimedelta(timedelta(seconds=index + 1))
    return suspension(task("nap", task_id=task_id, lease_token=f"tok-{task_id}"), [], wait)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWorkerService, str]]:
    async with serving() as served:
        yield served


async def test_suspensions_of_every_kind_go_in_one_suspend_tasks_call(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    events = suspension(
        task("any_event", task_id=2, lease_token="tok-2"),
        [],
        pb.EventWait(index=0, names=["a"], mode=common_pb2.EVENT_WAIT_MODE_ANY),
    )
    asking = suspension(
        task("form", task_id=4, lease_token="tok-4"),
        [],
        pb.InputWait(index=0, name="x", kind=common_pb2.INPUT_KIND_FREE_TEXT),
    )
    async with reporter_on(address) as (reporter, _):
        for report in (parked(1, 0), events, done(3), asking):
            reporter.put(report)
        await asyncio.wait_for(reporter.flush(), 10)
    [call] = service.calls("SuspendTasks")
    assert list(call.suspensions) == [parked(1, 0), events, asking]
    assert [s.WhichOneof("wait") for s in call.suspensions] == ["sleep", "events", "input"]
    assert service.completed_ids() == [3]
    assert lease(1) == call.suspensions[0].lease


async def test_a_worker_sleeps_then_completes_through_the_service(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    worker = Worker(address, [wf], worker_id="w-test", poll_wait=timedelta(seconds=5))
    async with worker:
        service.tasks.put_nowait(task("until_morning", task_id=1, lease_token="tok-1"))
        await until(lambda: service.suspended_ids() == [1])
        memo = {"0": ok(None)}
        service.tasks.put_nowait(task("until_morning", memo=memo, task_id=1, lease_token="tok-2"))
        await until(lambda: service.completed_ids() == [1])
    [suspend] = service.calls("SuspendTasks")
    [sleeping] = suspend.suspensions
    assert sleeping.lease == pb.TaskLease(task_id=1, lease_token="tok-1")
    assert sleeping.sleep.until_time.ToJsonString() == "2100-01-02T09:00:00Z"
    [complete] = service.calls("CompleteTasks")
    assert json.loads(complete.completions[0].result_json) == "morning"
