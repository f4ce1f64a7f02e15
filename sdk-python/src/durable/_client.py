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

The request builders and :class:`WaitDeadline` here are shared with
:class:`~durable.SyncClient`, so both clients send the same requests and return the same
values (conversions live in :mod:`durable._models`).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Literal, TypedDict, TypeVar, Unpack

import grpc
import grpc.aio
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from durable import _serde
from durable._channel import (
    CLIENT_CHANNEL_OPTIONS,
    TLSConfig,
    aio_channel,
    auth_metadata,
    check_token,
    resolve_tls,
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
    catch_up_to_proto,
    execution_from_proto,
    execution_page_from_proto,
    execution_status_to_proto,
    finding_from_proto,
    overlap_to_proto,
    pending_event_page_from_proto,
    pending_input_page_from_proto,
    queue_info_from_proto,
    schedule_from_proto,
    schedule_page_from_proto,
    start_result_from_proto,
)
from durable._nodes import check_name
from durable._tracing import metadata_for_current_context
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
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc

__all__ = [
    "DEFAULT_ADDRESS",
    "UNSET",
    "Client",
    "GraphFormatName",
    "ScheduleChanges",
    "WaitDeadline",
]

DEFAULT_ADDRESS = "127.0.0.1:7411"
MAX_POLL_INTERVAL = 1.0
# The longest a WaitExecution call parks on the orchestrator before the client asks again.
LONG_POLL_SECS = 60.0
"""The longest pause between two polls of :meth:`Client.wait`, in seconds."""

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


def _timestamp(name: str, value: datetime | None) -> Timestamp | None:
    """A Timestamp for an aware datetime; ValueError for a naive one (its zone is unknown)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _workflow_name(workflow: str | Workflow) -> str:
    return workflow.name if isinstance(workflow, Workflow) else workflow


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset.UNSET
"""The default of an argument that was not given (``trigger_schedule``'s ``input``)."""


class ScheduleChanges(TypedDict, total=False):
    """The keyword arguments of ``update_schedule``: the fields to change, and their values.

    ``queue=None`` (or ``""``) goes back to the workflow's queue.
    """

    workflow: str | Workflow
    cron: str
    timezone: str
    input: Any
    queue: str | None
    priority: int
    enabled: bool
    catch_up: CatchUp | CatchUpName
    catch_up_limit: int
    overlap: Overlap | OverlapName
    max_failures: int


# update_schedule's keyword -> (the Schedule field it sets, how its value is written there)
_SCHEDULE_CHANGES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "workflow": ("workflow_name", _workflow_name),
    "cron": ("cron", lambda v: v),
    "timezone": ("timezone", lambda v: v),
    "input": ("input_json", _serde.dumps),
    "queue": ("queue", lambda v: v or ""),
    "priority": ("priority", lambda v: v),
    "enabled": ("enabled", lambda v: v),
    "catch_up": ("catch_up", catch_up_to_proto),
    "catch_up_limit": ("catch_up_limit", lambda v: v),
    "overlap": ("overlap", overlap_to_proto),
    "max_failures": ("max_failures", lambda v: v),
}


def start_request(
    workflow: str | Workflow,
    input: Any,
    *,
    queue: str | None,
    priority: int,
    scheduled_at: datetime | None,
    idempotency_key: str | None,
) -> pb.StartWorkflowRequest:
    """The StartWorkflow request; the input is encoded as JSON here."""
    return pb.StartWorkflowRequest(
        workflow_name=_workflow_name(workflow),
        input_json=_serde.dumps(input),
        queue=queue or "",
        priority=priority,
        scheduled_at=_timestamp("scheduled_at", scheduled_at),
        idempotency_key=idempotency_key or "",
    )


MAX_STARTS_PER_CALL = 1000
"""Starts per StartWorkflows call; ``start_many`` splits longer lists."""


def start_many_requests(
    workflow: str | Workflow,
    inputs: Sequence[Any],
    *,
    queue: str | None,
    priority: int,
    idempotency_keys: Sequence[str] | None,
) -> list[pb.StartWorkflowsRequest]:
    """The StartWorkflows requests for ``inputs``, at most ``MAX_STARTS_PER_CALL`` each."""
    if idempotency_keys is not None and len(idempotency_keys) != len(inputs):
        raise ValueError(
            f"idempotency_keys has {len(idempotency_keys)} keys for {len(inputs)} inputs"
        )
    one = [
        start_request(
            workflow,
            data,
            queue=queue,
            priority=priority,
            scheduled_at=None,
            idempotency_key=idempotency_keys[i] if idempotency_keys is not None else None,
        )
        for i, data in enumerate(inputs)
    ]
    return [
        pb.StartWorkflowsRequest(requests=one[i : i + MAX_STARTS_PER_CALL])
        for i in range(0, len(one), MAX_STARTS_PER_CALL)
    ]


def get_request(
    execution_id: str, *, include_steps: bool, include_logs: bool
) -> pb.GetExecutionRequest:
    """The GetExecution request."""
    return pb.GetExecutionRequest(
        execution_id=execution_id, include_steps=include_steps, include_logs=include_logs
    )


def list_request(
    *,
    workflow: str | Workflow | None,
    statuses: Iterable[ExecutionStatus | str] | None,
    queue: str | None,
    parent_execution_id: str | None,
    top_level_only: bool,
    created_after: datetime | None,
    created_before: datetime | None,
    page_size: int,
    page_token: str | None,
    schedule: str | None = None,
) -> pb.ListExecutionsRequest:
    """The ListExecutions request; ValueError for an unknown status name."""
    if isinstance(statuses, str):  # a lone "running" would otherwise iterate its letters
        statuses = [statuses]
    return pb.ListExecutionsRequest(
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        statuses=[execution_status_to_proto(s) for s in statuses or ()],
        queue=queue or "",
        parent_execution_id=parent_execution_id or "",
        top_level_only=top_level_only,
        created_after=_timestamp("created_after", created_after),
        created_before=_timestamp("created_before", created_before),
        page_size=page_size,
        page_token=page_token or "",
        schedule_name=schedule or "",
    )


def children_request(
    parent_execution_id: str,
    *,
    statuses: Iterable[ExecutionStatus | str] | None,
    page_size: int,
    page_token: str | None,
) -> pb.ListChildrenRequest:
    """The ListChildren request; ValueError for an unknown status name."""
    if isinstance(statuses, str):  # a lone "running" would otherwise iterate its letters
        statuses = [statuses]
    return pb.ListChildrenRequest(
        parent_execution_id=parent_execution_id,
        statuses=[execution_status_to_proto(s) for s in statuses or ()],
        page_size=page_size,
        page_token=page_token or "",
    )


def cancel_request(execution_id: str, *, reason: str) -> pb.CancelExecutionRequest:
    """The CancelExecution request."""
    return pb.CancelExecutionRequest(execution_id=execution_id, reason=reason)


def wait_request(execution_id: str, wait_secs: float) -> pb.WaitExecutionRequest:
    """The WaitExecution request: park up to ``wait_secs`` for the execution to finish."""
    request = pb.WaitExecutionRequest(execution_id=execution_id)
    request.timeout.FromTimedelta(timedelta(seconds=wait_secs))
    return request


def is_unimplemented(error: DurableError) -> bool:
    """Whether ``error`` says the orchestrator lacks the RPC (an older version)."""
    return getattr(error, "code", None) == grpc.StatusCode.UNIMPLEMENTED


def send_event_request(
    execution_id: str, name: str, payload: Any, event_id: str | None = None
) -> pb.SendEventRequest:
    """The SendEvent request; the payload is encoded as JSON here.

    Raises:
        ValueError: ``name`` breaks the rule of names (the orchestrator's rule, checked
            here so the call is not made).
    """
    return pb.SendEventRequest(
        execution_id=execution_id,
        name=check_name("event", name),
        payload_json=_serde.dumps(payload),
        event_id=event_id or "",
    )


def provide_input_request(execution_id: str, name: str, value: Any) -> pb.ProvideInputRequest:
    """The ProvideInput request; the value is encoded as JSON here.

    Raises:
        ValueError: ``name`` breaks the rule of names.
    """
    return pb.ProvideInputRequest(
        execution_id=execution_id,
        name=check_name("input", name),
        value_json=_serde.dumps(value),
    )


def pending_inputs_request(
    *,
    execution_id: str | None,
    workflow: str | Workflow | None,
    name: str | None,
    page_size: int,
    page_token: str | None,
) -> pb.ListPendingInputsRequest:
    """The ListPendingInputs request."""
    return pb.ListPendingInputsRequest(
        execution_id=execution_id or "",
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        name=name or "",
        page_size=page_size,
        page_token=page_token or "",
    )


def pending_events_request(
    *,
    execution_id: str | None,
    workflow: str | Workflow | None,
    name: str | None,
    page_size: int,
    page_token: str | None,
) -> pb.ListPendingEventsRequest:
    """The ListPendingEvents request."""
    return pb.ListPendingEventsRequest(
        execution_id=execution_id or "",
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        name=name or "",
        page_size=page_size,
        page_token=page_token or "",
    )


GraphFormatName = Literal["mermaid", "dot"]
"""A graph's text format: a Mermaid flowchart or Graphviz DOT."""

_GRAPH_FORMATS: dict[str, pb.GraphFormat.ValueType] = {
    "mermaid": pb.GRAPH_FORMAT_MERMAID,
    "dot": pb.GRAPH_FORMAT_DOT,
}


def graph_request(
    execution_id: str | None, *, workflow: str | Workflow | None, format: str
) -> pb.GetExecutionGraphRequest:
    """The GetExecutionGraph request; ValueError unless exactly one of the two is given."""
    if (execution_id is None) == (workflow is None):
        raise ValueError("give an execution_id or a workflow (not both)")
    if format not in _GRAPH_FORMATS:
        raise ValueError(f"format must be one of {sorted(_GRAPH_FORMATS)}, got {format!r}")
    return pb.GetExecutionGraphRequest(
        execution_id=execution_id or "",
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        format=_GRAPH_FORMATS[format],
    )


def create_schedule_request(
    name: str,
    workflow: str | Workflow,
    cron: str,
    *,
    timezone: str,
    input: Any,
    queue: str | None,
    priority: int,
    enabled: bool,
    catch_up: CatchUp | CatchUpName,
    catch_up_limit: int,
    overlap: Overlap | OverlapName,
    max_failures: int,
) -> spb.CreateScheduleRequest:
    """The CreateSchedule request; ValueError for an unknown catch-up or overlap name."""
    return spb.CreateScheduleRequest(
        schedule=spb.Schedule(
            name=name,
            workflow_name=_workflow_name(workflow),
            cron=cron,
            timezone=timezone,
            input_json=_serde.dumps(input),
            queue=queue or "",
            priority=priority,
            enabled=enabled,
            catch_up=catch_up_to_proto(catch_up),
            catch_up_limit=catch_up_limit,
            overlap=overlap_to_proto(overlap),
            max_failures=max_failures,
        )
    )


def list_schedules_request(
    *,
    enabled: bool | None,
    workflow: str | Workflow | None,
    queue: str | None,
    page_size: int,
    page_token: str | None,
) -> spb.ListSchedulesRequest:
    """The ListSchedules request."""
    request = spb.ListSchedulesRequest(
        workflow_name=_workflow_name(workflow) if workflow is not None else "",
        queue=queue or "",
        page_size=page_size,
        page_token=page_token or "",
    )
    if enabled is not None:
        request.enabled = enabled
    return request


def update_schedule_request(name: str, changes: ScheduleChanges) -> spb.UpdateScheduleRequest:
    """The UpdateSchedule request: the given fields, and the mask naming them.

    Raises:
        TypeError: A keyword that is not a field one can change.
        ValueError: No change at all, or an unknown catch-up or overlap name.
    """
    unknown = sorted(set(changes) - set(_SCHEDULE_CHANGES))
    if unknown:
        raise TypeError(
            f"update_schedule() got unexpected keyword argument(s) {', '.join(unknown)}; "
            f"it changes {', '.join(_SCHEDULE_CHANGES)}"
        )
    if not changes:
        raise ValueError(
            f"update_schedule() needs something to change: {', '.join(_SCHEDULE_CHANGES)}"
        )
    schedule = spb.Schedule(name=name)
    mask = []
    for key, value in changes.items():
        field, write = _SCHEDULE_CHANGES[key]
        setattr(schedule, field, write(value))
        mask.append(field)
    return spb.UpdateScheduleRequest(schedule=schedule, update_mask=mask)


def trigger_schedule_request(name: str, input: Any) -> spb.TriggerScheduleRequest:
    """The TriggerSchedule request; ``input`` :data:`UNSET` means the schedule's input."""
    return spb.TriggerScheduleRequest(
        name=name, input_json="" if input is UNSET else _serde.dumps(input)
    )


def diagnose_request(*, limit: int, worker_alive_within: timedelta | None) -> opb.DiagnoseRequest:
    """The Diagnose request; ValueError for a negative limit or a non-positive duration."""
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    request = opb.DiagnoseRequest(limit=limit)
    if worker_alive_within is not None:
        if worker_alive_within <= timedelta(0):
            raise ValueError(f"worker_alive_within must be positive, got {worker_alive_within}")
        duration = Duration()
        duration.FromTimedelta(worker_alive_within)
        request.worker_alive_within.CopyFrom(duration)
    return request


class WaitDeadline:
    """The deadline of one ``wait`` call, and how long each call in it may take.

    ``wait`` long-polls WaitExecution, each call parked on the orchestrator for up to
    :data:`LONG_POLL_SECS` (:meth:`server_wait`). Against an orchestrator without it,
    ``wait`` polls GetExecution: polls start ``poll_interval`` apart and grow by half
    each time up to :data:`MAX_POLL_INTERVAL`, so a long wait does not hammer it.

    Args:
        execution_id: The execution waited for (named in the error).
        timeout: Seconds to wait in all; ``None`` waits forever.
        poll_interval: Seconds between the first polls.
        now: A monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        execution_id: str,
        timeout: float | None,
        poll_interval: float,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must not be negative, got {timeout}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        self._execution_id = execution_id
        self._timeout = timeout
        self._now = now
        self._deadline = None if timeout is None else now() + timeout
        self._interval = poll_interval
        self._max_interval = max(poll_interval, MAX_POLL_INTERVAL)

    def expired(self) -> DeadlineExceededError:
        """The error to raise when the wait is over."""
        return DeadlineExceededError(
            f"execution {self._execution_id} did not finish within {self._timeout}s"
        )

    def is_over(self) -> bool:
        """True once the deadline has passed."""
        return self._deadline is not None and self._now() >= self._deadline

    def server_wait(self) -> float:
        """Seconds the next WaitExecution may park: the time left, at most LONG_POLL_SECS."""
        if self._deadline is None:
            return LONG_POLL_SECS
        return max(min(LONG_POLL_SECS, self._deadline - self._now()), 0.0)

    def asks_again_after(self, exc: DurableError) -> bool:
        """Whether ``wait`` asks again after its WaitExecution failed with ``exc``.

        It does after UNAVAILABLE (the orchestrator or its database is down, and the
        channel's own retries, at most 5 in about 8 s, ran out) and DEADLINE_EXCEEDED (a
        long poll retried by the channel parks past its gRPC deadline), until the wait's
        own deadline: an outage longer than the channel rides out must not end a wait
        that may last minutes, so this is one loop gRPC's retry policy cannot replace.
        """
        return isinstance(exc, UnavailableError | DeadlineExceededError) and not self.is_over()

    def rpc_timeout(self, default: float) -> float:
        """The deadline of the next poll: the client's own, cut to the time left."""
        if self._deadline is None:
            return default
        return max(min(default, self._deadline - self._now()), 0.001)

    def next_delay(self) -> float:
        """Seconds to pause before the next poll; raises DeadlineExceededError when time is up."""
        delay = self._interval
        if self._deadline is not None:
            remaining = self._deadline - self._now()
            if remaining <= 0:
                raise self.expired()
            delay = min(delay, remaining)
        self._interval = min(self._interval * 1.5, self._max_interval)
        return delay


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
