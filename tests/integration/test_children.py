"""Child workflows at the protocol level: suspensions, waits, wake-ups and bad input."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc import StatusCode as Code

from durable import Workflow
from durable.v1 import common_pb2 as S
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.ids import child_execution_id
from tests.helpers.raw import RawClient, snapshot

parent = Workflow("parent")


@parent.step
def spawn(data: object) -> object:
    return data


kid = Workflow("kid")


@kid.step
def work(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(parent, kid)
    return client


def _lease(task: wpb.Task) -> wpb.TaskLease:
    return wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)


def _start(index: int, data: str = "{}", workflow: str = "kid") -> wpb.ChildStart:
    return wpb.ChildStart(index=index, workflow_name=workflow, input_json=data)


async def _suspend(
    raw: RawClient, task: wpb.Task, wait_index: int, *starts: wpb.ChildStart
) -> None:
    await raw.workers.SuspendTasks(
        wpb.SuspendTasksRequest(
            worker_id=raw.worker_id,
            suspensions=[
                wpb.TaskSuspension(
                    lease=_lease(task), children=starts, child=wpb.ChildWait(index=wait_index)
                )
            ],
        )
    )


async def _one(raw: RawClient, step: str) -> wpb.Task:
    tasks = [t for t in await raw.poll(wait=2) if t.step_name == step]
    assert len(tasks) == 1, tasks
    return tasks[0]


async def test_a_wait_on_a_child_that_already_ended_wakes_at_once(raw: RawClient) -> None:
    parent_id = await raw.start("parent", '{"n": 1}')
    run1 = await _one(raw, "spawn")
    await _suspend(raw, run1, 1, _start(0, '"first"'), _start(1, '"second"'))
    first = child_execution_id(parent_id, run1.sequence, 0)
    second = child_execution_id(parent_id, run1.sequence, 1)
    assert (await raw.get(parent_id)).status == S.EXECUTION_STATUS_WAITING

    # Both children run; the first ends while nobody waits for it.
    kids = {t.execution_id: t for t in await raw.poll(wait=2)}
    assert set(kids) == {first, second}
    await raw.complete(kids[first], '"one"')
    assert (await raw.get(parent_id)).status == S.EXECUTION_STATUS_WAITING
    await raw.complete(kids[second], '"two"')

    # The second one woke the parent step, with its outcome in the memo.
    run2 = await _one(raw, "spawn")
    assert (run2.sequence, run2.attempt) == (run1.sequence, run1.attempt)
    assert json.loads(run2.memo_json) == {"1": {"ok": True, "value": "two"}}

    # Waiting now on the first child, which has ended: the step is ready again at once.
    await _suspend(raw, run2, 0)
    run3 = await _one(raw, "spawn")
    assert json.loads(run3.memo_json) == {
        "0": {"ok": True, "value": "one"},
        "1": {"ok": True, "value": "two"},
    }
    await raw.complete(run3, '"done"')
    done = await raw.get(parent_id)
    assert done.status == S.EXECUTION_STATUS_COMPLETED
    reply = await raw.flows.ListChildren(pb.ListChildrenRequest(parent_execution_id=parent_id))
    assert sorted(e.id for e in reply.executions) == sorted([first, second])


async def test_starting_the_same_child_again_creates_nothing(raw: RawClient) -> None:
    parent_id = await raw.start("parent", "{}")
    run1 = await _one(raw, "spawn")
    await _suspend(raw, run1, 0, _start(0, '"x"'))
    child = await _one(raw, "work")
    await raw.complete(child, '"ok"')
    run2 = await _one(raw, "spawn")
    # The re-run's completion repeats the start of child 0 and adds a fire-and-forget child 1:
    # child ids are derived from (parent, sequence, index), so child 0 is not created again.
    await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id=raw.worker_id,
            completions=[
                wpb.TaskCompletion(
                    lease=_lease(run2), result_json='"parent done"', children=[_start(0), _start(1)]
                )
            ],
        )
    )
    reply = await raw.flows.ListChildren(pb.ListChildrenRequest(parent_execution_id=parent_id))
    assert len(reply.executions) == 2  # index 0 (from the suspension) and index 1


async def test_an_unknown_child_workflow_fails_the_step_for_good(raw: RawClient) -> None:
    parent_id = await raw.start("parent", "{}")
    run1 = await _one(raw, "spawn")
    await _suspend(raw, run1, 0, _start(0, workflow="no_such_workflow"))
    got = await raw.get(parent_id)
    assert got.status == S.EXECUTION_STATUS_FAILED
    assert got.error.type == "ChildWorkflowNotFound"
    assert "'no_such_workflow', which is not registered" in got.error.message
    reply = await raw.flows.ListChildren(pb.ListChildrenRequest(parent_execution_id=parent_id))
    assert list(reply.executions) == []


async def test_suspending_with_a_stale_lease_changes_nothing(
    raw: RawClient, database_url: str
) -> None:
    await raw.start("parent", "{}")
    run1 = await _one(raw, "spawn")
    stale = wpb.Task(task_id=run1.task_id, lease_token="00000000-0000-4000-8000-000000000000")
    before = await snapshot(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _suspend(raw, stale, 0, _start(0))
    assert err.value.code() == Code.FAILED_PRECONDITION
    assert await snapshot(database_url) == before


@pytest.mark.parametrize(
    ("suspension", "message"),
    [
        (wpb.TaskSuspension(children=[_start(0)]), "a suspension needs a wait"),
        (
            wpb.TaskSuspension(children=[_start(-1)], child=wpb.ChildWait(index=0)),
            "child index must be >= 0",
        ),
        (
            wpb.TaskSuspension(children=[_start(0), _start(0)], child=wpb.ChildWait(index=0)),
            "two children with the same index",
        ),
        (
            wpb.TaskSuspension(children=[_start(0, "{bad")], child=wpb.ChildWait(index=0)),
            "input_json of child 0 of task",
        ),
    ],
    ids=["no-wait", "negative-index", "duplicate-index", "malformed-input"],
)
async def test_bad_suspensions_are_refused(
    raw: RawClient, database_url: str, suspension: wpb.TaskSuspension, message: str
) -> None:
    await raw.start("parent", "{}")
    run1 = await _one(raw, "spawn")
    suspension.lease.CopyFrom(_lease(run1))
    before = await snapshot(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw.workers.SuspendTasks(
            wpb.SuspendTasksRequest(worker_id=raw.worker_id, suspensions=[suspension])
        )
    assert err.value.code() == Code.INVALID_ARGUMENT
    assert message in (err.value.details() or "")
    assert await snapshot(database_url) == before


async def test_list_children_of_an_unknown_or_malformed_parent(raw: RawClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw.flows.ListChildren(
            pb.ListChildrenRequest(parent_execution_id="0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f")
        )
    assert err.value.code() == Code.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await raw.flows.ListChildren(pb.ListChildrenRequest(parent_execution_id="nope"))
    assert err.value.code() == Code.INVALID_ARGUMENT
