"""WorkflowService: start, read, list and cancel executions."""

from __future__ import annotations

from typing import Any

import grpc

from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from durable_server.api import convert, validate
from durable_server.config import Settings
from durable_server.engine.engine import Engine, StartRequest
from durable_server.engine.reads import Reads
from durable_server.engine.registry import Registry
from durable_server.errors import InvalidArgumentError
from durable_server.store.executions import ExecutionFilter

__all__ = ["WorkflowService"]

Context = grpc.aio.ServicerContext[Any, Any]


class WorkflowService(pb_grpc.WorkflowServiceServicer):
    """Thin servicer: validate, call the engine, convert."""

    def __init__(
        self, engine: Engine, registry: Registry, reads: Reads, settings: Settings
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.reads = reads
        self.settings = settings

    async def StartWorkflow(
        self, request: pb.StartWorkflowRequest, context: Context
    ) -> pb.StartWorkflowResponse:
        """Start an execution of the latest version of a workflow."""
        name = validate.check_name("workflow_name", request.workflow_name)
        req = StartRequest(
            workflow_name=name,
            input_json=validate.check_payload(
                "input_json", request.input_json, self.settings.max_payload_bytes
            ),
            queue=validate.check_name("queue", request.queue) if request.queue else None,
            priority=request.priority,
            scheduled_at=convert.optional_time(request, "scheduled_at"),
            idempotency_key=validate.check_idempotency_key(request.idempotency_key),
        )
        definition = await self.registry.latest(name)
        with validate.naming_bad_json({"input_json": req.input_json}):
            execution_id, created = await self.engine.start(req, definition)
        return pb.StartWorkflowResponse(execution_id=execution_id, created=created)

    async def GetExecution(
        self, request: pb.GetExecutionRequest, context: Context
    ) -> pb.GetExecutionResponse:
        """Read one execution."""
        execution_id = validate.check_execution_id(request.execution_id)
        include_steps = request.include_steps or request.include_logs
        detail = await self.reads.get_execution(execution_id, include_steps=include_steps)
        return pb.GetExecutionResponse(
            execution=convert.execution_to_proto(
                detail.execution, detail if include_steps else None
            )
        )

    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: Context
    ) -> pb.ListExecutionsResponse:
        """List executions, newest first."""
        try:
            statuses = tuple(sorted({convert.status_from_proto(s).value for s in request.statuses}))
        except ValueError as exc:
            raise InvalidArgumentError(f"statuses: {exc}") from exc
        flt = ExecutionFilter(
            workflow_name=request.workflow_name or None,
            statuses=statuses,
            queue=request.queue or None,
            parent_id=(
                validate.check_execution_id(request.parent_execution_id, "parent_execution_id")
                if request.parent_execution_id
                else None
            ),
            top_level_only=request.top_level_only,
            created_after=convert.optional_time(request, "created_after"),
            created_before=convert.optional_time(request, "created_before"),
        )
        page = await self.reads.list_executions(
            flt,
            page_size=validate.check_page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListExecutionsResponse(
            executions=[convert.execution_to_proto(r) for r in page.executions],
            next_page_token=page.next_page_token,
            total_count=page.total_count,
        )

    async def ListChildren(
        self, request: pb.ListChildrenRequest, context: Context
    ) -> pb.ListChildrenResponse:
        """List the children of one execution, newest first."""
        parent = validate.check_execution_id(request.parent_execution_id, "parent_execution_id")
        try:
            statuses = tuple(sorted({convert.status_from_proto(s).value for s in request.statuses}))
        except ValueError as exc:
            raise InvalidArgumentError(f"statuses: {exc}") from exc
        await self.reads.get_execution(parent, include_steps=False)  # NOT_FOUND if unknown
        page = await self.reads.list_executions(
            ExecutionFilter(statuses=statuses, parent_id=parent),
            page_size=validate.check_page_size(request.page_size),
            page_token=request.page_token,
        )
        return pb.ListChildrenResponse(
            executions=[convert.execution_to_proto(r) for r in page.executions],
            next_page_token=page.next_page_token,
        )

    async def CancelExecution(
        self, request: pb.CancelExecutionRequest, context: Context
    ) -> pb.CancelExecutionResponse:
        """Cancel an unfinished execution."""
        execution_id = validate.check_execution_id(request.execution_id)
        row = await self.engine.cancel(execution_id, request.reason)
        return pb.CancelExecutionResponse(execution=convert.execution_to_proto(row))
