"""The blocking client: :class:`~durable.Client`'s methods for code without an event loop.

It calls the plain (synchronous) gRPC stubs, so it needs no thread or event loop of its
own; requests are built and responses converted by the same functions as the async
client's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc

from durable._channel import (
    CLIENT_CHANNEL_OPTIONS,
    TLSConfig,
    auth_metadata,
    check_token,
    resolve_tls,
    sync_channel,
)
from durable._client import DEFAULT_ADDRESS
from durable._converters import (
    execution_from_proto,
    execution_page_from_proto,
    finding_from_proto,
    pending_event_page_from_proto,
    pending_input_page_from_proto,
    queue_info_from_proto,
    schedule_from_proto,
    schedule_page_from_proto,
    start_result_from_proto,
)
from durable._dsl import Workflow
from durable._models import (
    CatchUp,
    CatchUpName,
    Execution,
    ExecutionPage,
    ExecutionStatus,
    Finding,
    Overlap,
    OverlapName,
    PendingEventPage,
    PendingInputPage,
    QueueInfo,
    Schedule,
    SchedulePage,
    StartResult,
)
from durable._requests import (
    UNSET,
    GraphFormatName,
    ScheduleChanges,
    cancel_request,
    children_request,
    create_schedule_request,
    diagnose_request,
    get_request,
    graph_request,
    list_request,
    list_schedules_request,
    pending_events_request,
    pending_inputs_request,
    provide_input_request,
    send_event_request,
    start_many_requests,
    start_request,
    trigger_schedule_request,
    update_schedule_request,
    wait_request,
)
from durable._tracing import metadata_for_current_context
from durable._waiting import WaitDeadline, is_unimplemented
from durable.errors import (
    DeadlineExceededError,
    DurableError,
    UnavailableError,
    from_rpc_error,
)
from durable.v1 import operations_service_pb2 as opb
from durable.v1 import operations_service_pb2_grpc as opb_grpc
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import schedule_service_pb2_grpc as spb_grpc
from durable.v1 import workflow_service_pb2_grpc as pb_grpc

__all__ = ["SyncClient"]

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


class SyncClient:
    """A blocking client of the orchestrator's WorkflowService.

    The methods mirror :class:`~durable.Client` (see there for their arguments). Use it as
    a ``with`` block, or call :meth:`close` when done.

    Args:
        address: The orchestrator's ``host:port``.
        timeout: Deadline of every call, in seconds.
        token: API token sent with every call, for an orchestrator that requires one.
        tls: ``True`` for TLS with the system's CAs, or a :class:`~durable.TLSConfig`.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        tls: bool | TLSConfig | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.address = address
        self.timeout = timeout
        self._auth = auth_metadata(check_token(token))
        self._channel = sync_channel(address, CLIENT_CHANNEL_OPTIONS, resolve_tls(tls))
        self._stub = pb_grpc.WorkflowServiceStub(self._channel)
        self._schedules = spb_grpc.ScheduleServiceStub(self._channel)
        self._operations = opb_grpc.OperationsServiceStub(self._channel)

    @classmethod
    def connect(
        cls,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,
        token: str | None = None,
        tls: bool | TLSConfig | None = None,
    ) -> SyncClient:
        """A client with its channel open; UnavailableError if it does not open in ``timeout``."""
        client = cls(address, timeout=timeout, token=token, tls=tls)
        try:
            grpc.channel_ready_future(client._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            client.close()
            raise UnavailableError(
                f"cannot reach the orchestrator at {address} within {timeout}s"
            ) from None
        return client

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        rpc: grpc.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        *,
        deadline: float | None = None,
    ) -> ResponseT:
        try:
            return rpc(
                request,
                timeout=self.timeout if deadline is None else deadline,
                metadata=(*metadata_for_current_context(), *self._auth),
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    def start(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Start an execution of ``workflow`` and return its id (see :meth:`Client.start`)."""
        return self.start_execution(
            workflow,
            input,
            queue=queue,
            priority=priority,
            scheduled_at=scheduled_at,
            idempotency_key=idempotency_key,
        ).execution_id

    def start_many(
        self,
        workflow: str | Workflow,
        inputs: Sequence[Any],
        *,
        queue: str | None = None,
        priority: int = 0,
        idempotency_keys: Sequence[str] | None = None,
    ) -> list[str]:
        """Start one execution per input, in bulk (see :meth:`Client.start_many`)."""
        requests = start_many_requests(
            workflow, inputs, queue=queue, priority=priority, idempotency_keys=idempotency_keys
        )
        return [
            result.execution_id
            for r in requests
            for result in self._call(self._stub.StartWorkflows, r).results
        ]

    def start_execution(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> StartResult:
        """Like :meth:`start`, but also say whether the execution is new."""
        request = start_request(
            workflow,
            input,
            queue=queue,
            priority=priority,
            scheduled_at=scheduled_at,
            idempotency_key=idempotency_key,
        )
        return start_result_from_proto(self._call(self._stub.StartWorkflow, request))

    def get_execution(
        self, execution_id: str, *, include_steps: bool = False, include_logs: bool = False
    ) -> Execution:
        """Read one execution (see :meth:`Client.get_execution`)."""
        request = get_request(execution_id, include_steps=include_steps, include_logs=include_logs)
        return execution_from_proto(self._call(self._stub.GetExecution, request).execution)

    def list_executions(
        self,
        *,
        workflow: str | Workflow | None = None,
        statuses: Iterable[ExecutionStatus | str] | None = None,
        queue: str | None = None,
        parent_execution_id: str | None = None,
        top_level_only: bool = False,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        page_size: int = 50,
        page_token: str | None = None,
        schedule: str | None = None,
    ) -> ExecutionPage:
        """List executions, newest first (see :meth:`Client.list_executions`)."""
        request = list_request(
            workflow=workflow,
            statuses=statuses,
            queue=queue,
            parent_execution_id=parent_execution_id,
            top_level_only=top_level_only,
            created_after=created_after,
            created_before=created_before,
            page_size=page_size,
            page_token=page_token,
            schedule=schedule,
        )
        return execution_page_from_proto(self._call(self._stub.ListExecutions, request))

    def list_children(
        self,
        parent_execution_id: str,
        *,
        statuses: Iterable[ExecutionStatus | str] | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> ExecutionPage:
        """List a parent's child executions, oldest first (see :meth:`Client.list_children`)."""
        request = children_request(
            parent_execution_id, statuses=statuses, page_size=page_size, page_token=page_token
        )
        return execution_page_from_proto(self._call(self._stub.ListChildren, request))

    def cancel(self, execution_id: str, reason: str = "") -> Execution:
        """Cancel an unfinished execution and return it (see :meth:`Client.cancel`)."""
        request = cancel_request(execution_id, reason=reason)
        return execution_from_proto(self._call(self._stub.CancelExecution, request).execution)

    def send_event(
        self, execution_id: str, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Send an event to an execution; True if a waiting step took it now.

        See :meth:`Client.send_event` (and its ``event_id``, which makes a retry safe).
        """
        request = send_event_request(execution_id, name, payload, event_id)
        return self._call(self._stub.SendEvent, request).delivered

    def provide_input(self, execution_id: str, name: str, value: Any) -> None:
        """Answer a pending human input (see :meth:`Client.provide_input`)."""
        request = provide_input_request(execution_id, name, value)
        self._call(self._stub.ProvideInput, request)

    def list_pending_inputs(
        self,
        *,
        execution_id: str | None = None,
        workflow: str | Workflow | None = None,
        name: str | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> PendingInputPage:
        """List pending human inputs, oldest first (see :meth:`Client.list_pending_inputs`)."""
        request = pending_inputs_request(
            execution_id=execution_id,
            workflow=workflow,
            name=name,
            page_size=page_size,
            page_token=page_token,
        )
        return pending_input_page_from_proto(self._call(self._stub.ListPendingInputs, request))

    def list_pending_events(
        self,
        *,
        execution_id: str | None = None,
        workflow: str | Workflow | None = None,
        name: str | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> PendingEventPage:
        """List pending event waits, oldest first (see :meth:`Client.list_pending_events`)."""
        request = pending_events_request(
            execution_id=execution_id,
            workflow=workflow,
            name=name,
            page_size=page_size,
            page_token=page_token,
        )
        return pending_event_page_from_proto(self._call(self._stub.ListPendingEvents, request))

    def get_execution_graph(
        self,
        execution_id: str | None = None,
        *,
        workflow: str | Workflow | None = None,
        format: GraphFormatName = "mermaid",
    ) -> str:
        """A workflow as Mermaid or DOT text (see :meth:`Client.get_execution_graph`)."""
        request = graph_request(execution_id, workflow=workflow, format=format)
        return self._call(self._stub.GetExecutionGraph, request).text

    # -- schedules ---------------------------------------------------------------------

    def create_schedule(
        self,
        name: str,
        workflow: str | Workflow,
        cron: str,
        *,
        timezone: str = "",
        input: Any = None,
        queue: str | None = None,
        priority: int = 0,
        enabled: bool = True,
        catch_up: CatchUp | CatchUpName = "once",
        catch_up_limit: int = 0,
        overlap: Overlap | OverlapName = "allow",
        max_failures: int = 0,
    ) -> Schedule:
        """Create a cron schedule that starts ``workflow`` (see :meth:`Client.create_schedule`)."""
        request = create_schedule_request(
            name,
            workflow,
            cron,
            timezone=timezone,
            input=input,
            queue=queue,
            priority=priority,
            enabled=enabled,
            catch_up=catch_up,
            catch_up_limit=catch_up_limit,
            overlap=overlap,
            max_failures=max_failures,
        )
        return schedule_from_proto(self._call(self._schedules.CreateSchedule, request).schedule)

    def get_schedule(self, name: str) -> Schedule:
        """Read one schedule (see :meth:`Client.get_schedule`)."""
        request = spb.GetScheduleRequest(name=name)
        return schedule_from_proto(self._call(self._schedules.GetSchedule, request).schedule)

    def list_schedules(
        self,
        *,
        enabled: bool | None = None,
        workflow: str | Workflow | None = None,
        queue: str | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> SchedulePage:
        """List schedules by name (see :meth:`Client.list_schedules`)."""
        request = list_schedules_request(
            enabled=enabled,
            workflow=workflow,
            queue=queue,
            page_size=page_size,
            page_token=page_token,
        )
        return schedule_page_from_proto(self._call(self._schedules.ListSchedules, request))

    def update_schedule(self, name: str, **changes: Unpack[ScheduleChanges]) -> Schedule:
        """Change the given fields of a schedule (see :meth:`Client.update_schedule`)."""
        request = update_schedule_request(name, changes)
        return schedule_from_proto(self._call(self._schedules.UpdateSchedule, request).schedule)

    def enable_schedule(self, name: str) -> Schedule:
        """Turn a schedule on (see :meth:`Client.enable_schedule`)."""
        request = spb.EnableScheduleRequest(name=name)
        return schedule_from_proto(self._call(self._schedules.EnableSchedule, request).schedule)

    def disable_schedule(self, name: str) -> Schedule:
        """Turn a schedule off (see :meth:`Client.disable_schedule`)."""
        request = spb.DisableScheduleRequest(name=name)
        return schedule_from_proto(self._call(self._schedules.DisableSchedule, request).schedule)

    def delete_schedule(self, name: str) -> None:
        """Delete a schedule (see :meth:`Client.delete_schedule`)."""
        self._call(self._schedules.DeleteSchedule, spb.DeleteScheduleRequest(name=name))

    def trigger_schedule(self, name: str, input: Any = UNSET) -> str:
        """Start one run of a schedule now; return its id (see :meth:`Client.trigger_schedule`)."""
        request = trigger_schedule_request(name, input)
        return self._call(self._schedules.TriggerSchedule, request).execution_id

    # -- operations --------------------------------------------------------------------

    def pause_queue(self, queue: str, reason: str = "") -> QueueInfo:
        """Stop workers from taking a queue's tasks (see :meth:`Client.pause_queue`)."""
        request = opb.PauseQueueRequest(queue=queue, reason=reason)
        return queue_info_from_proto(self._call(self._operations.PauseQueue, request).queue)

    def resume_queue(self, queue: str) -> QueueInfo:
        """Resume a paused or draining queue (see :meth:`Client.resume_queue`)."""
        request = opb.ResumeQueueRequest(queue=queue)
        return queue_info_from_proto(self._call(self._operations.ResumeQueue, request).queue)

    def drain_queue(self, queue: str, reason: str = "") -> QueueInfo:
        """Refuse new executions on a queue (see :meth:`Client.drain_queue`)."""
        request = opb.DrainQueueRequest(queue=queue, reason=reason)
        return queue_info_from_proto(self._call(self._operations.DrainQueue, request).queue)

    def list_queues(self) -> list[QueueInfo]:
        """Every queue with work or a state (see :meth:`Client.list_queues`)."""
        response = self._call(self._operations.ListQueues, opb.ListQueuesRequest())
        return [queue_info_from_proto(q) for q in response.queues]

    def retry_execution(self, execution_id: str) -> str:
        """Retry a failed execution; return the step that runs again.

        See :meth:`Client.retry_execution`.
        """
        request = opb.RetryExecutionRequest(execution_id=execution_id)
        return self._call(self._operations.RetryExecution, request).step_name

    def diagnose(
        self, *, limit: int = 0, worker_alive_within: timedelta | None = None
    ) -> list[Finding]:
        """Find stuck executions, and say why (see :meth:`Client.diagnose`)."""
        request = diagnose_request(limit=limit, worker_alive_within=worker_alive_within)
        response = self._call(self._operations.Diagnose, request)
        return [finding_from_proto(f) for f in response.findings]

    def wait(
        self, execution_id: str, *, timeout: float | None = 60.0, poll_interval: float = 0.05
    ) -> Execution:
        """Wait until an execution reaches a terminal status (see :meth:`Client.wait`)."""
        waiting = WaitDeadline(execution_id, timeout, poll_interval)
        while True:
            wait_secs = waiting.server_wait()
            try:
                response = self._call(
                    self._stub.WaitExecution,
                    wait_request(execution_id, wait_secs),
                    deadline=wait_secs + self.timeout,
                )
            except DurableError as exc:
                if is_unimplemented(exc):
                    return self._poll_until_finished(waiting, execution_id)
                if not waiting.asks_again_after(exc):
                    raise
                time.sleep(waiting.next_delay())
                continue
            execution = execution_from_proto(response.execution)
            if execution.status.is_terminal:
                return execution
            if waiting.is_over():
                raise waiting.expired()

    def _poll_until_finished(self, waiting: WaitDeadline, execution_id: str) -> Execution:
        """``wait`` against an orchestrator without WaitExecution: poll GetExecution."""
        while True:
            request = get_request(execution_id, include_steps=False, include_logs=False)
            try:
                response = self._call(
                    self._stub.GetExecution, request, deadline=waiting.rpc_timeout(self.timeout)
                )
            except DeadlineExceededError as exc:
                if waiting.is_over():
                    raise waiting.expired() from exc
                raise
            execution = execution_from_proto(response.execution)
            if execution.status.is_terminal:
                return execution
            time.sleep(waiting.next_delay())
