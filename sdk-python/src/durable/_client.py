"""The async client: start, read, list, cancel and wait for executions over gRPC.

It also feeds waiting steps: :meth:`Client.send_event` sends an event to an execution
and :meth:`Client.provide_input` answers a human input; :meth:`Client.list_pending_inputs`
and :meth:`Client.list_pending_events` show what executions wait for. And it manages cron
schedules (the ScheduleService): :meth:`Client.create_schedule`, ``get_schedule``,
``list_schedules``, ``update_schedule``, ``enable_schedule``, ``disable_schedule``,
``delete_schedule`` and ``trigger_schedule``. For operators (the OperationsService) it
pauses, resumes, drains and lists queues (:meth:`Client.pause_queue`, ``resume_queue``,
``drain_queue``, ``list_queues``), retries a failed execution (``retry_execution``) and
finds stuck ones (``diagnose``).

Example::

    async with Client("127.0.0.1:7411") as client:
        execution_id = await client.start(process_order, {"id": 1})
        await client.send_event(execution_id, "payment_received", {"amount": 30})
        await client.provide_input(execution_id, "manager_approval", True)
        execution = await client.wait(execution_id)
        await client.create_schedule("nightly", process_order, "0 2 * * *", tz="Europe/Paris")

It shares the request builders (:mod:`durable._requests`), the waiting policy
(:mod:`durable._waiting`) and the conversions (:mod:`durable._converters`) with
:class:`~durable.SyncClient`, so both clients send the same requests and return the same
values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar, Unpack

import grpc
import grpc.aio

from durable._channel import (
    CLIENT_CHANNEL_OPTIONS,
    TLSConfig,
    aio_channel,
    auth_metadata,
    check_token,
    resolve_tls,
)
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

__all__ = ["DEFAULT_ADDRESS", "Client"]

DEFAULT_ADDRESS = "127.0.0.1:7411"

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


class Client:
    """An async client of the orchestrator's WorkflowService.

    The gRPC channel opens on first use, in the running event loop. Use the client as an
    ``async with`` block, or call :meth:`close` when done.

    Args:
        address: The orchestrator's ``host:port``.
        timeout: Deadline of every call, in seconds.
        token: API token sent with every call (``dur_<id>_<secret>``), for an
            orchestrator that requires one.
        tls: ``True`` for TLS with the system's CAs, or a :class:`~durable.TLSConfig`
            (own CA, client certificate for mTLS); default plain text.
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
        self._tls = resolve_tls(tls)
        self._channel: grpc.aio.Channel | None = None
        self._stub_cache: pb_grpc.WorkflowServiceAsyncStub | None = None
        self._schedules_cache: spb_grpc.ScheduleServiceAsyncStub | None = None
        self._operations_cache: opb_grpc.OperationsServiceAsyncStub | None = None
        self._closed = False

    @classmethod
    async def connect(
        cls,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - also the deadline of every later call
        token: str | None = None,
        tls: bool | TLSConfig | None = None,
    ) -> Client:
        """A client with its channel open; UnavailableError if it does not open in ``timeout``."""
        client = cls(address, timeout=timeout, token=token, tls=tls)
        client._stub()
        assert client._channel is not None
        try:
            await asyncio.wait_for(client._channel.channel_ready(), timeout)
        except TimeoutError:
            await client.close()
            raise UnavailableError(
                f"cannot reach the orchestrator at {address} within {timeout}s"
            ) from None
        return client

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        self._closed = True
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
            self._stub_cache = None
            self._schedules_cache = None
            self._operations_cache = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _stub(self) -> pb_grpc.WorkflowServiceAsyncStub:
        if self._closed:
            raise RuntimeError("this Client is closed")
        if self._stub_cache is None:
            self._channel = aio_channel(self.address, CLIENT_CHANNEL_OPTIONS, self._tls)
            self._stub_cache = pb_grpc.WorkflowServiceStub(self._channel)
        return self._stub_cache

    def _schedules(self) -> spb_grpc.ScheduleServiceAsyncStub:
        self._stub()  # opens the channel (or refuses, once closed)
        if self._schedules_cache is None:
            assert self._channel is not None
            self._schedules_cache = spb_grpc.ScheduleServiceStub(self._channel)
        return self._schedules_cache

    def _operations(self) -> opb_grpc.OperationsServiceAsyncStub:
        self._stub()  # opens the channel (or refuses, once closed)
        if self._operations_cache is None:
            assert self._channel is not None
            self._operations_cache = opb_grpc.OperationsServiceStub(self._channel)
        return self._operations_cache

    async def _call(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        *,
        deadline: float | None = None,
    ) -> ResponseT:
        try:
            return await rpc(
                request,
                timeout=self.timeout if deadline is None else deadline,
                metadata=[*metadata_for_current_context(), *self._auth],
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from exc

    async def start(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Start an execution of the latest registered version of ``workflow``; return its id.

        Args:
            workflow: The workflow, or its name.
            input: The input of the first step; anything :mod:`json` can encode (plus
                dates, UUIDs, decimals, enums, sets and dataclasses).
            queue: Queue to run on; ``None`` means the workflow's queue, or ``"default"``.
            priority: Higher runs first among ready work on the same queue.
            scheduled_at: Do not start before this (timezone-aware) time.
            idempotency_key: A second start with the same key returns the first execution.
        """
        started = await self.start_execution(
            workflow,
            input,
            queue=queue,
            priority=priority,
            scheduled_at=scheduled_at,
            idempotency_key=idempotency_key,
        )
        return started.execution_id

    async def start_many(
        self,
        workflow: str | Workflow,
        inputs: Sequence[Any],
        *,
        queue: str | None = None,
        priority: int = 0,
        idempotency_keys: Sequence[str] | None = None,
    ) -> list[str]:
        """Start one execution of ``workflow`` per input, in bulk; return their ids, in order.

        Far cheaper than one :meth:`start` per input: up to 1,000 executions go in one
        call, and the calls run concurrently. Every input is checked before any execution
        of its call starts.

        Args:
            workflow: The workflow, or its name.
            inputs: One first-step input per execution.
            queue: Queue to run on; ``None`` means the workflow's queue, or ``"default"``.
            priority: Higher runs first among ready work on the same queue.
            idempotency_keys: One key per input (see :meth:`start`), or none.
        """
        requests = start_many_requests(
            workflow, inputs, queue=queue, priority=priority, idempotency_keys=idempotency_keys
        )
        responses = await asyncio.gather(
            *(self._call(self._stub().StartWorkflows, r) for r in requests)
        )
        return [result.execution_id for response in responses for result in response.results]

    async def start_execution(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> StartResult:
        """Like :meth:`start`, but also say whether the execution is new (see ``created``)."""
        request = start_request(
            workflow,
            input,
            queue=queue,
            priority=priority,
            scheduled_at=scheduled_at,
            idempotency_key=idempotency_key,
        )
        response = await self._call(self._stub().StartWorkflow, request)
        return start_result_from_proto(response)

    async def get_execution(
        self, execution_id: str, *, include_steps: bool = False, include_logs: bool = False
    ) -> Execution:
        """Read one execution.

        Args:
            execution_id: The execution's id.
            include_steps: Also read every attempt of every step.
            include_logs: Also read the attempts' captured logs (implies ``include_steps``).
        """
        request = get_request(execution_id, include_steps=include_steps, include_logs=include_logs)
        response = await self._call(self._stub().GetExecution, request)
        return execution_from_proto(response.execution)

    async def list_executions(
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
        """List executions, newest first; every filter given must match.

        Args:
            workflow: Only this workflow's executions.
            statuses: Only executions in any of these statuses.
            queue: Only executions on this queue.
            schedule: Only the runs of the schedule with this name.
            parent_execution_id: Only the children of this execution.
            top_level_only: Only executions without a parent.
            created_after: Created at or after this time.
            created_before: Created before this time.
            page_size: At most this many executions (the orchestrator allows up to 1000).
            page_token: ``next_page_token`` of the previous page, with the same filters.
        """
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
        response = await self._call(self._stub().ListExecutions, request)
        return execution_page_from_proto(response)

    async def list_children(
        self,
        parent_execution_id: str,
        *,
        statuses: Iterable[ExecutionStatus | str] | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> ExecutionPage:
        """List the child executions the parent's steps started, oldest first.

        Children started by ``ctx.start_workflow`` and ``ctx.call_workflow`` alike. The
        page's ``total_count`` is ``None``: this call does not count them.

        Args:
            parent_execution_id: The parent execution's id.
            statuses: Only children in any of these statuses.
            page_size: At most this many (up to 1000; 0 means the orchestrator's 50).
            page_token: ``next_page_token`` of the previous page, with the same filters.
        """
        request = children_request(
            parent_execution_id, statuses=statuses, page_size=page_size, page_token=page_token
        )
        response = await self._call(self._stub().ListChildren, request)
        return execution_page_from_proto(response)

    async def cancel(self, execution_id: str, reason: str = "") -> Execution:
        """Cancel an unfinished execution and return it; no further steps run.

        Raises FailedPreconditionError if it has finished already.
        """
        request = cancel_request(execution_id, reason=reason)
        response = await self._call(self._stub().CancelExecution, request)
        return execution_from_proto(response.execution)

    async def send_event(
        self, execution_id: str, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Send the event ``name`` to an execution, for ``ctx.wait_for_event`` and the like.

        A step waiting for it takes it now and runs again; otherwise the execution keeps
        it (see ``Execution.unconsumed_events``) until a step waits for it.

        Args:
            execution_id: The execution's id.
            name: The event's name: 1-128 ASCII letters, digits, ``_``, ``-``, ``.``,
                starting with a letter or ``_`` (as the wait's).
            payload: What the wait returns; anything JSON can encode (as for ``start``).
            event_id: Makes the send safe to retry: a later send with the same id to the
                same execution does nothing and returns what the first one returned,
                even once the execution has finished. Use an id from the event's source
                (a webhook's delivery id, say); up to 255 characters.

        Returns:
            True when a waiting step took it now, False when it is kept for a later wait.

        Raises:
            ValueError: A bad name (before any call is made).
            NotFoundError: No such execution.
            FailedPreconditionError: The execution has finished.
            InvalidArgumentError: A payload over the limit.
        """
        request = send_event_request(execution_id, name, payload, event_id)
        response = await self._call(self._stub().SendEvent, request)
        return response.delivered

    async def provide_input(self, execution_id: str, name: str, value: Any) -> None:
        """Answer the pending human input ``name`` of an execution (``ctx.wait_for_input``).

        Args:
            execution_id: The execution's id.
            name: The input's name (see :meth:`list_pending_inputs`).
            value: The answer, which must fit the input's kind: ``True``/``False`` or
                ``{"approved": bool, "comment": str}`` for an approval, one of the choices,
                a list of distinct choices, a string, or an object with the form's fields.

        Raises:
            ValueError: A bad name (before any call is made).
            InvalidArgumentError: The answer does not fit the input's kind.
            FailedPreconditionError: The execution waits for no input by that name.
            NotFoundError: No such execution.
        """
        request = provide_input_request(execution_id, name, value)
        await self._call(self._stub().ProvideInput, request)

    async def list_pending_inputs(
        self,
        *,
        execution_id: str | None = None,
        workflow: str | Workflow | None = None,
        name: str | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> PendingInputPage:
        """List the human inputs executions wait for, oldest first; every filter must match.

        Args:
            execution_id: Only this execution's inputs.
            workflow: Only inputs of this workflow's executions.
            name: Only inputs with this name.
            page_size: At most this many (0 means the orchestrator's default).
            page_token: ``next_page_token`` of the previous page, with the same filters.
        """
        request = pending_inputs_request(
            execution_id=execution_id,
            workflow=workflow,
            name=name,
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._stub().ListPendingInputs, request)
        return pending_input_page_from_proto(response)

    async def list_pending_events(
        self,
        *,
        execution_id: str | None = None,
        workflow: str | Workflow | None = None,
        name: str | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> PendingEventPage:
        """List the event waits executions are parked on, oldest first.

        Args:
            execution_id: Only this execution's waits.
            workflow: Only waits of this workflow's executions.
            name: Only waits that include this event name.
            page_size: At most this many (0 means the orchestrator's default).
            page_token: ``next_page_token`` of the previous page, with the same filters.
        """
        request = pending_events_request(
            execution_id=execution_id,
            workflow=workflow,
            name=name,
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._stub().ListPendingEvents, request)
        return pending_event_page_from_proto(response)

    async def get_execution_graph(
        self,
        execution_id: str | None = None,
        *,
        workflow: str | Workflow | None = None,
        format: GraphFormatName = "mermaid",
    ) -> str:
        """A workflow drawn as a graph: a Mermaid flowchart or Graphviz DOT text.

        Steps, branches (an edge per case), parallel groups and foreach (clusters with a
        fork and a join) and compensations (dashed edges). Given an execution, its
        definition version with the state of each node (completed, running, waiting,
        failed, skipped, pending) and what waiting steps wait for; given a workflow, its
        latest definition.

        Args:
            execution_id: The execution to draw.
            workflow: Or the workflow (or its name) to draw, without state.
            format: ``"mermaid"`` or ``"dot"``.

        Raises:
            ValueError: Neither or both of ``execution_id`` and ``workflow``, or an
                unknown format.
            NotFoundError: No such execution or workflow.
        """
        request = graph_request(execution_id, workflow=workflow, format=format)
        response = await self._call(self._stub().GetExecutionGraph, request)
        return response.text

    # -- schedules ---------------------------------------------------------------------

    async def create_schedule(
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
        """Create a cron schedule that starts ``workflow``; return it.

        Slots follow the wall clock of ``timezone``: a time that does not exist when
        clocks go forward fires once, at that time plus the jump (02:30 becomes 03:30); a
        time that happens twice when clocks go back fires once, the first time.

        Args:
            name: The schedule's name, unique among all schedules.
            workflow: The workflow each run starts, or its name.
            cron: Five fields (minute hour day-of-month month day-of-week), six with
                seconds first, or an alias: ``@yearly``, ``@monthly``, ``@weekly``,
                ``@daily``, ``@hourly``.
            timezone: An IANA time zone (``"America/New_York"``); ``""`` means UTC.
            input: The input of each run (as for :meth:`start`).
            queue: The runs' queue; ``None`` means the workflow's.
            priority: The runs' priority.
            enabled: False to create it switched off.
            catch_up: Slots missed while no orchestrator ran: ``"once"`` (one run for
                them all), ``"skip"``, or ``"all"`` (each, up to ``catch_up_limit``).
            catch_up_limit: With ``"all"``, at most this many missed slots run (0: 10).
            overlap: A slot while the previous run still runs: ``"allow"``, ``"skip"``
                or ``"cancel_previous"``.
            max_failures: Consecutive failures to start a run before the schedule
                disables itself (0: 5).

        Raises:
            AlreadyExistsError: The name is taken.
            InvalidArgumentError: A bad name, cron expression, time zone or value.
        """
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
        response = await self._call(self._schedules().CreateSchedule, request)
        return schedule_from_proto(response.schedule)

    async def get_schedule(self, name: str) -> Schedule:
        """Read one schedule; NotFoundError if there is none by that name."""
        request = spb.GetScheduleRequest(name=name)
        response = await self._call(self._schedules().GetSchedule, request)
        return schedule_from_proto(response.schedule)

    async def list_schedules(
        self,
        *,
        enabled: bool | None = None,
        workflow: str | Workflow | None = None,
        queue: str | None = None,
        page_size: int = 0,
        page_token: str | None = None,
    ) -> SchedulePage:
        """List schedules by name; every filter given must match.

        Args:
            enabled: Only the enabled (True) or the disabled (False) ones.
            workflow: Only the schedules of this workflow.
            queue: Only the schedules with this queue.
            page_size: At most this many (0 means the orchestrator's default).
            page_token: ``next_page_token`` of the previous page, with the same filters.
        """
        request = list_schedules_request(
            enabled=enabled,
            workflow=workflow,
            queue=queue,
            page_size=page_size,
            page_token=page_token,
        )
        response = await self._call(self._schedules().ListSchedules, request)
        return schedule_page_from_proto(response)

    async def update_schedule(self, name: str, **changes: Unpack[ScheduleChanges]) -> Schedule:
        """Change the given fields of a schedule; return it.

        ``client.update_schedule("nightly", cron="0 3 * * *", input={"full": True})``
        changes the cron expression and the input, nothing else. The keywords are those
        of :meth:`create_schedule` (``queue=None`` goes back to the workflow's queue).

        Raises:
            TypeError: A keyword that is not a field one can change.
            ValueError: No keyword at all.
            NotFoundError: No schedule by that name.
            InvalidArgumentError: A bad value.
        """
        request = update_schedule_request(name, changes)
        response = await self._call(self._schedules().UpdateSchedule, request)
        return schedule_from_proto(response.schedule)

    async def enable_schedule(self, name: str) -> Schedule:
        """Turn a schedule on (it fires from its next slot on); return it."""
        request = spb.EnableScheduleRequest(name=name)
        response = await self._call(self._schedules().EnableSchedule, request)
        return schedule_from_proto(response.schedule)

    async def disable_schedule(self, name: str) -> Schedule:
        """Turn a schedule off; return it."""
        request = spb.DisableScheduleRequest(name=name)
        response = await self._call(self._schedules().DisableSchedule, request)
        return schedule_from_proto(response.schedule)

    async def delete_schedule(self, name: str) -> None:
        """Delete a schedule; the executions it started stay."""
        await self._call(self._schedules().DeleteSchedule, spb.DeleteScheduleRequest(name=name))

    async def trigger_schedule(self, name: str, input: Any = UNSET) -> str:
        """Start one run of a schedule now, and return the execution's id.

        Args:
            name: The schedule's name.
            input: This run's input; not given means the schedule's input (``None`` is
                a null input).
        """
        request = trigger_schedule_request(name, input)
        response = await self._call(self._schedules().TriggerSchedule, request)
        return response.execution_id

    # -- operations --------------------------------------------------------------------

    async def pause_queue(self, queue: str, reason: str = "") -> QueueInfo:
        """Stop workers from taking the queue's tasks (running ones finish); return it.

        New executions are still accepted; they wait until :meth:`resume_queue`.
        """
        request = opb.PauseQueueRequest(queue=queue, reason=reason)
        response = await self._call(self._operations().PauseQueue, request)
        return queue_info_from_proto(response.queue)

    async def resume_queue(self, queue: str) -> QueueInfo:
        """Let workers take a paused or draining queue's tasks, and new starts, again."""
        request = opb.ResumeQueueRequest(queue=queue)
        response = await self._call(self._operations().ResumeQueue, request)
        return queue_info_from_proto(response.queue)

    async def drain_queue(self, queue: str, reason: str = "") -> QueueInfo:
        """Refuse new executions on the queue while the work already on it runs to its end.

        Starts on a draining queue raise FailedPreconditionError.
        """
        request = opb.DrainQueueRequest(queue=queue, reason=reason)
        response = await self._call(self._operations().DrainQueue, request)
        return queue_info_from_proto(response.queue)

    async def list_queues(self) -> list[QueueInfo]:
        """Every queue with work or a state: its state, counts and oldest ready age."""
        response = await self._call(self._operations().ListQueues, opb.ListQueuesRequest())
        return [queue_info_from_proto(q) for q in response.queues]

    async def retry_execution(self, execution_id: str) -> str:
        """Run a failed execution again from the top-level step that failed; return that step.

        The step runs again with its input; the execution's history is kept.

        Raises:
            NotFoundError: No such execution.
            FailedPreconditionError: The execution has not failed.
        """
        request = opb.RetryExecutionRequest(execution_id=execution_id)
        response = await self._call(self._operations().RetryExecution, request)
        return response.step_name

    async def diagnose(
        self, *, limit: int = 0, worker_alive_within: timedelta | None = None
    ) -> list[Finding]:
        """Find unfinished executions that nothing can move forward, and say why.

        Args:
            limit: At most this many findings (0 means the orchestrator's 100).
            worker_alive_within: Workers seen within this long count as alive (``None``
                means the orchestrator's 60 seconds).
        """
        request = diagnose_request(limit=limit, worker_alive_within=worker_alive_within)
        response = await self._call(self._operations().Diagnose, request)
        return [finding_from_proto(f) for f in response.findings]

    async def wait(
        self,
        execution_id: str,
        *,
        timeout: float | None = 60.0,  # noqa: ASYNC109 - bounds the whole wait, not one await
        poll_interval: float = 0.05,
    ) -> Execution:
        """Wait until an execution reaches a terminal status, and return it.

        The orchestrator answers as soon as the execution finishes (WaitExecution, a
        long poll), so this neither lags behind the finish nor polls. An outage of the
        orchestrator or its database does not end the wait: it asks again, with
        backoff, until ``timeout``.

        Args:
            execution_id: The execution to wait for.
            timeout: Seconds to wait in all (``None`` waits forever); past it,
                DeadlineExceededError is raised.
            poll_interval: Only against an older orchestrator without WaitExecution:
                seconds between the first polls of GetExecution; the pause grows up to
                :data:`MAX_POLL_INTERVAL`.
        """
        waiting = WaitDeadline(execution_id, timeout, poll_interval)
        while True:
            wait_secs = waiting.server_wait()
            try:
                response = await self._call(
                    self._stub().WaitExecution,
                    wait_request(execution_id, wait_secs),
                    deadline=wait_secs + self.timeout,
                )
            except DurableError as exc:
                if is_unimplemented(exc):
                    return await self._poll_until_finished(waiting, execution_id)
                if not waiting.asks_again_after(exc):
                    raise
                await asyncio.sleep(waiting.next_delay())
                continue
            execution = execution_from_proto(response.execution)
            if execution.status.is_terminal:
                return execution
            if waiting.is_over():
                raise waiting.expired()

    async def _poll_until_finished(self, waiting: WaitDeadline, execution_id: str) -> Execution:
        """``wait`` against an orchestrator without WaitExecution: poll GetExecution."""
        while True:
            request = get_request(execution_id, include_steps=False, include_logs=False)
            try:
                response = await self._call(
                    self._stub().GetExecution,
                    request,
                    deadline=waiting.rpc_timeout(self.timeout),
                )
            except DeadlineExceededError as exc:
                if waiting.is_over():
                    raise waiting.expired() from exc
                raise
            execution = execution_from_proto(response.execution)
            if execution.status.is_terminal:
                return execution
            await asyncio.sleep(waiting.next_delay())
