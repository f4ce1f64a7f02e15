"""The runner on an into merge that returns a goto: it continues in its group's sequence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durable import Workflow, foreach, goto, step
from durable._definition import definition_hash, to_definition
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable_worker.runner import Runner
from tests.unit.test_worker_runner import ListSink


def sign(doc: Any) -> Any:
    return doc


def merge_to_route(data: Any, results: Any) -> Any:
    return goto("route", {**data, "n": len(results)})


async def merge_again(data: Any, results: Any) -> Any:
    return results if results else goto("again", data)


def merge_out_of_lane(data: Any, results: Any) -> Any:
    return goto("start", data)  # start is not in the lane's sequence


wf = Workflow("loops")
wf.step(step(sign, name="start"))
wf.branch("route", on=lambda d: d["kind"], cases={"a": [step(sign, name="on_a")]}, default=[])
wf.foreach(
    "batch",
    items="xs",
    steps=[foreach("inner", items="ys", steps=[step(sign, name="deep")], into=merge_out_of_lane)],
    into=merge_to_route,
)
wf.parallel("again", {"one": [step(sign, name="one")]}, into=merge_again)
wf.branch("tail", on=lambda d: "x", cases={"x": []})

VERSION = definition_hash(to_definition(wf))


def into(name: str, data: Any, results: Any, lane_path: str = "") -> pb.Task:
    return pb.Task(
        task_id=5,
        lease_token="tok-5",
        execution_id="ex-1",
        workflow_name="loops",
        workflow_version=VERSION,
        step_name=name,
        sequence=3,
        attempt=1,
        input_json=json.dumps({"data": data, "results": results}),
        execution_input_json="{}",
        kind=common_pb2.TASK_KIND_INTO,
        lane_path=lane_path,
    )


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    runner = Runner([wf], {"loops": VERSION}, sink, concurrency=2)
    try:
        yield runner, sink
    finally:
        runner.close()


async def run(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskCompletion | pb.TaskFailure:
    r, sink = runner
    await r.run(t)
    [report] = sink.reports
    assert isinstance(report, pb.TaskCompletion | pb.TaskFailure)
    return report


async def test_an_into_goto_back_to_a_branch_evaluates_it(runner: tuple[Runner, ListSink]) -> None:
    report = await run(runner, into("batch", {"kind": "a", "xs": []}, [1, 2]))
    assert isinstance(report, pb.TaskCompletion), report
    assert report.goto_target == "route"
    assert json.loads(report.result_json) == {"kind": "a", "xs": [], "n": 2}
    assert {k: e.value_json for k, e in report.evaluations.items()} == {"route": '"a"'}


async def test_an_async_into_goto_to_its_own_group(runner: tuple[Runner, ListSink]) -> None:
    report = await run(runner, into("again", {"k": 1}, []))
    assert isinstance(report, pb.TaskCompletion), report
    assert (report.goto_target, report.result_json) == ("again", '{"k":1}')
    # No goto: the walk goes on after the group, as usual.
    runner[1].reports.clear()
    report = await run(runner, into("again", {"k": 1}, [7]))
    assert isinstance(report, pb.TaskCompletion), report
    assert report.goto_target == ""
    assert {k: e.value_json for k, e in report.evaluations.items()} == {"tail": '"x"'}


async def test_an_into_goto_out_of_its_groups_sequence_fails_for_good(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await run(runner, into("inner", {}, [], lane_path="batch/0"))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "GotoError"
    assert report.error.message == (
        "into merge of 'inner' returned goto('start'), but the target must be a node of "
        "the sequence of its group: 'inner'"
    )
    assert report.error.non_retryable
