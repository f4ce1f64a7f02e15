"""GetExecutionGraph at the protocol level: a workflow's graph, and an execution's states."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc import StatusCode as Code

from durable import Workflow
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until


def _fn(name: str) -> Any:
    def run(data: Any) -> Any:
        return data

    run.__name__ = name
    return run


def undo_prepare(data: Any) -> Any:
    return data


flow = Workflow("graph_flow")


@flow.step(compensate=undo_prepare)
def prepare(data: Any) -> Any:
    return data


flow.branch("route", on=lambda d: d["kind"], cases={"a": [_fn("do_a")], "b": [_fn("do_b")]})
flow.parallel("checks", {"x": [_fn("check_x")], "y": [_fn("check_y")]})


@flow.step
def finish(data: Any) -> Any:
    return data


# A workflow whose first node is a parallel group of two plain steps.
fanout = Workflow("graph_fanout")
fanout.parallel("both", [_fn("left"), _fn("right")])


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(flow, fanout)
    return client


async def _graph(raw: RawClient, fmt: int = pb.GRAPH_FORMAT_UNSPECIFIED, **ask: str) -> str:
    reply = await raw.flows.GetExecutionGraph(pb.GetExecutionGraphRequest(format=fmt, **ask))  # type: ignore[arg-type]
    assert reply.format == (fmt or pb.GRAPH_FORMAT_MERMAID)
    return reply.text


async def _one(raw: RawClient, step: str) -> wpb.Task:
    async def found() -> wpb.Task | None:
        tasks = await raw.poll()
        assert [t.step_name for t in tasks] in ([], [step])
        return tasks[0] if tasks else None

    return await wait_until(found)


async def _complete(raw: RawClient, task: wpb.Task, result: str = "{}", **evaluations: str) -> None:
    await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id=raw.worker_id,
            completions=[
                wpb.TaskCompletion(
                    lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
                    result_json=result,
                    evaluations={k: wpb.Evaluation(value_json=v) for k, v in evaluations.items()},
                )
            ],
        )
    )


async def test_a_workflow_graph_has_no_state(raw: RawClient) -> None:
    text = await _graph(raw, workflow_name="graph_flow")
    assert text.startswith("---\ntitle: graph_flow\n---\nflowchart TD\n")
    assert '    b_route{"route"}\n' in text
    assert '    b_route -->|"a"| s_do_a\n' in text
    assert '    subgraph cl_p_checks ["parallel checks"]\n' in text
    assert '    s_prepare -.->|"compensate"| c_undo_prepare\n' in text
    assert "classDef" not in text
    dot = await _graph(raw, pb.GRAPH_FORMAT_DOT, workflow_name="graph_flow")
    assert dot.startswith('digraph "graph_flow" {\n')
    assert "  subgraph cluster_cl_p_checks {\n" in dot


async def test_an_execution_graph_shows_each_nodes_state(raw: RawClient) -> None:
    execution_id = await raw.start("graph_flow", '{"kind": "a"}')
    text = await _graph(raw, execution_id=execution_id)
    assert f"title: graph_flow - execution {execution_id} (pending)\n" in text
    everything = "wf_start,s_prepare,b_route,s_do_a,s_do_b,p_checks,s_check_x,s_check_y"
    assert f"    class {everything},pj_checks,s_finish,wf_end pending\n" in text

    await _complete(raw, await _one(raw, "prepare"), '{"kind": "a"}', route='"a"')
    await _complete(raw, await _one(raw, "do_a"))
    tasks = await wait_until(lambda: raw.poll(max_tasks=2))
    by_name = {t.step_name: t for t in tasks}
    assert set(by_name) == {"check_x", "check_y"}
    await _complete(raw, by_name["check_x"])
    suspension = wpb.TaskSuspension(
        lease=wpb.TaskLease(
            task_id=by_name["check_y"].task_id, lease_token=by_name["check_y"].lease_token
        ),
        events=wpb.EventWait(index=0, names=["stock.ready"]),
    )
    await raw.workers.SuspendTasks(
        wpb.SuspendTasksRequest(worker_id=raw.worker_id, suspensions=[suspension])
    )

    text = await _graph(raw, execution_id=execution_id)
    assert f"title: graph_flow - execution {execution_id} (waiting)\n" in text
    for line in (
        's_prepare["prepare<br/>completed"]',
        'c_undo_prepare{{"undo_prepare"}}',  # nothing to undo: no state
        's_do_a["do_a<br/>completed"]',
        's_do_b["do_b<br/>skipped"]',
        's_check_x["check_x<br/>completed"]',
        's_check_y["check_y<br/>waiting<br/>waits for event stock.ready"]',
        's_finish["finish<br/>pending"]',
    ):
        assert line in text
    assert "    class s_check_y waiting\n" in text
    assert "    class s_do_b skipped\n" in text
    assert "    class pj_checks,s_finish,wf_end pending\n" in text

    await raw.flows.SendEvent(
        pb.SendEventRequest(execution_id=execution_id, name="stock.ready", payload_json="1")
    )
    await _complete(raw, await _one(raw, "check_y"))
    await raw.fail(await _one(raw, "finish"), "ValueError", "no", non_retryable=True)
    await _complete(raw, await _one(raw, "undo_prepare"))
    done = await raw.get(execution_id)
    assert done.status == common_pb2.EXECUTION_STATUS_COMPENSATED

    dot = await _graph(raw, pb.GRAPH_FORMAT_DOT, execution_id=execution_id)
    assert f'label="graph_flow - execution {execution_id} (compensated)"' in dot
    for line in (
        '  s_finish [label="finish\\nfailed\\nValueError", shape="box", style="rounded,filled"',
        '  c_undo_prepare [label="undo_prepare\\ncompleted", shape="hexagon"',
        '  s_check_y [label="check_y\\ncompleted", shape="box"',
        '  wf_end [label="end\\ncompensated", shape="oval"',
    ):
        assert line in dot


async def test_a_route_task_and_parallel_lanes(raw: RawClient) -> None:
    execution_id = await raw.start("graph_fanout")
    # A group first in the workflow starts with a route task, at the group's fork.
    route = await _one(raw, "both")
    assert route.kind == common_pb2.TASK_KIND_ROUTE
    text = await _graph(raw, execution_id=execution_id)
    assert "    class p_both running\n" in text
    await _complete(raw, route)
    tasks = await wait_until(lambda: raw.poll(max_tasks=2))
    assert {t.step_name for t in tasks} == {"left", "right"}
    [left] = [t for t in tasks if t.step_name == "left"]
    await _complete(raw, left)
    text = await _graph(raw, execution_id=execution_id)
    assert 's_left["left<br/>completed"]' in text
    assert 's_right["right<br/>running"]' in text
    assert "    class wf_start,p_both,s_left completed\n" in text
    assert "    class pj_both,wf_end pending\n" in text


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (pb.GetExecutionGraphRequest(), Code.INVALID_ARGUMENT, "either execution_id or"),
        (
            pb.GetExecutionGraphRequest(
                execution_id="0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", workflow_name="graph_flow"
            ),
            Code.INVALID_ARGUMENT,
            "either execution_id or",
        ),
        (
            pb.GetExecutionGraphRequest(execution_id="0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f"),
            Code.NOT_FOUND,
            "does not exist",
        ),
        (pb.GetExecutionGraphRequest(workflow_name="nope"), Code.NOT_FOUND, "not registered"),
        (pb.GetExecutionGraphRequest(execution_id="not-an-id"), Code.INVALID_ARGUMENT, ""),
        (
            pb.GetExecutionGraphRequest(workflow_name="graph_flow", format=7),  # type: ignore[arg-type]
            Code.INVALID_ARGUMENT,
            "not a GraphFormat",
        ),
    ],
)
async def test_bad_requests(
    raw: RawClient, request_: pb.GetExecutionGraphRequest, code: Code, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw.flows.GetExecutionGraph(request_)
    assert err.value.code() == code
    assert message in (err.value.details() or "")
