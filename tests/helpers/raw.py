"""Speak WorkerService/WorkflowService directly, as a worker in any language would."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import grpc
from google.protobuf.duration_pb2 import Duration

from durable._definition import to_definition
from durable._dsl import Workflow
from durable.v1 import common_pb2
from durable.v1 import schedule_service_pb2_grpc as sgrpc
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import worker_service_pb2_grpc as wgrpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc


class RawClient:
    """Both services over one channel, with short helpers for tests."""

    def __init__(self, channel: grpc.aio.Channel, worker_id: str = "test-worker") -> None:
        self.flows = pbgrpc.WorkflowServiceStub(channel)
        self.workers = wgrpc.WorkerServiceStub(channel)
        self.schedules = sgrpc.ScheduleServiceStub(channel)
        self.worker_id = worker_id

    async def register(self, *workflows: Workflow, worker_id: str | None = None) -> list[str]:
        reply = await self.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(
                worker_id=worker_id or self.worker_id,
                workflows=[to_definition(w) for w in workflows],
            )
        )
        return [w.version for w in reply.workflows]

    async def start(self, name: str, input_json: str = "null", **kwargs: object) -> str:
        reply = await self.flows.StartWorkflow(
            pb.StartWorkflowRequest(workflow_name=name, input_json=input_json, **kwargs)
        )
        return reply.execution_id

    async def poll(
        self,
        max_tasks: int = 10,
        *,
        queues: Sequence[str] = (),
        wait: float = 0.0,
        worker_id: str | None = None,
    ) -> list[wpb.Task]:
        reply = await self.workers.PollTasks(
            wpb.PollTasksRequest(
                worker_id=worker_id or self.worker_id,
                queues=list(queues),
                max_tasks=max_tasks,
                wait_timeout=Duration(nanos=int(wait * 1e9) % 1_000_000_000, seconds=int(wait)),
            )
        )
        return list(reply.tasks)

    async def complete(
        self, task: wpb.Task, result_json: str = "{}", token: str | None = None
    ) -> None:
        await self.workers.CompleteTasks(
            wpb.CompleteTasksRequest(
                worker_id=self.worker_id,
                completions=[
                    wpb.TaskCompletion(
                        lease=wpb.TaskLease(
                            task_id=task.task_id, lease_token=token or task.lease_token
                        ),
                        result_json=result_json,
                    )
                ],
            )
        )

    async def fail(
        self,
        task: wpb.Task,
        error_type: str = "ValueError",
        message: str = "boom",
        *,
        non_retryable: bool = False,
        timed_out: bool = False,
    ) -> None:
        await self.workers.FailTasks(
            wpb.FailTasksRequest(
                worker_id=self.worker_id,
                failures=[
                    wpb.TaskFailure(
                        lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
                        error=common_pb2.ErrorInfo(
                            type=error_type, message=message, non_retryable=non_retryable
                        ),
                        timed_out=timed_out,
                    )
                ],
            )
        )

    async def get(self, execution_id: str, *, steps: bool = True) -> pb.Execution:
        reply = await self.flows.GetExecution(
            pb.GetExecutionRequest(execution_id=execution_id, include_steps=steps)
        )
        return reply.execution


async def snapshot(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the state tables, to assert that a rejected call changed nothing."""
    conn = await asyncpg.connect(database_url)
    try:
        out = {}
        for table in (
            "executions",
            "tasks",
            "step_attempts",
            "timers",
            "workflows",
            "groups",
            "lanes",
            "waits",
            "events",
            "schedules",
            "schedule_fires",
        ):
            rows = await conn.fetch(f"SELECT * FROM durable.{table}")
            out[table] = sorted(tuple(map(str, r.values())) for r in rows)
        return out
    finally:
        await conn.close()
