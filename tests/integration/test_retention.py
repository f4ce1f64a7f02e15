"""Retention: finished executions older than the configured age leave the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import grpc

from durable._definition import to_definition
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import worker_service_pb2_grpc as wgrpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc
from durable_server.clock import ManualClock
from examples.order import process_order
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until


async def _finish_one(ch: grpc.aio.Channel, n: int) -> str:
    """Start an execution and run its two steps to completion by hand."""
    workers = wgrpc.WorkerServiceStub(ch)
    started = await pbgrpc.WorkflowServiceStub(ch).StartWorkflow(
        pb.StartWorkflowRequest(workflow_name="process_order", input_json=f'{{"id": {n}}}')
    )
    for _ in range(2):
        polled = await workers.PollTasks(wpb.PollTasksRequest(worker_id="w1", max_tasks=1))
        t = polled.tasks[0]
        await workers.CompleteTasks(
            wpb.CompleteTasksRequest(
                worker_id="w1",
                completions=[
                    wpb.TaskCompletion(
                        lease=wpb.TaskLease(task_id=t.task_id, lease_token=t.lease_token),
                        result_json="{}",
                    )
                ],
            )
        )
    return started.execution_id


async def test_finished_executions_are_deleted_after_the_retention_age(
    database_url: str, manual_clock: ManualClock
) -> None:
    async with running_orchestrator(database_url, clock=manual_clock, retention_days=7) as orch:
        async with grpc.aio.insecure_channel(orch.address) as ch:
            await wgrpc.WorkerServiceStub(ch).RegisterWorkflows(
                wpb.RegisterWorkflowsRequest(
                    worker_id="w1", workflows=[to_definition(process_order)]
                )
            )
            old = await _finish_one(ch, 1)
            manual_clock.advance(timedelta(days=5))
            recent = await _finish_one(ch, 2)
            pending = await pbgrpc.WorkflowServiceStub(ch).StartWorkflow(
                pb.StartWorkflowRequest(workflow_name="process_order", input_json="{}")
            )
            conn = await asyncpg.connect(database_url)
            try:

                async def kept() -> set[str]:
                    rows = await conn.fetch("SELECT id::text FROM durable.executions")
                    return {r["id"] for r in rows}

                async def attempts_of(execution_id: str) -> int:
                    return int(
                        await conn.fetchval(
                            "SELECT count(*) FROM durable.step_attempts WHERE execution_id = $1",
                            execution_id,
                        )
                    )

                assert await attempts_of(old) == 2
                manual_clock.advance(timedelta(days=3))  # old: 8 days finished, recent: 3
                await wait_until(lambda: _gone(kept, old))
                assert await kept() == {recent, pending.execution_id}
                assert await attempts_of(old) == 0  # its history went with it
                assert await attempts_of(recent) == 2
            finally:
                await conn.close()


async def _gone(kept: Callable[[], Awaitable[set[str]]], execution_id: str) -> bool:
    return execution_id not in await kept()
