"""Conversions between protobuf messages and the engine's values, nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from durable.v1 import common_pb2, worker_service_pb2, workflow_service_pb2
from durable_server.api import validate
from durable_server.engine.children import ChildWaitSpec
from durable_server.engine.logs import LogEntry
from durable_server.engine.reads import ExecutionDetail
from durable_server.engine.states import ExecutionStatus
from durable_server.engine.transitions import Evaluation, StepError
from durable_server.engine.waits import EventWaitSpec, InputWaitSpec, SleepSpec, WaitSpec
from durable_server.errors import InvalidArgumentError
from durable_server.store.rows import ClaimedTask, ExecutionRow, StepAttemptRow

__all__ = [
    "claimed_task_to_proto",
    "execution_to_proto",
    "status_from_proto",
    "step_error_from_proto",
]

_PREFIX = "EXECUTION_STATUS_"


def status_to_proto(status: str) -> common_pb2.ExecutionStatus.ValueType:
    """``"running"`` -> ``EXECUTION_STATUS_RUNNING``."""
    return common_pb2.ExecutionStatus.Value(_PREFIX + status.upper())


def status_from_proto(value: common_pb2.ExecutionStatus.ValueType) -> ExecutionStatus:
    """``EXECUTION_STATUS_RUNNING`` -> ``ExecutionStatus.RUNNING``; ValueError if unspecified."""
    name = common_pb2.ExecutionStatus.Name(value)
    if name == _PREFIX + "UNSPECIFIED":
        raise ValueError("status must not be EXECUTION_STATUS_UNSPECIFIED")
    return ExecutionStatus(name.removeprefix(_PREFIX).lower())


def attempt_status_to_proto(status: str) -> common_pb2.StepAttemptStatus.ValueType:
    """``"failed"`` -> ``STEP_ATTEMPT_STATUS_FAILED``."""
    return common_pb2.StepAttemptStatus.Value("STEP_ATTEMPT_STATUS_" + status.upper())


def kind_to_proto(kind: str) -> common_pb2.TaskKind.ValueType:
    """``"route"`` -> ``TASK_KIND_ROUTE``."""
    return common_pb2.TaskKind.Value("TASK_KIND_" + kind.upper())


def evaluations_from_proto(
    evaluations: Mapping[str, worker_service_pb2.Evaluation],
) -> dict[str, Evaluation]:
    """Reported evaluations as the engine's values."""
    out: dict[str, Evaluation] = {}
    for name, ev in evaluations.items():
        if ev.WhichOneof("outcome") == "error":
            out[name] = Evaluation(error=step_error_from_proto(ev.error))
        else:
            out[name] = Evaluation(value_json=ev.value_json)
    return out


def _timeout(msg: Any) -> float | None:
    if not msg.HasField("timeout"):
        return None
    seconds: float = validate.check_duration("timeout", msg.timeout).total_seconds()
    return seconds if seconds > 0 else None


def _timeout_value(task_id: int, wait: str, msg: Any) -> str | None:
    """The wait's timeout value (empty is null); refused without a timeout to use it."""
    if not msg.has_timeout_value:
        return None
    if _timeout(msg) is None:
        raise InvalidArgumentError(
            f"task {task_id}: the {wait} wait has has_timeout_value but no timeout: a timeout "
            "value is what the wait returns when its timeout elapses"
        )
    return msg.timeout_value_json or "null"


_MODES = {
    common_pb2.EVENT_WAIT_MODE_UNSPECIFIED: "one",
    common_pb2.EVENT_WAIT_MODE_ONE: "one",
    common_pb2.EVENT_WAIT_MODE_ANY: "any",
    common_pb2.EVENT_WAIT_MODE_ALL: "all",
}
_MODES_TO_PROTO = {
    "one": common_pb2.EVENT_WAIT_MODE_ONE,
    "any": common_pb2.EVENT_WAIT_MODE_ANY,
    "all": common_pb2.EVENT_WAIT_MODE_ALL,
}


def _check_names(task_id: int, names: Any) -> tuple[str, ...]:
    out = tuple(validate.check_name(f"event name of task {task_id}", n) for n in names)
    if not out:
        raise InvalidArgumentError(f"task {task_id}: an event wait needs event names")
    if len(set(out)) != len(out):
        raise InvalidArgumentError(f"task {task_id}: an event wait names an event twice")
    return out


def input_kind_name(kind: int) -> str:
    """``INPUT_KIND_FREE_TEXT`` -> ``"free_text"``; ValueError when unspecified."""
    name = common_pb2.InputKind.Name(kind).removeprefix("INPUT_KIND_").lower()  # type: ignore[arg-type]
    if name == "unspecified":
        raise ValueError("input kind must not be INPUT_KIND_UNSPECIFIED")
    return name


def wait_from_proto(task_id: int, suspension: worker_service_pb2.TaskSuspension) -> WaitSpec:
    """The wait of a reported suspension, as the engine's value."""
    which = suspension.WhichOneof("wait")
    if which == "child":
        w = suspension.child
        return ChildWaitSpec(w.index, _timeout(w), _timeout_value(task_id, "child", w))
    if which == "sleep":
        sl = suspension.sleep
        if sl.HasField("until_time"):
            until = validate.check_time(f"until_time of task {task_id}", sl.until_time)
            return SleepSpec(sl.index, None, until)
        if not sl.HasField("duration"):
            raise InvalidArgumentError(f"task {task_id}: a sleep needs a duration or a time")
        duration = validate.check_duration(f"duration of task {task_id}", sl.duration)
        seconds = duration.total_seconds()
        if seconds < 0:
            raise InvalidArgumentError(f"task {task_id}: a sleep's duration must not be negative")
        return SleepSpec(sl.index, seconds, None)
    if which == "events":
        ev = suspension.events
        validate.check_enum(f"mode of task {task_id}", common_pb2.EventWaitMode, ev.mode)
        return EventWaitSpec(
            ev.index,
            _check_names(task_id, ev.names),
            _MODES[ev.mode],
            _timeout(ev),
            _timeout_value(task_id, "event", ev),
        )
    if which == "input":
        inp = suspension.input
        validate.check_enum(
            f"kind of the input wait of task {task_id}", common_pb2.InputKind, inp.kind
        )
        try:
            kind = input_kind_name(inp.kind)
        except ValueError as exc:
            raise InvalidArgumentError(f"task {task_id}: {exc}") from exc
        where = f"of the input wait of task {task_id}"
        spec = {
            "kind": kind,
            "prompt": validate.check_text(f"prompt {where}", inp.prompt),
            "choices": [validate.check_text(f"a choice {where}", c) for c in inp.choices],
            "fields": [
                {
                    "name": validate.check_text(f"a field name {where}", f.name),
                    "type": validate.check_text(f"a field type {where}", f.type) or "any",
                    "required": f.required,
                    "label": validate.check_text(f"a field label {where}", f.label),
                }
                for f in inp.fields
            ],
        }
        name = validate.check_name(f"input name of task {task_id}", inp.name)
        return InputWaitSpec(
            inp.index, name, json.dumps(spec), _timeout(inp), _timeout_value(task_id, "input", inp)
        )
    raise InvalidArgumentError(f"task {task_id}: a suspension needs a wait")


def pending_input_to_proto(r: Any) -> workflow_service_pb2.PendingInput:
    """A pending-input record as the API shows it."""
    spec = json.loads(r["input_spec"])
    msg = workflow_service_pb2.PendingInput(
        execution_id=str(r["execution_id"]),
        workflow_name=r["workflow_name"],
        step_name=r["step_name"],
        name=r["input_name"],
        kind=common_pb2.InputKind.Value("INPUT_KIND_" + spec["kind"].upper()),
        prompt=spec.get("prompt", ""),
        choices=spec.get("choices") or [],
        fields=[
            common_pb2.InputField(
                name=f["name"],
                type=f.get("type", "any"),
                required=f.get("required", False),
                label=f.get("label", ""),
            )
            for f in spec.get("fields") or []
        ],
    )
    set_time(msg, "requested_at", r["created_at"])
    set_time(msg, "deadline_at", r["deadline_at"])
    return msg


def pending_event_wait_to_proto(r: Any) -> workflow_service_pb2.PendingEventWait:
    """A pending event-wait record as the API shows it."""
    msg = workflow_service_pb2.PendingEventWait(
        execution_id=str(r["execution_id"]),
        workflow_name=r["workflow_name"],
        step_name=r["step_name"],
        names=list(r["event_names"]),
        mode=_MODES_TO_PROTO[r["mode"]],
        received=sorted(r["received"]),
    )
    set_time(msg, "waiting_since", r["created_at"])
    set_time(msg, "deadline_at", r["deadline_at"])
    return msg


def error_to_proto(error_json: str | None) -> common_pb2.ErrorInfo | None:
    """A stored error document as ErrorInfo."""
    if not error_json:
        return None
    return _error_info(json.loads(error_json))


def _error_info(doc: dict[str, Any]) -> common_pb2.ErrorInfo:
    cause = doc.get("cause")
    return common_pb2.ErrorInfo(
        type=str(doc.get("type", "")),
        message=str(doc.get("message", "")),
        traceback=str(doc.get("traceback", "")),
        non_retryable=bool(doc.get("non_retryable", False)),
        cause=_error_info(cause) if isinstance(cause, dict) else None,
    )


def step_error_from_proto(info: common_pb2.ErrorInfo) -> StepError:
    """A reported ErrorInfo as the engine's StepError."""
    return StepError(
        type=_storable(info.type) or "Error",
        message=_storable(info.message),
        traceback=_storable(info.traceback),
        non_retryable=info.non_retryable,
    )


def _storable(text: str) -> str:
    """Diagnostic text as PostgreSQL can store it: NUL (which it cannot) shown as U+FFFD.

    A step's exception message is not the caller's to fix, so it is kept, not refused
    (as log lines are).
    """
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def logs_from_proto(lines: Iterable[common_pb2.LogLine]) -> list[LogEntry]:
    """Reported log lines as the engine stores them (a line without a time gets one)."""
    return [
        LogEntry(optional_time(line, "time"), line.level, line.logger, line.message)
        for line in lines
    ]


def log_to_proto(entry: LogEntry) -> common_pb2.LogLine:
    """A stored log line as the API shows it."""
    msg = common_pb2.LogLine(level=entry.level, logger=entry.logger, message=entry.message)
    set_time(msg, "time", entry.time)
    return msg


def optional_time(msg: Any, field: str) -> datetime | None:
    """A Timestamp field as an aware UTC datetime, or None when unset."""
    if not msg.HasField(field):
        return None
    return validate.check_time(field, getattr(msg, field))


def set_time(target: object, field: str, value: datetime | None) -> None:
    if value is not None:
        getattr(target, field).FromDatetime(value)


def _attempt_to_proto(a: StepAttemptRow) -> workflow_service_pb2.StepAttempt:
    msg = workflow_service_pb2.StepAttempt(
        step_name=a.step_name,
        sequence=a.sequence,
        attempt=a.attempt,
        status=attempt_status_to_proto(a.status),
        result_json=a.result_json or "",
        worker_id=a.worker_id or "",
        kind=kind_to_proto(a.kind),
        lane_path=a.lane_path,
    )
    error = error_to_proto(a.error_json)
    if error is not None:
        msg.error.CopyFrom(error)
    set_time(msg, "started_at", a.started_at)
    set_time(msg, "finished_at", a.finished_at)
    set_time(msg, "retry_at", a.retry_at)
    return msg


def execution_to_proto(
    row: ExecutionRow, detail: ExecutionDetail | None = None
) -> workflow_service_pb2.Execution:
    """An execution (and, with ``detail``, its attempts) as the API shows it."""
    msg = workflow_service_pb2.Execution(
        id=row.id,
        workflow_name=row.workflow_name,
        workflow_version=row.workflow_version,
        status=status_to_proto(row.status),
        queue=row.queue,
        priority=row.priority,
        input_json=row.input_json,
        result_json=row.result_json or "",
        parent_execution_id=row.parent_id or "",
        idempotency_key=row.idempotency_key or "",
        current_step=row.current_step or "",
    )
    error = error_to_proto(row.error_json)
    if error is not None:
        msg.error.CopyFrom(error)
    msg.schedule_name = row.schedule_name or ""
    set_time(msg, "schedule_slot", row.schedule_slot)
    for field in ("created_at", "scheduled_at", "started_at", "finished_at", "deadline_at"):
        set_time(msg, field, getattr(row, field))
    if detail is not None:
        msg.steps.extend(_attempt_to_proto(a) for a in detail.attempts)
        for r in detail.running:
            running = workflow_service_pb2.StepAttempt(
                step_name=r.step_name,
                sequence=r.sequence,
                attempt=r.attempt,
                status=attempt_status_to_proto(r.status),
                worker_id=r.worker_id or "",
                kind=kind_to_proto(r.kind),
                lane_path=r.lane_path,
            )
            set_time(running, "started_at", r.leased_at)
            msg.steps.append(running)
        for attempt in msg.steps:
            logs = detail.logs.get((attempt.sequence, attempt.attempt), ())
            attempt.logs.extend(log_to_proto(e) for e in logs)
        for name, payload, sent_at in detail.events:
            event = workflow_service_pb2.Event(name=name, payload_json=payload)
            set_time(event, "sent_at", sent_at)
            msg.unconsumed_events.append(event)
    return msg


def claimed_task_to_proto(
    task: ClaimedTask, heartbeat_interval: timedelta
) -> worker_service_pb2.Task:
    """A leased task as sent to the worker."""
    msg = worker_service_pb2.Task(
        task_id=task.id,
        lease_token=task.lease_token,
        execution_id=task.execution_id,
        workflow_name=task.workflow_name,
        workflow_version=task.workflow_version,
        step_name=task.step_name,
        sequence=task.sequence,
        attempt=task.attempt,
        input_json=task.input_json,
        execution_input_json=task.execution_input_json,
        kind=kind_to_proto(task.kind),
        lane_path=task.lane_path,
        compensated_step=task.compensated_step or "",
        memo_json=task.memo_json if task.memo_json != "{}" else "",
        traceparent=task.traceparent,
        idempotency_key=f"{task.execution_id}:{task.sequence}:{task.step_name}",
    )
    msg.lease_expires_at.FromDatetime(task.lease_expires_at)
    if task.timeout_secs:
        msg.timeout.FromTimedelta(timedelta(seconds=task.timeout_secs))
    msg.heartbeat_interval.FromTimedelta(heartbeat_interval)
    return msg


def worker_to_proto(r: Any) -> workflow_service_pb2.WorkerInfo:
    """A worker record as the API shows it."""
    msg = workflow_service_pb2.WorkerInfo(
        worker_id=r["id"],
        queues=list(r["queues"]),
        versions=list(r["versions"]),
        leased_tasks=int(r["leased"]),
    )
    set_time(msg, "started_at", r["started_at"])
    set_time(msg, "last_seen_at", r["last_seen_at"])
    return msg
