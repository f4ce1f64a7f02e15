"""Protobuf to model conversions, with messages built by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from durable import ErrorInfo, Execution, ExecutionStatus, LogLine, StepAttemptStatus, TaskKind
from durable._converters import (
    execution_from_proto,
    execution_page_from_proto,
    execution_status_from_proto,
    execution_status_to_proto,
    start_result_from_proto,
    step_attempt_from_proto,
    step_attempt_status_from_proto,
    task_kind_from_proto,
)
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
T1 = datetime(2024, 5, 6, 7, 9, 0, tzinfo=UTC)


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def test_every_proto_execution_status_has_a_member() -> None:
    for name, value in common_pb2.ExecutionStatus.items():
        if value == common_pb2.EXECUTION_STATUS_UNSPECIFIED:
            continue
        status = execution_status_from_proto(value)
        assert f"EXECUTION_STATUS_{status.value.upper()}" == name
        assert execution_status_to_proto(status) == value
    assert len(ExecutionStatus) == len(common_pb2.ExecutionStatus.values()) - 1


def test_every_proto_step_attempt_status_has_a_member() -> None:
    for name, value in common_pb2.StepAttemptStatus.items():
        if value == common_pb2.STEP_ATTEMPT_STATUS_UNSPECIFIED:
            continue
        assert f"STEP_ATTEMPT_STATUS_{step_attempt_status_from_proto(value).name}" == name
    assert len(StepAttemptStatus) == len(common_pb2.StepAttemptStatus.values()) - 1


@pytest.mark.parametrize("value", [common_pb2.EXECUTION_STATUS_UNSPECIFIED, 99])
def test_unspecified_or_unknown_status_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match=rf"unknown execution status \({value}\)"):
        execution_status_from_proto(value)
    with pytest.raises(ValueError, match="unknown step attempt status"):
        step_attempt_status_from_proto(value)


def test_terminal_statuses() -> None:
    terminal = {s for s in ExecutionStatus if s.is_terminal}
    assert terminal == {
        "completed",
        "failed",
        "cancelled",
        "timed_out",
        "compensated",
        "compensation_failed",
    }
    assert not ExecutionStatus.COMPENSATING.is_terminal


def test_status_is_a_string() -> None:
    status: str = ExecutionStatus.RUNNING
    assert status == "running"
    assert str(ExecutionStatus.TIMED_OUT) == "timed_out"
    assert ExecutionStatus("waiting") is ExecutionStatus.WAITING


def test_status_names_to_proto() -> None:
    assert execution_status_to_proto("running") == common_pb2.EXECUTION_STATUS_RUNNING
    with pytest.raises(ValueError, match=r"unknown execution status 'bogus'; expected one of"):
        execution_status_to_proto("bogus")


def test_minimal_execution_has_nones_for_unset_fields() -> None:
    got = execution_from_proto(
        pb.Execution(id="e1", workflow_name="wf", status=common_pb2.EXECUTION_STATUS_PENDING)
    )
    assert got == Execution(
        id="e1",
        workflow_name="wf",
        workflow_version="",
        status=ExecutionStatus.PENDING,
        queue="",
        priority=0,
        input=None,
        result=None,
        error=None,
        parent_execution_id="",
        idempotency_key="",
        current_step="",
        created_at=None,
        scheduled_at=None,
        started_at=None,
        finished_at=None,
        deadline_at=None,
        steps=(),
    )


def test_full_execution() -> None:
    msg = pb.Execution(
        id="e1",
        workflow_name="wf",
        workflow_version="abc",
        status=common_pb2.EXECUTION_STATUS_FAILED,
        queue="q",
        priority=5,
        input_json='{"id": 1, "items": [1, 2]}',
        result_json="",
        error=common_pb2.ErrorInfo(
            type="ValueError", message="bad", traceback="Traceback...", non_retryable=True
        ),
        parent_execution_id="p1",
        idempotency_key="k",
        current_step="",
        created_at=ts(T0),
        started_at=ts(T0),
        finished_at=ts(T1),
        deadline_at=ts(datetime(1970, 1, 1, tzinfo=UTC)),  # set, even though it is zero
        steps=[
            pb.StepAttempt(
                step_name="validate",
                sequence=1,
                attempt=1,
                status=common_pb2.STEP_ATTEMPT_STATUS_COMPLETED,
                result_json='{"ok": true}',
                worker_id="w1",
                started_at=ts(T0),
                finished_at=ts(T1),
                logs=[common_pb2.LogLine(time=ts(T0), level="INFO", message="hi", logger="app")],
            ),
            pb.StepAttempt(
                step_name="charge",
                sequence=2,
                attempt=1,
                status=common_pb2.STEP_ATTEMPT_STATUS_FAILED,
                error=common_pb2.ErrorInfo(type="IOError", message="down"),
                retry_at=ts(T1),
            ),
        ],
    )
    got = execution_from_proto(msg)
    assert got.status is ExecutionStatus.FAILED
    assert got.input == {"id": 1, "items": [1, 2]}
    assert got.result is None
    assert got.error == ErrorInfo("ValueError", "bad", "Traceback...", non_retryable=True)
    assert got.created_at == T0
    assert got.created_at is not None
    assert got.created_at.tzinfo is UTC
    assert got.finished_at == T1
    assert got.scheduled_at is None
    assert got.deadline_at == datetime(1970, 1, 1, tzinfo=UTC)
    first, second = got.steps
    assert first.status is StepAttemptStatus.COMPLETED
    assert first.result == {"ok": True}
    assert first.error is None
    assert first.retry_at is None
    assert first.logs == (LogLine(time=T0, level="INFO", message="hi", logger="app"),)
    assert second.result is None
    assert second.error == ErrorInfo("IOError", "down")
    assert second.started_at is None
    assert second.retry_at == T1
    assert second.logs == ()


def test_every_proto_task_kind_has_a_member() -> None:
    for name, value in common_pb2.TaskKind.items():
        if value == common_pb2.TASK_KIND_UNSPECIFIED:
            continue
        assert f"TASK_KIND_{task_kind_from_proto(value).name}" == name
    assert len(TaskKind) == len(common_pb2.TaskKind.values()) - 1
    # An orchestrator that does not send kinds runs steps only.
    assert task_kind_from_proto(common_pb2.TASK_KIND_UNSPECIFIED) is TaskKind.STEP
    with pytest.raises(ValueError, match=r"unknown task kind \(99\)"):
        task_kind_from_proto(99)


def test_step_attempt_kind_and_lane() -> None:
    plain = step_attempt_from_proto(
        pb.StepAttempt(step_name="s", status=common_pb2.STEP_ATTEMPT_STATUS_COMPLETED)
    )
    assert (plain.kind, plain.lane_path) == (TaskKind.STEP, "")
    undo = step_attempt_from_proto(
        pb.StepAttempt(
            step_name="refund",
            status=common_pb2.STEP_ATTEMPT_STATUS_FAILED,
            kind=common_pb2.TASK_KIND_COMPENSATION,
            lane_path="checks/fraud",
        )
    )
    assert (undo.kind, undo.lane_path) == ("compensation", "checks/fraud")


def test_step_attempt_result_can_be_any_json() -> None:
    msg = pb.StepAttempt(
        step_name="s", status=common_pb2.STEP_ATTEMPT_STATUS_COMPLETED, result_json="[1, null]"
    )
    assert step_attempt_from_proto(msg).result == [1, None]


def test_models_are_frozen() -> None:
    got = execution_from_proto(pb.Execution(id="e1", status=common_pb2.EXECUTION_STATUS_RUNNING))
    with pytest.raises(AttributeError):
        got.id = "other"  # type: ignore[misc]


def test_page_and_start_result() -> None:
    page = execution_page_from_proto(
        pb.ListExecutionsResponse(
            executions=[
                pb.Execution(id="a", status=common_pb2.EXECUTION_STATUS_RUNNING),
                pb.Execution(id="b", status=common_pb2.EXECUTION_STATUS_COMPLETED),
            ],
            next_page_token="tok",
            total_count=7,
        )
    )
    assert [e.id for e in page.executions] == ["a", "b"]
    assert page.next_page_token == "tok"
    assert page.total_count == 7
    started = start_result_from_proto(pb.StartWorkflowResponse(execution_id="x", created=True))
    assert (started.execution_id, started.created) == ("x", True)
