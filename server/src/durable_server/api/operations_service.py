"""OperationsService: queues, retrying failed executions, diagnosis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc

from durable.v1 import operations_service_pb2 as pb
from durable.v1 import operations_service_pb2_grpc as pb_grpc
from durable_server.api import validate
from durable_server.api.convert import set_time
from durable_server.engine.operations import Operations, QueueStats
from durable_server.errors import InvalidArgumentError

__all__ = ["OperationsService"]

Context = grpc.aio.ServicerContext[Any, Any]

_STATES = {
    "active": pb.QUEUE_STATE_ACTIVE,
    "paused": pb.QUEUE_STATE_PAUSED,
    "draining": pb.QUEUE_STATE_DRAINING,
}
MAX_FINDINGS = 1000


def _queue_to_proto(q: QueueStats) -> pb.QueueInfo:
    msg = pb.QueueInfo(
        name=q.name,
        state=_STATES[q.state],
        reason=q.reason,
        ready=q.ready,
        leased=q.leased,
        waiting=q.waiting,
        delayed=q.delayed,
        concurrency_limit=q.concurrency_limit,
    )
    if q.oldest_ready_age is not None:
        msg.oldest_ready_age.FromTimedelta(q.oldest_ready_age)
    return msg


class OperationsService(pb_grpc.OperationsServiceServicer):
    """Thin servicer: validate, call the operations, convert."""

    def __init__(self, operations: Operations) -> None:
        self.operations = operations

    async def _set(self, queue: str, state: str, reason: str = "") -> pb.QueueInfo:
        name = validate.check_name("queue", queue)
        reason = validate.check_text("reason", reason)
        return _queue_to_proto(await self.operations.set_queue_state(name, state, reason))

    async def PauseQueue(
        self, request: pb.PauseQueueRequest, context: Context
    ) -> pb.PauseQueueResponse:
        """Stop handing out a queue's tasks."""
        return pb.PauseQueueResponse(queue=await self._set(request.queue, "paused", request.reason))

    async def ResumeQueue(
        self, request: pb.ResumeQueueRequest, context: Context
    ) -> pb.ResumeQueueResponse:
        """Make a queue active again."""
        return pb.ResumeQueueResponse(queue=await self._set(request.queue, "active"))

    async def DrainQueue(
        self, request: pb.DrainQueueRequest, context: Context
    ) -> pb.DrainQueueResponse:
        """Refuse new executions on a queue while its work runs out."""
        return pb.DrainQueueResponse(
            queue=await self._set(request.queue, "draining", request.reason)
        )

    async def ListQueues(
        self, request: pb.ListQueuesRequest, context: Context
    ) -> pb.ListQueuesResponse:
        """Every queue with work or a state."""
        queues = await self.operations.queue_stats()
        return pb.ListQueuesResponse(queues=[_queue_to_proto(q) for q in queues])

    async def RetryExecution(
        self, request: pb.RetryExecutionRequest, context: Context
    ) -> pb.RetryExecutionResponse:
        """Run a failed execution again from its failed step."""
        execution_id = validate.check_execution_id(request.execution_id)
        step = await self.operations.retry_execution(execution_id)
        return pb.RetryExecutionResponse(step_name=step)

    async def Diagnose(self, request: pb.DiagnoseRequest, context: Context) -> pb.DiagnoseResponse:
        """Unfinished executions that nothing can move forward."""
        if not 0 <= request.limit <= MAX_FINDINGS:
            raise InvalidArgumentError(f"limit must be within 0..{MAX_FINDINGS}")
        alive = timedelta(seconds=60)
        if request.HasField("worker_alive_within"):
            alive = validate.check_duration("worker_alive_within", request.worker_alive_within)
            if alive <= timedelta(0):
                raise InvalidArgumentError("worker_alive_within must be positive")
        findings = await self.operations.diagnose(limit=request.limit or 100, alive_within=alive)
        out = pb.DiagnoseResponse()
        for f in findings:
            msg = out.findings.add(
                execution_id=f.execution_id,
                workflow_name=f.workflow_name,
                status=f.status,
                problem=f.problem,
                detail=f.detail,
            )
            set_time(msg, "since", f.since)
        return out
