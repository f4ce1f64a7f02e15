"""Protobuf to the client's values (:mod:`durable._models`), and back for what it sends.

User data (``input``, ``result``, payloads) is decoded from JSON through
:mod:`durable._serde`, timestamps become aware UTC datetimes (``None`` when unset) and
enum values become the SDK's string enums, with a clear error for a value this SDK does
not know (an orchestrator newer than the SDK).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from durable import _serde
from durable._enums import ProtoEnum
from durable._models import (
    CatchUp,
    ErrorInfo,
    Event,
    EventWaitMode,
    Execution,
    ExecutionPage,
    ExecutionStatus,
    Finding,
    InputField,
    InputKind,
    LogLine,
    Overlap,
    PendingEventPage,
    PendingEventWait,
    PendingInput,
    PendingInputPage,
    QueueInfo,
    QueueStateName,
    Schedule,
    SchedulePage,
    StartResult,
    StepAttempt,
    StepAttemptStatus,
    TaskKind,
)
from durable.v1 import (
    common_pb2,
    operations_service_pb2,
    schedule_service_pb2,
    workflow_service_pb2,
)

__all__ = [
    "catch_up_from_proto",
    "catch_up_to_proto",
    "error_info_from_proto",
    "event_from_proto",
    "event_wait_mode_from_proto",
    "event_wait_mode_to_proto",
    "execution_from_proto",
    "execution_page_from_proto",
    "execution_status_from_proto",
    "execution_status_to_proto",
    "finding_from_proto",
    "input_field_from_proto",
    "input_field_to_proto",
    "input_kind_from_proto",
    "input_kind_to_proto",
    "log_line_from_proto",
    "overlap_from_proto",
    "overlap_to_proto",
    "pending_event_page_from_proto",
    "pending_event_wait_from_proto",
    "pending_input_from_proto",
    "pending_input_page_from_proto",
    "queue_info_from_proto",
    "queue_state_from_proto",
    "schedule_from_proto",
    "schedule_page_from_proto",
    "start_result_from_proto",
    "step_attempt_from_proto",
    "step_attempt_status_from_proto",
    "task_kind_from_proto",
    "timedelta_from_proto",
    "timestamp_from_proto",
]

"""The types a form field may have (``"any"`` accepts any JSON value)."""


# Built from the member names so the Python and proto enums cannot drift apart silently:
# a member without a proto value fails here, at import.
_EXECUTION_STATUS = ProtoEnum(
    ExecutionStatus, common_pb2.ExecutionStatus, "EXECUTION_STATUS_", "execution status"
)
_STEP_ATTEMPT_STATUS = ProtoEnum(
    StepAttemptStatus, common_pb2.StepAttemptStatus, "STEP_ATTEMPT_STATUS_", "step attempt status"
)
# An older orchestrator sends no kind: a step.
_TASK_KIND = ProtoEnum(TaskKind, common_pb2.TaskKind, "TASK_KIND_", "task kind", TaskKind.STEP)
_INPUT_KIND = ProtoEnum(InputKind, common_pb2.InputKind, "INPUT_KIND_", "input kind")
_EVENT_WAIT_MODE = ProtoEnum(
    EventWaitMode, common_pb2.EventWaitMode, "EVENT_WAIT_MODE_", "event wait mode"
)
_CATCH_UP = ProtoEnum(
    CatchUp, common_pb2.CatchUp, "CATCH_UP_", "catch-up policy", CatchUp.ONCE, name="catch_up"
)
_OVERLAP = ProtoEnum(
    Overlap, common_pb2.Overlap, "OVERLAP_", "overlap policy", Overlap.ALLOW, name="overlap"
)

_QUEUE_STATE_FROM_PROTO: dict[int, QueueStateName] = {
    operations_service_pb2.QUEUE_STATE_UNSPECIFIED: "active",
    operations_service_pb2.QUEUE_STATE_ACTIVE: "active",
    operations_service_pb2.QUEUE_STATE_PAUSED: "paused",
    operations_service_pb2.QUEUE_STATE_DRAINING: "draining",
}


def execution_status_from_proto(value: int) -> ExecutionStatus:
    """The status for a proto enum value; ValueError for UNSPECIFIED or an unknown value."""
    return _EXECUTION_STATUS.from_proto(value)


def execution_status_to_proto(
    status: ExecutionStatus | str,
) -> common_pb2.ExecutionStatus.ValueType:
    """The proto enum value for a status or its name (``"running"``); ValueError if unknown."""
    return common_pb2.ExecutionStatus.ValueType(_EXECUTION_STATUS.to_proto(status))


def step_attempt_status_from_proto(value: int) -> StepAttemptStatus:
    """The step attempt status for a proto enum value; ValueError if unknown."""
    return _STEP_ATTEMPT_STATUS.from_proto(value)


def task_kind_from_proto(value: int) -> TaskKind:
    """The task kind for a proto enum value; UNSPECIFIED (an older orchestrator) is a step."""
    return _TASK_KIND.from_proto(value)


def input_kind_to_proto(kind: InputKind | str) -> common_pb2.InputKind.ValueType:
    """The proto enum value for an input kind or its name; ValueError if unknown."""
    return common_pb2.InputKind.ValueType(_INPUT_KIND.to_proto(kind))


def input_kind_from_proto(value: int) -> InputKind:
    """The input kind for a proto enum value; ValueError for UNSPECIFIED or an unknown value."""
    return _INPUT_KIND.from_proto(value)


def event_wait_mode_to_proto(mode: EventWaitMode | str) -> common_pb2.EventWaitMode.ValueType:
    """The proto enum value for an event wait mode or its name; ValueError if unknown."""
    return common_pb2.EventWaitMode.ValueType(_EVENT_WAIT_MODE.to_proto(mode))


def event_wait_mode_from_proto(value: int) -> EventWaitMode:
    """The event wait mode for a proto enum value; ValueError for UNSPECIFIED or unknown."""
    return _EVENT_WAIT_MODE.from_proto(value)


def catch_up_to_proto(catch_up: CatchUp | str) -> common_pb2.CatchUp.ValueType:
    """The proto enum value for a catch-up policy or its name; ValueError if unknown."""
    return common_pb2.CatchUp.ValueType(_CATCH_UP.to_proto(catch_up))


def catch_up_from_proto(value: int) -> CatchUp:
    """The catch-up policy for a proto enum value; UNSPECIFIED is the default, ``once``."""
    return _CATCH_UP.from_proto(value)


def overlap_to_proto(overlap: Overlap | str) -> common_pb2.Overlap.ValueType:
    """The proto enum value for an overlap policy or its name; ValueError if unknown."""
    return common_pb2.Overlap.ValueType(_OVERLAP.to_proto(overlap))


def overlap_from_proto(value: int) -> Overlap:
    """The overlap policy for a proto enum value; UNSPECIFIED is the default, ``allow``."""
    return _OVERLAP.from_proto(value)


def queue_state_from_proto(value: int) -> QueueStateName:
    """The queue state for a proto enum value; UNSPECIFIED is ``active``."""
    try:
        return _QUEUE_STATE_FROM_PROTO[value]
    except KeyError:
        raise ValueError(
            f"the orchestrator sent an unknown queue state ({value}); "
            "is this SDK older than the orchestrator?"
        ) from None


def timedelta_from_proto(message: Message, field: str) -> timedelta | None:
    """The timedelta in ``message.<field>`` (a Duration), or ``None`` when it is unset."""
    if not message.HasField(field):
        return None
    duration: Duration = getattr(message, field)
    return duration.ToTimedelta()


def timestamp_from_proto(message: Message, field: str) -> datetime | None:
    """The aware UTC datetime in ``message.<field>``, or ``None`` when the field is unset."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=UTC)


def error_info_from_proto(
    message: workflow_service_pb2.Execution | workflow_service_pb2.StepAttempt,
) -> ErrorInfo | None:
    """The ``error`` field of an execution or step attempt, or ``None`` when unset."""
    if not message.HasField("error"):
        return None
    return _error_info(message.error)


def _error_info(info: common_pb2.ErrorInfo) -> ErrorInfo:
    return ErrorInfo(
        type=info.type,
        message=info.message,
        traceback=info.traceback,
        non_retryable=info.non_retryable,
        cause=_error_info(info.cause) if info.HasField("cause") else None,
    )


def log_line_from_proto(msg: common_pb2.LogLine) -> LogLine:
    """A captured log line."""
    return LogLine(
        time=timestamp_from_proto(msg, "time"),
        level=msg.level,
        message=msg.message,
        logger=msg.logger,
    )


def step_attempt_from_proto(msg: workflow_service_pb2.StepAttempt) -> StepAttempt:
    """A step attempt, with its result decoded."""
    return StepAttempt(
        step_name=msg.step_name,
        sequence=msg.sequence,
        attempt=msg.attempt,
        status=step_attempt_status_from_proto(msg.status),
        result=_serde.loads_or_raw(msg.result_json),
        error=error_info_from_proto(msg),
        worker_id=msg.worker_id,
        started_at=timestamp_from_proto(msg, "started_at"),
        finished_at=timestamp_from_proto(msg, "finished_at"),
        retry_at=timestamp_from_proto(msg, "retry_at"),
        logs=tuple(log_line_from_proto(line) for line in msg.logs),
        kind=task_kind_from_proto(msg.kind),
        lane_path=msg.lane_path,
    )


def execution_from_proto(msg: workflow_service_pb2.Execution) -> Execution:
    """An execution, with its input and result decoded."""
    return Execution(
        id=msg.id,
        workflow_name=msg.workflow_name,
        workflow_version=msg.workflow_version,
        status=execution_status_from_proto(msg.status),
        queue=msg.queue,
        priority=msg.priority,
        input=_serde.loads_or_raw(msg.input_json),
        result=_serde.loads_or_raw(msg.result_json),
        error=error_info_from_proto(msg),
        parent_execution_id=msg.parent_execution_id,
        idempotency_key=msg.idempotency_key,
        current_step=msg.current_step,
        created_at=timestamp_from_proto(msg, "created_at"),
        scheduled_at=timestamp_from_proto(msg, "scheduled_at"),
        started_at=timestamp_from_proto(msg, "started_at"),
        finished_at=timestamp_from_proto(msg, "finished_at"),
        deadline_at=timestamp_from_proto(msg, "deadline_at"),
        steps=tuple(step_attempt_from_proto(s) for s in msg.steps),
        unconsumed_events=tuple(event_from_proto(e) for e in msg.unconsumed_events),
        schedule_name=msg.schedule_name,
        schedule_slot=timestamp_from_proto(msg, "schedule_slot"),
    )


def event_from_proto(msg: workflow_service_pb2.Event) -> Event:
    """An event, with its payload decoded."""
    return Event(
        name=msg.name,
        payload=_serde.loads_or_raw(msg.payload_json),
        sent_at=timestamp_from_proto(msg, "sent_at"),
    )


def input_field_from_proto(msg: common_pb2.InputField) -> InputField:
    """A form field (an empty type is ``"any"``)."""
    return InputField(name=msg.name, type=msg.type or "any", required=msg.required, label=msg.label)


def input_field_to_proto(field: InputField) -> common_pb2.InputField:
    """A form field as sent."""
    return common_pb2.InputField(
        name=field.name, type=field.type, required=field.required, label=field.label
    )


def pending_input_from_proto(msg: workflow_service_pb2.PendingInput) -> PendingInput:
    """A pending human input."""
    return PendingInput(
        execution_id=msg.execution_id,
        workflow_name=msg.workflow_name,
        step_name=msg.step_name,
        name=msg.name,
        kind=input_kind_from_proto(msg.kind),
        prompt=msg.prompt,
        choices=tuple(msg.choices),
        fields=tuple(input_field_from_proto(f) for f in msg.fields),
        requested_at=timestamp_from_proto(msg, "requested_at"),
        deadline_at=timestamp_from_proto(msg, "deadline_at"),
    )


def pending_event_wait_from_proto(msg: workflow_service_pb2.PendingEventWait) -> PendingEventWait:
    """A pending event wait."""
    return PendingEventWait(
        execution_id=msg.execution_id,
        workflow_name=msg.workflow_name,
        step_name=msg.step_name,
        names=tuple(msg.names),
        mode=event_wait_mode_from_proto(msg.mode),
        received=tuple(msg.received),
        waiting_since=timestamp_from_proto(msg, "waiting_since"),
        deadline_at=timestamp_from_proto(msg, "deadline_at"),
    )


def pending_input_page_from_proto(
    msg: workflow_service_pb2.ListPendingInputsResponse,
) -> PendingInputPage:
    """A page of pending inputs."""
    return PendingInputPage(
        inputs=tuple(pending_input_from_proto(i) for i in msg.inputs),
        next_page_token=msg.next_page_token,
    )


def pending_event_page_from_proto(
    msg: workflow_service_pb2.ListPendingEventsResponse,
) -> PendingEventPage:
    """A page of pending event waits."""
    return PendingEventPage(
        waits=tuple(pending_event_wait_from_proto(w) for w in msg.waits),
        next_page_token=msg.next_page_token,
    )


def execution_page_from_proto(
    msg: workflow_service_pb2.ListExecutionsResponse | workflow_service_pb2.ListChildrenResponse,
) -> ExecutionPage:
    """A page of executions (``total_count`` is ``None`` for a page of children)."""
    return ExecutionPage(
        executions=tuple(execution_from_proto(e) for e in msg.executions),
        next_page_token=msg.next_page_token,
        total_count=msg.total_count
        if isinstance(msg, workflow_service_pb2.ListExecutionsResponse)
        else None,
    )


def start_result_from_proto(msg: workflow_service_pb2.StartWorkflowResponse) -> StartResult:
    """The id of the started (or matched) execution and whether it is new."""
    return StartResult(execution_id=msg.execution_id, created=msg.created)


def schedule_from_proto(msg: schedule_service_pb2.Schedule) -> Schedule:
    """A schedule, with its input decoded."""
    return Schedule(
        name=msg.name,
        workflow_name=msg.workflow_name,
        cron=msg.cron,
        timezone=msg.timezone,
        input=_serde.loads_or_raw(msg.input_json),
        queue=msg.queue,
        priority=msg.priority,
        enabled=msg.enabled,
        catch_up=catch_up_from_proto(msg.catch_up),
        catch_up_limit=msg.catch_up_limit,
        overlap=overlap_from_proto(msg.overlap),
        max_failures=msg.max_failures,
        next_fire_at=timestamp_from_proto(msg, "next_fire_at"),
        last_fire_at=timestamp_from_proto(msg, "last_fire_at"),
        last_execution_id=msg.last_execution_id,
        consecutive_failures=msg.consecutive_failures,
        last_error=msg.last_error,
        disabled_reason=msg.disabled_reason,
        declared=msg.declared,
        created_at=timestamp_from_proto(msg, "created_at"),
        updated_at=timestamp_from_proto(msg, "updated_at"),
    )


def schedule_page_from_proto(msg: schedule_service_pb2.ListSchedulesResponse) -> SchedulePage:
    """A page of schedules."""
    return SchedulePage(
        schedules=tuple(schedule_from_proto(s) for s in msg.schedules),
        next_page_token=msg.next_page_token,
    )


def queue_info_from_proto(msg: operations_service_pb2.QueueInfo) -> QueueInfo:
    """A queue's state and load."""
    return QueueInfo(
        name=msg.name,
        state=queue_state_from_proto(msg.state),
        reason=msg.reason,
        ready=msg.ready,
        leased=msg.leased,
        waiting=msg.waiting,
        delayed=msg.delayed,
        oldest_ready_age=timedelta_from_proto(msg, "oldest_ready_age"),
        concurrency_limit=msg.concurrency_limit,
    )


def finding_from_proto(msg: operations_service_pb2.Finding) -> Finding:
    """A diagnosed execution."""
    return Finding(
        execution_id=msg.execution_id,
        workflow_name=msg.workflow_name,
        status=msg.status,
        problem=msg.problem,
        detail=msg.detail,
        since=timestamp_from_proto(msg, "since"),
    )
