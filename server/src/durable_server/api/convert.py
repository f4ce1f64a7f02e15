"""Conversions between protobuf messages and the engine's values, nothing else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from durable.v1 import common_pb2, worker_service_pb2, workflow_service_pb2
from durable_server.engine.children import ChildWaitSpec
from durable_server.engine.reads import ExecutionDetail
from durable_server.engine.states import ExecutionStatus
from durable_server.engine.transitions import Evaluation, StepError
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


def child_wait_from_proto(wait: worker_service_pb2.ChildWait) -> ChildWaitSpec:
    """A reported child wait as the engine's value."""
    timeout = wait.timeout.ToTimedelta().total_seconds() if wait.HasField("timeout") else None
    return ChildWaitSpec(
        index=wait.index,
        timeout_secs=timeout if timeout and timeout > 0 else None,
        timeout_value_json=(wait.timeout_value_json or "null") if wait.has_timeout_value else None,
    )


def error_to_proto(error_json: str | None) -> common_pb2.ErrorInfo | None:
    """A stored error document as ErrorInfo."""
    if not error_json:
        return None
    doc = json.loads(error_json)
    return common_pb2.ErrorInfo(
        type=str(doc.get("type", "")),
        message=str(doc.get("message", "")),
        traceback=str(doc.get("traceback", "")),
        non_retryable=bool(doc.get("non_retryable", False)),
    )


def step_error_from_proto(info: common_pb2.ErrorInfo) -> StepError:
    """A reported ErrorInfo as the engine's StepError."""
    return StepError(
        type=info.type or "Error",
        message=info.message,
        traceback=info.traceback,
        non_retryable=info.non_retryable,
    )


def optional_time(msg: Any, field: str) -> datetime | None:
    """A Timestamp field as an aware UTC datetime, or None when unset."""
    if not msg.HasField(field):
        return None
    value: datetime = getattr(msg, field).ToDatetime(tzinfo=UTC)
    return value


def _set_time(target: object, field: str, value: datetime | None) -> None:
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
    _set_time(msg, "started_at", a.started_at)
    _set_time(msg, "finished_at", a.finished_at)
    _set_time(msg, "retry_at", a.retry_at)
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
    for field in ("created_at", "scheduled_at", "started_at", "finished_at", "deadline_at"):
        _set_time(msg, field, getattr(row, field))
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
            _set_time(running, "started_at", r.leased_at)
            msg.steps.append(running)
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
    )
    msg.lease_expires_at.FromDatetime(task.lease_expires_at)
    if task.timeout_secs:
        msg.timeout.FromTimedelta(timedelta(seconds=task.timeout_secs))
    msg.heartbeat_interval.FromTimedelta(heartbeat_interval)
    return msg
