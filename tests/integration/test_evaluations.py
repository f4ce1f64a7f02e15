"""Evaluations in reports (a ROUTE task's own is required; names are control nodes); branch keys."""

from __future__ import annotations

import grpc
import pytest

from durable._shared import definition_hash
from durable.v1 import common_pb2
from durable.v1 import definition_pb2 as d
from durable.v1 import worker_service_pb2 as wpb
from tests.helpers.raw import RawClient, snapshot


def _step(name: str) -> d.Node:
    return d.Node(step=d.Step(name=name))


def _branch(name: str, keys: list[str]) -> d.Node:
    cases = [d.BranchCase(key_json=k, nodes=[_step(f"on_{i}")]) for i, k in enumerate(keys)]
    return d.Node(branch=d.Branch(name=name, cases=cases))


ROUTED = d.WorkflowDefinition(name="routed", nodes=[_branch("pick", ['"a"', '"b"']), _step("last")])
FANNED = d.WorkflowDefinition(
    name="fanned", nodes=[d.Node(foreach=d.Foreach(name="each", nodes=[_step("item")]))]
)


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(worker_id=client.worker_id, workflows=[ROUTED, FANNED])
    )
    return client


async def _route_task(raw: RawClient, workflow: str) -> wpb.Task:
    await raw.start(workflow, '{"k": 1}')
    [task] = await raw.poll()
    assert task.kind == common_pb2.TASK_KIND_ROUTE
    return task


async def _complete(
    raw: RawClient, task: wpb.Task, **evaluations: wpb.Evaluation
) -> list[wpb.Task]:
    reply = await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id=raw.worker_id,
            completions=[
                wpb.TaskCompletion(
                    lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
                    result_json=task.input_json,
                    evaluations=evaluations,
                )
            ],
            max_next_tasks=5,
        )
    )
    return list(reply.next_tasks)


async def _refused(raw: RawClient, database_url: str, task: wpb.Task, **ev: wpb.Evaluation) -> str:
    before = await snapshot(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _complete(raw, task, **ev)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await snapshot(database_url) == before
    return caught.value.details() or ""


@pytest.mark.parametrize(
    ("workflow", "words"),
    [
        ("routed", "the ROUTE task of branch 'pick' completed without the evaluation of 'pick'"),
        ("fanned", "the ROUTE task of foreach 'each' completed without the evaluation of 'each'"),
    ],
)
async def test_a_route_completion_without_its_nodes_evaluation_is_refused(
    raw: RawClient, database_url: str, workflow: str, words: str
) -> None:
    task = await _route_task(raw, workflow)
    details = await _refused(raw, database_url, task)
    assert f"task {task.task_id}: {words}" in details


@pytest.mark.parametrize("name", ["nowhere", "last", "on_0"])
async def test_an_evaluation_of_no_branch_or_foreach_is_refused(
    raw: RawClient, database_url: str, name: str
) -> None:
    task = await _route_task(raw, "routed")
    evaluations = {"pick": wpb.Evaluation(value_json='"a"'), name: wpb.Evaluation(value_json="1")}
    details = await _refused(raw, database_url, task, **evaluations)
    assert f"evaluation {name!r} names no branch or foreach of workflow 'routed'" in details


async def test_a_route_completion_with_its_evaluation_moves_on(raw: RawClient) -> None:
    task = await _route_task(raw, "routed")
    [following] = await _complete(raw, task, pick=wpb.Evaluation(value_json='"b"'))
    assert (following.kind, following.step_name) == (common_pb2.TASK_KIND_STEP, "on_1")
    fan = await _route_task(raw, "fanned")
    error = common_pb2.ErrorInfo(type="KeyError", message="items")
    assert await _complete(raw, fan, each=wpb.Evaluation(error=error)) == []  # the lane failed


# -- branch keys compare in canonical form -------------------------------------------------


async def test_a_key_escaped_by_one_writer_selects_the_case_another_wrote(
    raw: RawClient,
) -> None:
    # The definition as JavaScript writes it; the evaluation as Python's json.dumps does.
    written = d.WorkflowDefinition(name="accents", nodes=[_branch("pick", ['"tea"', '"café"'])])
    reply = await raw.workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(worker_id=raw.worker_id, workflows=[ROUTED, FANNED, written])
    )
    assert reply.workflows[2].version == definition_hash(written)  # the bytes as sent
    task = await _route_task(raw, "accents")
    [following] = await _complete(raw, task, pick=wpb.Evaluation(value_json='"caf\\u00e9"'))
    assert following.step_name == "on_1"


async def test_two_cases_of_one_canonical_key_are_refused(
    channel: grpc.aio.Channel, database_url: str
) -> None:
    twice = d.WorkflowDefinition(name="twice", nodes=[_branch("pick", ['"café"', '"caf\\u00e9"'])])
    before = await snapshot(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await RawClient(channel).workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="w", workflows=[twice])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "workflow 'twice': branch 'pick' has two cases of the key \"café\"" in (
        caught.value.details() or ""
    )
    assert await snapshot(database_url) == before
