"""A step's SystemExit, KeyboardInterrupt or GeneratorExit fails its attempt, never the worker."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durable import StepContext, Workflow, step
from durable._definition import definition_hash, to_definition
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable_worker.runner import Runner
from tests.helpers.aio import yield_to_loop
from tests.unit.test_worker_runner import ListSink

RAISERS: dict[str, BaseException] = {
    "exit": SystemExit(3),
    "interrupt": KeyboardInterrupt("pressed"),
    "generator": GeneratorExit(),
}


def exits(data: str) -> None:
    if data == "exit":
        sys.exit(3)
    raise RAISERS[data]


async def exits_async(data: str) -> None:
    await yield_to_loop()
    exits(data)


async def cancels_itself(data: Any) -> None:
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future  # raises CancelledError, though nobody cancelled this task


def undo(result: Any, ctx: StepContext) -> None:
    sys.exit("undo gave up")


def merge(data: Any, results: Any) -> None:
    raise KeyboardInterrupt


def broken_key(data: Any) -> str:
    sys.exit(4)


wf = Workflow("exits")
wf.step(step(exits))
wf.step(step(exits_async))
wf.step(step(cancels_itself))
wf.step(step(lambda d: d, name="undone", compensate=undo))
wf.parallel("group", {"a": [step(lambda d: d, name="in_a")]}, into=merge)
wf.step(step(lambda d: d, name="before_branch"))
wf.branch("pick", on=broken_key, cases={"x": []})

VERSION = definition_hash(to_definition(wf))


def task(name: str, data: Any = None, kind: int = common_pb2.TASK_KIND_STEP) -> pb.Task:
    return pb.Task(
        task_id=3,
        lease_token="tok-3",
        execution_id="ex-1",
        workflow_name="exits",
        workflow_version=VERSION,
        step_name=name,
        sequence=1,
        attempt=1,
        input_json=json.dumps(data),
        execution_input_json="{}",
        kind=kind,  # type: ignore[arg-type]
    )


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    runner = Runner([wf], {"exits": VERSION}, sink, concurrency=2)
    try:
        yield runner, sink
    finally:
        runner.close()


async def failure(runner: tuple[Runner, ListSink], t: pb.Task) -> common_pb2.ErrorInfo:
    r, sink = runner
    await r.run(t)  # returns: nothing reaches the event loop
    [report] = sink.reports
    sink.reports.clear()
    assert isinstance(report, pb.TaskFailure), report
    assert not report.timed_out
    return report.error


@pytest.mark.parametrize("name", ["exits", "exits_async"])
async def test_sys_exit_in_a_step_is_a_retryable_failure(
    runner: tuple[Runner, ListSink], name: str
) -> None:
    error = await failure(runner, task(name, "exit"))
    assert error.type == "SystemExit"
    assert error.message == "sys.exit(3) in user code: it fails this attempt, not the worker"
    assert not error.non_retryable  # the step's retry policy decides
    assert "in exits" in error.traceback
    assert error.traceback.endswith("SystemExit: 3\n")
    assert "durable_worker" not in error.traceback


@pytest.mark.parametrize("name", ["exits", "exits_async"])
@pytest.mark.parametrize(
    ("data", "error_type", "message"),
    [
        ("interrupt", "KeyboardInterrupt", "KeyboardInterrupt in user code: it fails this "
         "attempt, not the worker: pressed"),
        ("generator", "GeneratorExit", "GeneratorExit in user code: it fails this attempt, "
         "not the worker"),
    ],
)  # fmt: skip
async def test_other_base_exceptions_fail_the_attempt(
    runner: tuple[Runner, ListSink], name: str, data: str, error_type: str, message: str
) -> None:
    error = await failure(runner, task(name, data))
    assert (error.type, error.message, error.non_retryable) == (error_type, message, False)


async def test_a_cancelled_error_of_the_step_itself_is_its_failure(
    runner: tuple[Runner, ListSink],
) -> None:
    error = await failure(runner, task("cancels_itself"))
    assert error.type == "CancelledError"
    assert "in cancels_itself" in error.traceback


async def test_compensations_into_merges_and_branch_keys_are_contained(
    runner: tuple[Runner, ListSink],
) -> None:
    error = await failure(runner, task("undo", {}, common_pb2.TASK_KIND_COMPENSATION))
    assert (error.type, error.message) == (
        "SystemExit",
        "sys.exit('undo gave up') in user code: it fails this attempt, not the worker",
    )
    payload = {"data": {}, "results": {"a": {"ok": True, "value": 1}}}
    error = await failure(runner, task("group", payload, common_pb2.TASK_KIND_INTO))
    assert error.type == "KeyboardInterrupt"
    error = await failure(runner, task("before_branch", {}))  # then the branch key exits
    assert (error.type, error.message) == (
        "SystemExit",
        "sys.exit(4) in user code: it fails this attempt, not the worker",
    )
    error = await failure(runner, task("pick", {}, common_pb2.TASK_KIND_ROUTE))
    assert error.type == "SystemExit"
