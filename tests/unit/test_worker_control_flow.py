"""The runner on control flow: each task kind, gotos and evaluations become the right reports."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durable import StepContext, TaskKind, Workflow, branch, foreach, goto, parallel, step
from durable._definition import definition_hash, to_definition
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable_worker.runner import Runner
from tests.helpers.aio import yield_to_loop
from tests.unit.test_worker_runner import ListSink

threads: dict[str, str] = {}  # who ran where: function -> thread name


def _kind(doc: dict[str, Any]) -> Any:
    threads["kind"] = threading.current_thread().name
    return doc["kind"]


def _broken_key(doc: Any) -> Any:
    raise LookupError("no kind on this document")


def refund(charged: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {"refunded": charged["charged"], "kind": ctx.kind, "as": ctx.step_name}


async def undo_async(result: Any) -> Any:
    await yield_to_loop()
    return {"undone": result}


def undo_goto(result: Any) -> Any:
    return goto("classify", result)


@step(compensate=refund)
def charge(doc: dict[str, Any]) -> dict[str, Any]:
    return {"charged": doc["amount"]}


def sign(doc: Any) -> Any:
    return doc


def item(x: Any, ctx: StepContext) -> Any:
    return {"x": x, "lane": ctx.lane_path, "kind": ctx.kind}


def merge(data: Any, results: Any) -> Any:
    threads["merge"] = threading.current_thread().name
    return {"data": data, "results": results}


async def merge_async(data: Any, results: list[Any], ctx: StepContext) -> Any:
    return {"n": len(results), "kind": ctx.kind, "group": ctx.step_name, "lane": ctx.lane_path}


def merge_goto(data: Any, results: Any) -> Any:
    return goto("classify", data)


wf = Workflow("flow")


@wf.step
def classify(doc: dict[str, Any]) -> Any:
    threads["classify"] = threading.current_thread().name
    if doc.get("again"):
        return goto("classify", {**doc, "again": False})
    if doc.get("jump") == "route":
        return goto("route", {"kind": doc["to"], "xs": doc.get("xs", [])})
    if doc.get("jump") == "bad":
        return goto("sign", doc)  # sign is inside a case: not in classify's sequence
    if doc.get("jump") == "nowhere":
        return goto("nowhere", doc)
    if doc.get("unencodable"):
        return goto("classify", object())
    return doc


wf.branch(
    "route",
    on=_kind,
    cases={
        "invoice": [charge, step(undo_async, name="pay")],
        "contract": [sign],
        "many": [foreach("fan", items="xs", steps=[item], into=merge)],
        "broken": [branch("broken_key", on=_broken_key, cases={"x": []})],
    },
    default=[],
)


@wf.step
async def after(data: Any, ctx: StepContext) -> Any:
    threads["after"] = threading.current_thread().name
    return data


wf.foreach(
    "each",
    items=lambda d: d["xs"] * d.get("times", 1),
    steps=[step(item, name="each_item")],
    into=merge_async,
)
wf.parallel(
    "checks",
    {
        "left": [branch("pick", on=len, cases={1: [step(sign, name="one")]}, default=[])],
        "right": [step(undo_async, name="right_step", compensate=undo_goto)],
    },
    into=merge_goto,
)
wf.step(compensate=undo_async)(step(sign, name="last"))

VERSION = definition_hash(to_definition(wf))
LIMIT = 300


def task(
    name: str, data: Any = None, *, kind: int = common_pb2.TASK_KIND_STEP, **fields: Any
) -> pb.Task:
    return pb.Task(
        task_id=9,
        lease_token="tok-9",
        execution_id="ex-1",
        workflow_name="flow",
        workflow_version=VERSION,
        step_name=name,
        sequence=4,
        attempt=1,
        input_json=fields.pop("input_json", None) or json.dumps(data),
        execution_input_json="{}",
        kind=kind,  # type: ignore[arg-type]  # 99 too: a kind newer than this worker
        **fields,
    )


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    runner = Runner([wf], {"flow": VERSION}, sink, concurrency=2, max_payload_bytes=LIMIT)
    threads.clear()
    try:
        yield runner, sink
    finally:
        runner.close()


async def run(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskCompletion | pb.TaskFailure:
    r, sink = runner
    await r.run(t)
    assert len(sink.reports) == 1
    return sink.reports.pop()


async def complete(runner: tuple[Runner, ListSink], t: pb.Task) -> pb.TaskCompletion:
    report = await run(runner, t)
    assert isinstance(report, pb.TaskCompletion), report
    assert report.lease == pb.TaskLease(task_id=9, lease_token="tok-9")
    return report


def values(report: pb.TaskCompletion) -> dict[str, str]:
    assert all(e.WhichOneof("outcome") == "value_json" for e in report.evaluations.values())
    return {name: e.value_json for name, e in report.evaluations.items()}


# -- STEP --------------------------------------------------------------------------------


async def test_a_step_before_a_branch_reports_the_key(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("classify", {"kind": "invoice", "amount": 5}))
    assert json.loads(report.result_json) == {"kind": "invoice", "amount": 5}
    assert report.goto_target == ""
    assert values(report) == {"route": '"invoice"'}
    # Sync step and its evaluation ran in the same worker thread, off the event loop.
    assert threads["kind"] == threads["classify"] != threading.current_thread().name


async def test_a_walk_into_a_case_and_its_foreach(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("classify", {"kind": "many", "xs": [1, 2]}))
    assert values(report) == {"route": '"many"', "fan": "[1,2]"}


async def test_a_step_before_a_step_reports_no_evaluations(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await complete(runner, task("charge", {"amount": 3}))
    assert report.result_json == '{"charged":3}'
    assert dict(report.evaluations) == {}
    report = await complete(runner, task("last", "end"))  # the last node: the end
    assert (report.result_json, dict(report.evaluations)) == ('"end"', {})


async def test_an_async_step_evaluates_on_the_loop(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("after", {"xs": ["a", {"b": 1}]}))
    assert values(report) == {"each": '["a",{"b":1}]'}
    assert threads["after"] == threading.current_thread().name


async def test_a_step_deep_in_a_case_or_lane_runs(runner: tuple[Runner, ListSink]) -> None:
    # pay ends the "invoice" case: after it comes "after", a step.
    report = await complete(runner, task("pay", {"p": 1}))
    assert (json.loads(report.result_json), dict(report.evaluations)) == (
        {"undone": {"p": 1}},
        {},
    )
    report = await complete(runner, task("one", 5, lane_path="checks/left"))
    assert (report.result_json, dict(report.evaluations)) == ("5", {})  # end of its lane


async def test_a_failing_key_is_an_error_evaluation_not_a_failure(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await complete(runner, task("classify", {"kind": "broken"}))
    assert set(report.evaluations) == {"route", "broken_key"}
    assert report.evaluations["route"].value_json == '"broken"'
    error = report.evaluations["broken_key"].error
    assert (error.type, error.message) == ("LookupError", "no kind on this document")
    assert "in _broken_key" in error.traceback
    assert "durable/_walk" not in error.traceback  # only the user's frames
    assert not error.non_retryable


async def test_a_bad_key_type_is_an_error_evaluation(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("classify", {"kind": 2.5}))
    error = report.evaluations["route"].error
    assert (error.type, error.message) == (
        "TypeError",
        "branch 'route' key must be a str, int or bool, got float",
    )


async def test_items_over_the_payload_limit_fail_the_foreach_only(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await complete(runner, task("classify", {"kind": "many", "xs": "abc"}))
    error = report.evaluations["fan"].error  # a str is not a list
    assert error.message == "foreach 'fan' items must be a list, got str"
    report = await complete(runner, task("after", {"xs": ["x" * 50], "times": 6}))
    assert json.loads(report.result_json) == {"xs": ["x" * 50], "times": 6}  # under the limit
    error = report.evaluations["each"].error
    assert error.type == "PayloadTooLarge"
    assert error.message.startswith("node 'each' evaluated to 319 bytes of JSON, over the limit")
    assert error.non_retryable


# -- goto --------------------------------------------------------------------------------


async def test_a_goto_back_to_itself(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("classify", {"again": True, "kind": "contract"}))
    assert report.goto_target == "classify"
    assert json.loads(report.result_json) == {"again": False, "kind": "contract"}
    assert dict(report.evaluations) == {}  # classify is a step: nothing to evaluate


async def test_a_goto_to_a_branch_evaluates_it_inclusive(
    runner: tuple[Runner, ListSink],
) -> None:
    report = await complete(runner, task("classify", {"jump": "route", "to": "many", "xs": [7]}))
    assert report.goto_target == "route"
    assert json.loads(report.result_json) == {"kind": "many", "xs": [7]}
    assert values(report) == {"route": '"many"', "fan": "[7]"}


@pytest.mark.parametrize("where", ["bad", "nowhere"])
async def test_a_goto_out_of_the_sequence_fails_for_good(
    runner: tuple[Runner, ListSink], where: str
) -> None:
    report = await run(runner, task("classify", {"jump": where}))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "GotoError"
    assert report.error.message == (
        f"step 'classify' returned goto({'sign' if where == 'bad' else 'nowhere'!r}), but the "
        "target must be a node of the step's own sequence: 'classify', 'route', 'after', "
        "'each', 'checks', 'last'"
    )
    assert report.error.non_retryable


async def test_goto_data_must_be_json(runner: tuple[Runner, ListSink]) -> None:
    report = await run(runner, task("classify", {"unencodable": True}))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "JSONSerializationError"


# -- ROUTE -------------------------------------------------------------------------------


async def test_a_route_passes_its_input_through_unchanged(
    runner: tuple[Runner, ListSink],
) -> None:
    text = '{"kind":  "many", "xs": [1,  2]}'  # not re-encoded: the very same text
    report = await complete(runner, task("route", kind=common_pb2.TASK_KIND_ROUTE, input_json=text))
    assert report.result_json == text
    assert report.goto_target == ""
    assert values(report) == {"route": '"many"', "fan": "[1,2]"}
    assert threads["kind"] != threading.current_thread().name  # in a thread


async def test_a_route_at_the_start_of_a_lane(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(
        runner, task("pick", [1], kind=common_pb2.TASK_KIND_ROUTE, lane_path="checks/left")
    )
    assert (report.result_json, values(report)) == ("[1]", {"pick": "1"})


async def test_a_route_to_a_foreach_and_to_a_step(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("each", {"xs": []}, kind=common_pb2.TASK_KIND_ROUTE))
    assert values(report) == {"each": "[]"}
    report = await complete(runner, task("after", {"xs": []}, kind=common_pb2.TASK_KIND_ROUTE))
    assert dict(report.evaluations) == {}


async def test_a_route_with_bad_json_fails_for_good(runner: tuple[Runner, ListSink]) -> None:
    report = await run(runner, task("route", kind=common_pb2.TASK_KIND_ROUTE, input_json="{x"))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "InputDecodeError"
    assert report.error.non_retryable


# -- INTO --------------------------------------------------------------------------------


async def test_an_into_merges_and_walks_after_its_group(runner: tuple[Runner, ListSink]) -> None:
    payload = {"data": {"xs": [1]}, "results": [{"x": 1}]}
    report = await complete(runner, task("fan", payload, kind=common_pb2.TASK_KIND_INTO))
    assert json.loads(report.result_json) == payload
    assert dict(report.evaluations) == {}  # fan ends case "many"; after it comes a step
    assert threads["merge"] != threading.current_thread().name


async def test_an_async_into_gets_its_context(runner: tuple[Runner, ListSink]) -> None:
    payload = {"data": {"xs": [1, 2]}, "results": [1, 2]}
    report = await complete(
        runner, task("each", payload, kind=common_pb2.TASK_KIND_INTO, lane_path="outer/3")
    )
    assert json.loads(report.result_json) == {
        "n": 2,
        "kind": "into",
        "group": "each",
        "lane": "outer/3",
    }


async def test_an_into_can_goto(runner: tuple[Runner, ListSink]) -> None:
    # More in test_worker_into_goto.py.
    payload: dict[str, Any] = {"data": {"kind": "contract"}, "results": {}}
    report = await complete(runner, task("checks", payload, kind=common_pb2.TASK_KIND_INTO))
    assert report.goto_target == "classify"
    assert json.loads(report.result_json) == {"kind": "contract"}
    assert dict(report.evaluations) == {}  # classify is a step: nothing to evaluate


@pytest.mark.parametrize("payload", [[1], {"data": 1}, {"results": []}, None])
async def test_an_into_with_a_bad_input_fails_for_good(
    runner: tuple[Runner, ListSink], payload: Any
) -> None:
    report = await run(runner, task("fan", payload, kind=common_pb2.TASK_KIND_INTO))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "InputDecodeError"
    assert report.error.message.startswith(
        'the input of the into task of \'fan\' must be an object with "data" and "results"'
    )
    assert report.error.non_retryable


# -- COMPENSATION ------------------------------------------------------------------------


async def test_a_compensation_gets_the_step_result(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(
        runner,
        task(
            "refund",
            {"charged": 5},
            kind=common_pb2.TASK_KIND_COMPENSATION,
            compensated_step="charge",
        ),
    )
    assert json.loads(report.result_json) == {
        "refunded": 5,
        "kind": TaskKind.COMPENSATION,
        "as": "refund",
    }
    assert (report.goto_target, dict(report.evaluations)) == ("", {})


async def test_an_async_compensation_reports_no_evaluations(
    runner: tuple[Runner, ListSink],
) -> None:
    # undo_async compensates "last"; even a route-like walk is never made for it.
    report = await complete(
        runner, task("undo_async", {"kind": "invoice"}, kind=common_pb2.TASK_KIND_COMPENSATION)
    )
    assert json.loads(report.result_json) == {"undone": {"kind": "invoice"}}
    assert dict(report.evaluations) == {}


async def test_a_compensation_cannot_goto(runner: tuple[Runner, ListSink]) -> None:
    report = await run(runner, task("undo_goto", 1, kind=common_pb2.TASK_KIND_COMPENSATION))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == "GotoError"
    assert report.error.message == (
        "compensation 'undo_goto' returned goto('classify', 1): only a step or an into merge "
        "can go to another node"
    )
    assert report.error.non_retryable


# -- lanes and kinds ---------------------------------------------------------------------


async def test_a_step_in_a_foreach_lane_gets_its_lane(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(runner, task("item", 4, lane_path="route/many/fan/0"))
    assert json.loads(report.result_json) == {"x": 4, "lane": "route/many/fan/0", "kind": "step"}


async def test_an_unspecified_kind_is_a_step(runner: tuple[Runner, ListSink]) -> None:
    report = await complete(
        runner, task("classify", {"kind": "contract"}, kind=common_pb2.TASK_KIND_UNSPECIFIED)
    )
    assert values(report) == {"route": '"contract"'}


@pytest.mark.parametrize(
    ("name", "kind", "error_type", "message"),
    [
        ("route", common_pb2.TASK_KIND_STEP, "UnknownStep", "workflow 'flow' has no step 'route'"),
        ("refund", common_pb2.TASK_KIND_STEP, "UnknownStep", "has no step 'refund'"),
        ("charge", common_pb2.TASK_KIND_COMPENSATION, "UnknownStep", "no compensation 'charge'"),
        ("nope", common_pb2.TASK_KIND_ROUTE, "UnknownStep", "has no node 'nope'"),
        ("route", common_pb2.TASK_KIND_INTO, "UnknownStep", "no parallel or foreach 'route' with"),
        ("nope", common_pb2.TASK_KIND_INTO, "UnknownStep", "no parallel or foreach 'nope' with"),
        ("classify", 99, "UnknownTaskKind", "unknown task kind (99)"),
    ],
)
async def test_tasks_this_worker_cannot_run_fail_for_good(
    runner: tuple[Runner, ListSink], name: str, kind: int, error_type: str, message: str
) -> None:
    report = await run(runner, task(name, {}, kind=kind))
    assert isinstance(report, pb.TaskFailure)
    assert report.error.type == error_type
    assert message in report.error.message
    assert report.error.non_retryable


def test_the_parallel_definition_of_this_module() -> None:
    # A sanity check that the module's workflow is what the tests above assume.
    assert [n.name for n in wf.nodes] == ["classify", "route", "after", "each", "checks", "last"]
    assert isinstance(wf.get_node("checks"), type(parallel("x", [sign])))
