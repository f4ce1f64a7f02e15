from __future__ import annotations

import grpc
from google.protobuf.duration_pb2 import Duration

from durable._definition import to_definition
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import worker_service_pb2_grpc as wgrpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc
from examples.order import process_order
from tests.helpers.orchestrator import running_orchestrator


async def test_raw_protocol_round_trip(database_url: str) -> None:
    async with running_orchestrator(database_url) as orch:
        async with grpc.aio.insecure_channel(orch.address) as ch:
            workers = wgrpc.WorkerServiceStub(ch)
            flows = pbgrpc.WorkflowServiceStub(ch)
            reg = await workers.RegisterWorkflows(
                wpb.RegisterWorkflowsRequest(
                    worker_id="w1", workflows=[to_definition(process_order)]
                )
            )
            assert reg.workflows[0].created
            started = await flows.StartWorkflow(
                pb.StartWorkflowRequest(
                    workflow_name="process_order", input_json='{"id": 1, "items": [1]}'
                )
            )
            for expected_step, result in (("validate", '{"a": 1}'), ("charge", '{"b": 2}')):
                polled = await workers.PollTasks(
                    wpb.PollTasksRequest(
                        worker_id="w1", max_tasks=5, wait_timeout=Duration(seconds=2)
                    )
                )
                assert [t.step_name for t in polled.tasks] == [expected_step]
                t = polled.tasks[0]
                await workers.CompleteTasks(
                    wpb.CompleteTasksRequest(
                        worker_id="w1",
                        completions=[
                            wpb.TaskCompletion(
                                lease=wpb.TaskLease(task_id=t.task_id, lease_token=t.lease_token),
                                result_json=result,
                            )
                        ],
                    )
                )
            got = await flows.GetExecution(
                pb.GetExecutionRequest(execution_id=started.execution_id, include_steps=True)
            )
            assert got.execution.result_json == '{"b": 2}'
            assert [s.step_name for s in got.execution.steps] == ["validate", "charge"]
