"""WorkflowService: start, read, list and cancel executions."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import timedelta
from typing import Any

import grpc
from opentelemetry.trace import SpanKind, Tracer

from durable._shared import context_from_metadata, traceparent_of
from durable._shared import tracer as durable_tracer
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from durable_server.api import convert, validate
from durable_server.config import Settings
from durable_server.engine.definitions import Definition
from durable_server.engine.engine import Engine, StartRequest
from durable_server.engine.reads import Reads
from durable_server.engine.registry import Registry
from durable_server.engine.states import TERMINAL_STATUSES
from durable_server.errors import DurableError, FailedPreconditionError, InvalidArgumentError
from durable_server.store.executions import ExecutionFilter
from durable_server.views import graph, graph_text
from durable_server.watch import RECHECK_SECS, FinishWatch

MAX_BULK_STARTS = 1000
DEFAULT_WAIT = timedelta(seconds=30)  # WaitExecution without a timeout
MAX_WAIT = timedelta(minutes=5)

__all__ = ["WorkflowService"]

Context = grpc.aio.ServicerContext[Any, Any]


class WorkflowService(pb_grpc.WorkflowServiceServicer):
    """Thin servicer: validate, call the engine, convert."""

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        reads: Reads,
        settings: Settings,
        tracer: Tracer | None = None,
        watch: FinishWatch | None = None,
    ) -> None:
        self.engine = engine
        self.watch = watch if watch is not None else FinishWatch()
        self.registry = registry
        self.reads = reads
        self.settings = settings
        self.tracer = tracer or durable_tracer()

    def _start_request(self, request: pb.StartWorkflowRequest) -> StartRequest:
        """A checked start request."""
        name = validate.check_name("workflow_name", request.workflow_name)
        return StartRequest(
            workflow_name=name,
            input_json=validate.check_payload(
                "input_json", request.input_json, self.settings.max_payload_bytes
            ),
            queue=validate.check_name("queue", request.queue) if request.queue else None,
            priority=request.priority,
            scheduled_at=convert.optional_time(request, "scheduled_at"),
            idempotency_key=validate.check_idempotency_key(request.idempotency_key),
        )

    def _span(self, method: str, context: Context, **attributes: str) -> Any:
        return self.tracer.start_as_current_span(
            f"durable.v1.WorkflowService/{method}",
            context=context_from_metadata(context.invocation_metadata()),
            kind=SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": "durable.v1.WorkflowService",
                "rpc.method": method,
                **attributes,
            },
        )

    async def StartWorkflow(
        self, request: pb.StartWorkflowRequest, context: Context
    ) -> pb.StartWorkflowResponse:
        """Start an execution of the latest version of a workflow."""
        req = self._start_request(request)
        definition = await self.registry.latest(req.workflow_name)
        with self._span(
            "StartWorkflow",
            context,
            **{
                "durable.workflow": req.workflow_name,
                "durable.workflow_version": definition.version,
            },
        ) as span:
            req = dataclasses.replace(req, traceparent=traceparent_of(span))
            with validate.naming_bad_json({"input_json": req.input_json}):
                execution_id, created = await self.engine.start(req, definition)
            span.set_attribute("durable.execution_id", execution_id)
            span.set_attribute("durable.created", created)
        return pb.StartWorkflowResponse(execution_id=execution_id, created=created)

    async def StartWorkflows(
        self, request: pb.StartWorkflowsRequest, context: Context
    ) -> pb.StartWorkflowsResponse:
        """Start many executions: all checked first, then written together."""
        if len(request.requests) > MAX_BULK_STARTS:
            raise InvalidArgumentError(
                f"at most {MAX_BULK_STARTS} requests per call, got {len(request.requests)}"
            )
        reqs: list[StartRequest] = []
        definitions: dict[str, Definition] = {}
        for i, one in enumerate(request.requests):
            try:
                req = self._start_request(one)
                if req.workflow_name not in definitions:
                    definitions[req.workflow_name] = await self.registry.latest(req.workflow_name)
            except DurableError as exc:
                raise type(exc)(f"requests[{i}]: {exc.message}") from exc
            reqs.append(req)
        with self._span("StartWorkflows", context, **{"durable.count": str(len(reqs))}) as span:
            traceparent = traceparent_of(span)
            started = await self.engine.start_many(
                [
                    (dataclasses.replace(r, traceparent=traceparent), definitions[r.workflow_name])
                    for r in reqs
                ]
            )
        return pb.StartWorkflowsResponse(
            results=[pb.StartWorkflowResponse(execution_id=e, created=c) for e, c in started]
        )

    async def GetExecution(
        self, request: pb.GetExecutionRequest, context: Context
    ) -> pb.GetExecutionResponse:
        """Read one execution."""
        execution_id = validate.check_execution_id(request.execution_id)
        include_steps = request.include_steps or request.include_logs
        detail = await self.reads.get_execution(
            execution_id, include_steps=include_steps, include_logs=request.include_logs
        )
        return pb.GetExecutionResponse(
            execution=convert.execution_to_proto(
                detail.execution, detail if include_steps else None
            )
        )

    async def WaitExecution(
        self, request: pb.WaitExecutionRequest, context: Context
    ) -> pb.WaitExecutionResponse:
        """Return an execution once it has finished, or at the timeout as it is then."""
        execution_id = validate.check_execution_id(request.execution_id)
        timeout = DEFAULT_WAIT
        if request.HasField("timeout"):
            timeout = validate.check_duration("timeout", request.timeout)
            if not timedelta(0) <= timeout <= MAX_WAIT:
                raise InvalidArgumentError(
                    f"timeout must be between 0 and {MAX_WAIT.total_seconds():.0f} s, "
                    f"not {timeout.total_seconds()} s"
                )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout.total_seconds()
        while True:
            # Watch before reading: a finish committed after the read still wakes us.
            with self.watch.watching(execution_id) as finished:
                detail = await self.reads.get_execution(execution_id, include_steps=False)
                left = deadline - loop.time()
                finished_or_over = detail.execution.status in TERMINAL_STATUSES or left <= 0
                if finished_or_over or self.watch.closed:  # closed: shutting down
                    return pb.WaitExecutionResponse(
                        execution=convert.execution_to_proto(detail.execution, None)
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), min(left, RECHECK_SECS))

    async def ListExecutions(
        self, request: pb.ListExecutionsRequest, context: Context
    ) -> pb.ListExecutionsResponse:
        """List executions, newest first."""
        try:
            statuses = tuple(sorted({convert.status_from_proto(s).value for s in request.statuses}))
        except ValueError as exc:
            raise InvalidArgumentError(f"statuses: {exc}") from exc
        flt = ExecutionFilter(
            workflow_name=validate.check_text("workflow_name", request.workflow_name) or None,
            statuses=statuses,
            queue=validate.check_text("queue", request.queue) or None,
            parent_id=(
                validate.check_execution_id(request.parent_execution_id, "parent_execution_id")
                if request.parent_execution_id
                else None
            ),
            top_level_only=request.top_level_only,
            created_after=convert.optional_time(request, "created_after"),
            created_before=convert.optional_time(request, "created_before"),
            schedule_name=validate.check_text("schedule_name", request.schedule_name) or None,
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

    async def SendEvent(
        self, request: pb.SendEventRequest, context: Context
    ) -> pb.SendEventResponse:
        """Deliver an event to an execution."""
        execution_id = validate.check_execution_id(request.execution_id)
        name = validate.check_name("name", request.name)
        payload = validate.check_payload(
            "payload_json", request.payload_json, self.settings.max_payload_bytes
        )
        event_id = validate.check_event_id(request.event_id)
        sent = await self.engine.send_event(execution_id, name, payload, event_id)
        return pb.SendEventResponse(delivered=sent.delivered, duplicate=sent.duplicate)

    async def ProvideInput(
        self, request: pb.ProvideInputRequest, context: Context
    ) -> pb.ProvideInputResponse:
        """Answer a pending human input."""
        execution_id = validate.check_execution_id(request.execution_id)
        name = validate.check_name("name", request.name)
        if not request.value_json:
            raise InvalidArgumentError("value_json is required: the answer as JSON")
        value = validate.check_payload(
            "value_json", request.value_json, self.settings.max_payload_bytes
        )
        await self.engine.provide_input(execution_id, name, value)
        return pb.ProvideInputResponse()

    async def ListPendingInputs(
        self, request: pb.ListPendingInputsRequest, context: Context
    ) -> pb.ListPendingInputsResponse:
        """Human inputs executions wait for, oldest first."""
        rows, token = await self._list_waits("input", request)
        return pb.ListPendingInputsResponse(
            inputs=[convert.pending_input_to_proto(r) for r in rows], next_page_token=token
        )

    async def ListPendingEvents(
        self, request: pb.ListPendingEventsRequest, context: Context
    ) -> pb.ListPendingEventsResponse:
        """Event waits executions are parked on, oldest first."""
        rows, token = await self._list_waits("event", request)
        return pb.ListPendingEventsResponse(
            waits=[convert.pending_event_wait_to_proto(r) for r in rows], next_page_token=token
        )

    async def _list_waits(self, kind: str, request: Any) -> tuple[list[Any], str]:
        return await self.reads.list_waits(
            kind,
            execution_id=(
                validate.check_execution_id(request.execution_id) if request.execution_id else None
            ),
            workflow_name=validate.check_text("workflow_name", request.workflow_name) or None,
            name=validate.check_text("name", request.name) or None,
            page_size=validate.check_page_size(request.page_size),
            page_token=request.page_token,
        )

    async def ListWorkers(
        self, request: pb.ListWorkersRequest, context: Context
    ) -> pb.ListWorkersResponse:
        """Registered workers with their last heartbeat."""
        if request.seen_within_seconds < 0:
            raise InvalidArgumentError("seen_within_seconds must not be negative")
        await self.engine.presence.flush()  # last-seen times are written behind
        rows = await self.reads.list_workers(
            queue=validate.check_name("queue", request.queue) if request.queue else None,
            seen_within_secs=float(request.seen_within_seconds) or None,
        )
        return pb.ListWorkersResponse(workers=[convert.worker_to_proto(r) for r in rows])

    async def GetExecutionGraph(
        self, request: pb.GetExecutionGraphRequest, context: Context
    ) -> pb.GetExecutionGraphResponse:
        """A workflow's definition as a graph; given an execution, with its state overlaid."""
        formats = (pb.GRAPH_FORMAT_UNSPECIFIED, pb.GRAPH_FORMAT_MERMAID, pb.GRAPH_FORMAT_DOT)
        if request.format not in formats:
            raise InvalidArgumentError(f"format {request.format} is not a GraphFormat")
        if bool(request.execution_id) == bool(request.workflow_name):
            raise InvalidArgumentError("give either execution_id or workflow_name")
        if request.execution_id:
            execution_id = validate.check_execution_id(request.execution_id)
            detail = await self.reads.get_execution(execution_id, include_steps=True)
            row = detail.execution
            definition = await self.registry.definitions.get(row.workflow_version)
            if definition is None:
                raise FailedPreconditionError(
                    f"execution {execution_id} runs version {row.workflow_version} of "
                    f"{row.workflow_name!r}, which is not stored"
                )
            waits = [
                graph.PendingWait.from_record(r)
                for r in await self.reads.execution_waits(execution_id)
            ]
            states = graph.compute_states(
                definition, row.status, detail.attempts, detail.running, waits
            )
            title = f"{definition.name} - execution {execution_id} ({row.status})"
            laid_out = graph.build_graph(definition, states, title=title)
        else:
            name = validate.check_name("workflow_name", request.workflow_name)
            laid_out = graph.build_graph(await self.registry.latest(name))
        if request.format == pb.GRAPH_FORMAT_DOT:
            return pb.GetExecutionGraphResponse(
                text=graph_text.render_dot(laid_out), format=pb.GRAPH_FORMAT_DOT
            )
        return pb.GetExecutionGraphResponse(
            text=graph_text.render_mermaid(laid_out), format=pb.GRAPH_FORMAT_MERMAID
        )

    async def CancelExecution(
        self, request: pb.CancelExecutionRequest, context: Context
    ) -> pb.CancelExecutionResponse:
        """Cancel an unfinished execution."""
        execution_id = validate.check_execution_id(request.execution_id)
        reason = validate.check_text("reason", request.reason)
        row = await self.engine.cancel(execution_id, reason)
        return pb.CancelExecutionResponse(execution=convert.execution_to_proto(row))
