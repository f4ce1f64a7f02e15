"""CompleteTasks hands the next tasks straight back to the reporting worker when it has room."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from durable._definition import to_definition
from durable.v1 import operations_service_pb2 as opb
from durable.v1 import operations_service_pb2_grpc as ogrpc
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import worker_service_pb2_grpc as wgrpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc
from examples.order import process_order


def _done(task: wpb.Task, result: str = "{}") -> wpb.TaskCompletion:
    return wpb.TaskCompletion(
        lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
        result_json=result,
    )


async def _first_task(channel: grpc.aio.Channel) -> wpb.Task:
    workers = wgrpc.WorkerServiceStub(channel)
    await workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(worker_id="w1", workflows=[to_definition(process_order)])
    )
    await pbgrpc.WorkflowServiceStub(channel).StartWorkflow(
        pb.StartWorkflowRequest(workflow_name="process_order", input_json='{"id": 7}')
    )
    polled = await workers.PollTasks(wpb.PollTasksRequest(worker_id="w1", max_tasks=1))
    return polled.tasks[0]


async def test_the_next_step_comes_back_leased_with_the_report(channel: grpc.aio.Channel) -> None:
    workers = wgrpc.WorkerServiceStub(channel)
    first = await _first_task(channel)
    assert first.step_name == "validate"
    response = await workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id="w1", completions=[_done(first, '{"ok": 1}')], max_next_tasks=5
        )
    )
    [second] = response.next_tasks
    assert second.step_name == "charge"
    assert second.input_json == '{"ok": 1}'
    assert second.execution_input_json == '{"id": 7}'
    # It is leased to this worker: nobody can poll it, and its lease completes it.
    polled = await workers.PollTasks(
        wpb.PollTasksRequest(worker_id="w1", max_tasks=5, wait_timeout=Duration(seconds=0))
    )
    assert list(polled.tasks) == []
    done = await workers.CompleteTasks(
        wpb.CompleteTasksRequest(worker_id="w1", completions=[_done(second)], max_next_tasks=5)
    )
    assert list(done.next_tasks) == []  # the execution is over
    execution = await pbgrpc.WorkflowServiceStub(channel).GetExecution(
        pb.GetExecutionRequest(execution_id=second.execution_id, include_steps=True)
    )
    assert execution.execution.result_json == "{}"
    assert [s.step_name for s in execution.execution.steps] == ["validate", "charge"]


@pytest.mark.parametrize("case", ["no room", "other queue", "paused queue"])
async def test_no_next_task_without_room_or_on_other_queues(
    channel: grpc.aio.Channel, case: str
) -> None:
    workers = wgrpc.WorkerServiceStub(channel)
    first = await _first_task(channel)
    if case == "paused queue":
        await ogrpc.OperationsServiceStub(channel).PauseQueue(
            opb.PauseQueueRequest(queue="default")
        )
    response = await workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id="w1",
            completions=[_done(first)],
            max_next_tasks=0 if case == "no room" else 3,
            queues=["elsewhere"] if case == "other queue" else [],
        )
    )
    assert list(response.next_tasks) == []
    if case == "paused queue":
        await ogrpc.OperationsServiceStub(channel).ResumeQueue(
            opb.ResumeQueueRequest(queue="default")
        )
    polled = await workers.PollTasks(wpb.PollTasksRequest(worker_id="w1", max_tasks=5))
    assert [t.step_name for t in polled.tasks] == ["charge"]  # ready for anyone


async def test_max_next_tasks_out_of_range_is_refused(channel: grpc.aio.Channel) -> None:
    workers = wgrpc.WorkerServiceStub(channel)
    first = await _first_task(channel)
    for bad in (-1, 1001):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await workers.CompleteTasks(
                wpb.CompleteTasksRequest(
                    worker_id="w1", completions=[_done(first)], max_next_tasks=bad
                )
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "max_next_tasks" in (err.value.details() or "")
