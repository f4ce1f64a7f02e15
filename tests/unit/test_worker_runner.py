"""The runner: results, exceptions, timeouts and oversize results become the right reports."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from durable import NonRetryableError, StepContext, Workflow
from durable._definition import definition_hash, to_definition
from durable.v1 import worker_service_pb2 as pb
from durable_worker.outcome import MAX_MESSAGE_CHARS, Report, payload_size
from durable_worker.runner import DEFAULT_HEARTBEAT_INTERVAL, Runner
from tests.helpers.aio import yield_to_loop
from tests.unit.test_worker_reporter import until

wf = Workflow("orders")
release = threading.Event()  # lets blocked sync steps end; set after each test


@wf.step
def double(data: dict[str, int]) -> dict[str, int]:
    return {"n": data["n"] * 2}


@wf.step
async def with_context(data: Any, ctx: StepContext) -> dict[str, Any]:
    await yield_to_loop()
    return {
        "data": data,
        "input": ctx.input,
        "where": [ctx.execution_id, ctx.workflow_name, ctx.step_name, ctx.sequence, ctx.attempt],
    }


@wf.step
def sync_with_context(data: Any, ctx: StepContext) -> list[Any]:
    return [data, ctx.input, ctx.idempotency_key]


@wf.step
def boom(data: Any) -> None:
    raise ValueError(
        "bad order " + "x" * (MAX_MESSAGE_CHARS + 10) if data == "long" else "bad order"
    )


@wf.step
async def refuse(data: Any) -> None:
    raise NonRetryableError("card declined")


@wf.step
def unencodable(data: Any) -> object:
    return object()


@wf.step
def nan(data: Any) -> float:
    return float("nan")


@wf.step
def big(data: int) -> str:
    return "x" * data


@wf.step
async def hang(data: Any) -> None:
    await asyncio.Event().wait()


@wf.step
def block(data: Any) -> str:
    release.wait(30)
    return "late"


@wf.step
async def own_timeout(data: Any) -> None:
    raise TimeoutError("the bank did not answer")


VERSION = definition_hash(to_definition(wf))


class ListSink:
    """Collects reports, as the reporter would queue them."""

    def __init__(self) -> None:
        self.reports: list[Report] = []

    def put(self, report: Report) -> None:
        self.reports.append(report)


def task(
    step: str,
    data: Any = None,
    *,
    task_id: int = 1,
    timeout: float | None = None,
    heartbeat: float | None = None,
    **fields: Any,
) -> pb.Task:
    msg = pb.Task(
        task_id=task_id,
        lease_token=f"tok-{task_id}",
        execution_id="ex-1",
        workflow_name="orders",
        workflow_version=VERSION,
        step_name=step,
        sequence=2,
        attempt=3,
        input_json=json.dumps(data),
        execution_input_json='{"id": 7}',
    )
    for name, value in fields.items():
        setattr(msg, name, value)
    if timeout is not None:
        msg.timeout.FromTimedelta(timedelta(seconds=timeout))
    if heartbeat is not None:
        msg.heartbeat_interval.FromTimedelta(timedelta(seconds=heartbeat))
    return msg


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    runner = Runner([wf], {"orders": VERSION}, sink, concurrency=2, max_payload_bytes=100)
    release.clear()
    try:
        yield runner, sink
    finally:
        release.set()
        await until(lambda: runner.busy_threads == 0)
        runner.close()


async def run_one(runner: tuple[Runner, ListSink], t: pb.Task) -> Report:
    r, sink = runner
    await r.run(t)
    assert len(sink.reports) == 1
    return sink.reports.pop()


async def test_a_sync_result_becomes_a_completion(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("double", {"n": 21}))
    assert report == pb.TaskCompletion(
        lease=pb.TaskLease(task_id=1, lease_token="tok-1"), result_json='{"n":42}'
    )


async def test_an_async_step_gets_its_context(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("with_context", [1, 2]))
    assert isinstance(report, pb.TaskCompletion)
    assert json.loads(report.result_json) == {
        "data": [1, 2],
        "input": {"id": 7},
        "where": ["ex-1", "orders", "with_context", 2, 3],
    }


async def test_a_sync_step_gets_its_context(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("sync_with_context", "a"))
    assert isinstance(report, pb.TaskCompletion)
    assert json.loads(report.result_json) == ["a", {"id": 7}, "ex-1:2:sync_with_context"]


async def test_a_step_gets_the_idempotency_key_the_task_carries(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await run_one(
        runner, task("sync_with_context", "a", idempotency_key="ex-1:2:sync_with_context#srv")
    )
    assert isinstance(report, pb.TaskCompletion)
    assert json.loads(report.result_json)[2] == "ex-1:2:sync_with_context#srv"


async def test_an_exception_becomes_a_retryable_failure(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("boom"))
    assert isinstance(report, pb.TaskFailure)
    assert report.lease.task_id == 1
    assert not report.timed_out
    assert (report.error.type, report.error.message) == ("ValueError", "bad order")
    assert not report.error.non_retryable
    trace = report.error.traceback
    assert trace.startswith("Traceback (most recent call last):\n  File ")
    assert trace.endswith("ValueError: bad order\n")
    assert "in boom" in trace
    assert "durable_worker" not in trace  # only the step's own frames


async def test_a_huge_message_is_cut(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("boom", "long"))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.message.endswith("[... cut]")
    assert len(report.error.message) < MAX_MESSAGE_CHARS + 20


async def test_non_retryable_error_is_marked(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("refuse"))
    assert isinstance(report, pb.TaskFailure)
    assert (report.error.type, report.error.message) == ("NonRetryableError", "card declined")
    assert report.error.non_retryable


@pytest.mark.parametrize("step", ["unencodable", "nan"])
async def test_a_result_that_is_not_json_is_non_retryable(
    runner: tuple[Runner, ListSink], step: str
) -> None:
    report = await run_one(runner, task(step))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "JSONSerializationError"
    assert report.error.non_retryable


async def test_input_that_is_not_json_is_non_retryable(runner: tuple[Runner, ListSink]) -> None:
    report = await run_one(runner, task("double", input_json="{nope"))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "InputDecodeError"
    assert report.error.message.startswith("the task's input is not valid JSON")
    assert report.error.non_retryable


@pytest.mark.parametrize(("size", "encoded"), [(98, 100), (99, 101), (5000, 5002)])
async def test_results_over_the_payload_limit_fail(
    runner: tuple[Runner, ListSink], size: int, encoded: int
) -> None:
    report = await run_one(runner, task("big", size))
    if encoded <= 100:
        assert isinstance(report, pb.TaskCompletion)
        return
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "PayloadTooLarge"
    assert report.error.non_retryable
    assert (
        f"returned {encoded:,} bytes of JSON, over the limit of 100 bytes" in report.error.message
    )


async def test_an_async_step_past_its_timeout_is_reported_timed_out(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await run_one(runner, task("hang", timeout=0.05))
    assert isinstance(report, pb.TaskFailure)
    assert report.timed_out
    assert report.error.type == "StepTimeout"
    assert report.error.message == "step hang exceeded its timeout of 0.05 s"
    assert not report.error.non_retryable


async def test_a_sync_step_past_its_timeout_is_reported_and_its_thread_dropped(
    runner: tuple[Runner, ListSink],
) -> None:
    r, sink = runner
    report = await run_one(runner, task("block", timeout=0.05))
    assert isinstance(report, pb.TaskFailure)
    assert report.timed_out
    assert report.error.message == "step block exceeded its timeout of 0.05 s"
    # The thread still runs, so it holds its slot until it returns; its result is dropped.
    assert r.busy_threads == 1
    assert r.free_slots == 1
    release.set()
    await until(lambda: r.busy_threads == 0 and r.free_slots == 2)
    assert sink.reports == []


async def test_a_timeout_error_raised_by_the_step_is_an_ordinary_failure(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await run_one(runner, task("own_timeout", timeout=30))
    assert isinstance(report, pb.TaskFailure)
    assert not report.timed_out
    assert (report.error.type, report.error.message) == ("TimeoutError", "the bank did not answer")


@pytest.mark.parametrize(
    ("fields", "error_type", "message"),
    [
        ({"step_name": "nope"}, "UnknownStep", "workflow 'orders' has no step 'nope'"),
        ({"workflow_name": "other"}, "UnknownStep", "this worker has no workflow 'other'"),
        (
            {"workflow_version": "f" * 64},
            "VersionMismatch",
            f"runs version ffffffffffff of workflow 'orders', but this worker registered "
            f"version {VERSION[:12]}",
        ),
    ],
)
async def test_tasks_this_worker_cannot_run_fail_for_good(
    runner: tuple[Runner, ListSink], fields: dict[str, Any], error_type: str, message: str
) -> None:
    report = await run_one(runner, task("double", {"n": 1}, **fields))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == error_type
    assert message in report.error.message
    assert report.error.non_retryable


async def test_an_abandoned_async_step_is_cancelled_and_not_reported(
    runner: tuple[Runner, ListSink],
) -> None:
    r, sink = runner
    handle = r.start(task("hang", task_id=5))
    await until(lambda: r.free_slots == 1)
    assert [lease.task_id for lease in r.leases()] == [5]
    assert r.abandon([5, 6]) == [5]
    await asyncio.wait_for(handle, 10)
    assert not handle.cancelled()
    assert sink.reports == []
    assert r.leases() == []
    assert r.free_slots == 2


async def test_an_abandoned_sync_step_has_its_result_dropped(
    runner: tuple[Runner, ListSink],
) -> None:
    r, sink = runner
    handle = r.start(task("block", task_id=5))
    await until(lambda: r.busy_threads == 1)
    r.abandon([5])
    await asyncio.wait_for(handle, 10)
    assert r.free_slots == 1  # the thread is still busy
    release.set()
    await until(lambda: r.free_slots == 2)
    assert sink.reports == []


async def test_slots_and_heartbeat_interval_follow_the_running_tasks(
    runner: tuple[Runner, ListSink],
) -> None:
    r, _ = runner
    assert r.heartbeat_interval() == DEFAULT_HEARTBEAT_INTERVAL
    first = r.start(task("hang", task_id=1, heartbeat=4))
    second = r.start(task("hang", task_id=2, heartbeat=2.5))
    await until(lambda: r.free_slots == 0)
    assert r.heartbeat_interval() == 2.5
    waiter = asyncio.ensure_future(r.wait_for_slot())
    r.abandon([2])
    await asyncio.wait_for(waiter, 10)
    assert r.heartbeat_interval() == 4
    r.abandon([1])
    await asyncio.wait_for(asyncio.gather(first, second, r.wait_idle()), 10)


def test_payload_size_counts_utf8_bytes() -> None:
    assert payload_size('"abc"') == 5
    assert payload_size(r'"\u00e9"') == 8
    assert payload_size('"é"') == 4


async def test_a_started_task_takes_its_slot_before_it_runs(
    runner: tuple[Runner, ListSink],
) -> None:
    # The poller asks for free_slots right after handing tasks over: a slot counted free
    # until the task's coroutine first runs would lease more tasks than the concurrency.
    r, sink = runner
    r.start(task("hang", task_id=1))
    assert r.free_slots == 1
    assert r.abandon([1]) == [1]  # abandoned before it ever ran: it never runs
    await until(lambda: r.free_slots == 2)
    assert sink.reports == []


async def test_reserved_slots_are_not_free_until_given_back(
    runner: tuple[Runner, ListSink],
) -> None:
    # The poller and the reporter (asking for next tasks) each reserve what they ask for:
    # together they never lease more tasks than the runner has slots.
    r, _ = runner
    assert r.reserve(1000) == 2  # a poll in flight holds both slots
    assert r.free_slots == 0
    assert r.reserve(5) == 0  # so a report asks for no next task
    waiter = asyncio.ensure_future(r.wait_for_slot())
    r.start(task("hang", task_id=1))  # the poll brought one task
    r.unreserve(2)
    await asyncio.wait_for(waiter, 10)
    assert r.free_slots == 1
    assert r.reserve(5) == 1
    assert r.free_slots == 0
    r.unreserve(1)
    r.abandon([1])
    await until(lambda: r.free_slots == 2)
