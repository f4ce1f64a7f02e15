"""The pure decide_* functions: what a step's outcome makes the engine do next."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from durable import RetryPolicy, Workflow, foreach, goto, seconds, step
from durable._definition import to_definition
from durable_server.engine.definitions import Definition
from durable_server.engine.states import StepAttemptStatus, TaskKind
from durable_server.engine.transitions import (
    ROOT,
    Decision,
    EndLane,
    EnqueueTask,
    FailLane,
    Lane,
    Origin,
    RecordAttempt,
    RemoveTask,
    RetryTask,
    StepError,
    decide_lease_expired,
    decide_step_completed,
    decide_step_failed,
)
from durable_server.store.rows import LeasedTask

EXECUTION_ID = "0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f"
LEASED_AT = datetime(2030, 1, 1, tzinfo=UTC)


def _workflow() -> Workflow:
    wf = Workflow("orders")

    @wf.step
    def validate(order: object) -> object:
        return order

    @wf.step(
        retry=RetryPolicy(
            max_attempts=3,
            backoff="exponential",
            initial_delay=seconds(2),
            jitter=0.5,
            non_retryable_errors=["KeyError"],
        ),
        timeout=seconds(10),
    )
    def charge(data: object) -> object:
        return data

    @wf.step
    def ship(data: object) -> object:
        return data

    return wf


DEFINITION = Definition.from_proto(to_definition(_workflow()))


def _task(step: str, *, attempt: int = 1, failures: int = 0, losses: int = 0) -> LeasedTask:
    return LeasedTask(
        id=42,
        execution_id=EXECUTION_ID,
        sequence={"validate": 1, "charge": 2, "ship": 3}[step],
        step_name=step,
        attempt=attempt,
        failures=failures,
        losses=losses,
        queue="default",
        priority=0,
        workflow_version=DEFINITION.version,
        timeout_secs=DEFINITION.step(step).timeout_secs,
        leased_at=LEASED_AT,
        worker_id="w1",
    )


def _kinds(decision: Decision) -> list[type]:
    return [type(e) for e in decision.effects]


def _rand_never_called() -> float:
    raise AssertionError("rand must not be drawn when no retry follows")


def test_definition_from_the_dsl() -> None:
    assert [s.name for s in DEFINITION.root.nodes] == ["validate", "charge", "ship"]
    assert DEFINITION.step("charge").timeout_secs == 10
    assert DEFINITION.step("validate").retry.max_attempts == 1
    assert DEFINITION.step("charge").retry.non_retryable_errors == ("KeyError",)


def test_completing_a_middle_step_enqueues_the_next_with_the_result() -> None:
    task = _task("charge")
    decision = decide_step_completed(DEFINITION, task, '{"paid": true}')
    assert decision.effects == (
        RecordAttempt(task, StepAttemptStatus.COMPLETED, result_json='{"paid": true}'),
        RemoveTask(42),
        EnqueueTask(Origin.of(task), ROOT, TaskKind.STEP, "ship", '{"paid": true}', None),
    )


def test_completing_the_last_step_completes_the_execution() -> None:
    task = _task("ship")
    decision = decide_step_completed(DEFINITION, task, '"shipped"')
    assert decision.effects == (
        RecordAttempt(task, StepAttemptStatus.COMPLETED, result_json='"shipped"'),
        RemoveTask(42),
        EndLane(Origin.of(task), ROOT, '"shipped"'),
    )


@pytest.mark.parametrize(
    ("failures_before", "rand", "expected_delay"),
    [
        (0, 0.5, 2.0),  # first retry: initial_delay, jitter centred
        (1, 0.5, 4.0),  # second retry: doubled
        (0, 0.0, 1.0),  # jitter 0.5 at its low end halves the delay
        (1, 1.0, 6.0),  # ... and at its high end adds half
    ],
)
def test_failure_with_attempts_left_retries_after_the_policy_delay(
    failures_before: int, rand: float, expected_delay: float
) -> None:
    task = _task("charge", attempt=failures_before + 1, failures=failures_before)
    error = StepError("ValueError", "card declined")
    decision = decide_step_failed(DEFINITION, task, error, rand=lambda: rand)
    assert decision.effects == (
        RecordAttempt(
            task,
            StepAttemptStatus.FAILED,
            error_json=error.to_json(),
            retry_delay_secs=expected_delay,
        ),
        RetryTask(42, expected_delay, failure=True, loss=False),
    )


def test_a_timed_out_failure_is_recorded_as_timed_out() -> None:
    decision = decide_step_failed(
        DEFINITION,
        _task("charge"),
        StepError("TimeoutError", "slow"),
        timed_out=True,
        rand=lambda: 0.5,
    )
    record = decision.effects[0]
    assert isinstance(record, RecordAttempt)
    assert record.status is StepAttemptStatus.TIMED_OUT
    assert _kinds(decision) == [RecordAttempt, RetryTask]


def _assert_fails_execution(decision: Decision, task: LeasedTask, reason: str) -> dict[str, object]:
    assert _kinds(decision) == [RecordAttempt, RemoveTask, FailLane]
    record, remove, finish = decision.effects
    assert isinstance(record, RecordAttempt)
    assert record.status is StepAttemptStatus.FAILED
    assert record.retry_delay_secs is None
    assert remove == RemoveTask(task.id)
    assert isinstance(finish, FailLane)
    assert finish.origin.execution_id == EXECUTION_ID
    assert finish.lane == ROOT
    assert finish.error_json is not None
    doc: dict[str, object] = json.loads(finish.error_json)
    assert doc["step"] == task.step_name
    assert doc["attempts"] == task.attempt
    assert f"step {task.step_name!r} failed on attempt {task.attempt} and {reason}" in str(
        doc["message"]
    )
    return doc


def test_exhausted_attempts_fail_the_execution() -> None:
    task = _task("charge", attempt=3, failures=2)
    decision = decide_step_failed(
        DEFINITION, task, StepError("ValueError", "card declined"), rand=_rand_never_called
    )
    doc = _assert_fails_execution(decision, task, "has no attempts left")
    assert doc["type"] == "ValueError"
    assert str(doc["message"]).endswith(": card declined")


def test_a_step_without_retry_policy_fails_on_its_first_failure() -> None:
    task = _task("validate")
    decision = decide_step_failed(
        DEFINITION, task, StepError("ValueError", "no items"), rand=_rand_never_called
    )
    _assert_fails_execution(decision, task, "has no attempts left")


def test_a_non_retryable_error_fails_at_once() -> None:
    task = _task("charge")
    error = StepError("ValueError", "fraud", non_retryable=True)
    decision = decide_step_failed(DEFINITION, task, error, rand=_rand_never_called)
    doc = _assert_fails_execution(decision, task, "is not retryable")
    assert doc["non_retryable"] is True


def test_an_error_type_listed_as_non_retryable_fails_at_once() -> None:
    task = _task("charge")
    decision = decide_step_failed(
        DEFINITION, task, StepError("KeyError", "'sku'"), rand=_rand_never_called
    )
    doc = _assert_fails_execution(decision, task, "is not retryable")
    assert doc["type"] == "KeyError"


def test_lease_expiry_past_the_timeout_is_a_timed_out_failure() -> None:
    task = _task("charge")
    decision = decide_lease_expired(
        DEFINITION, task, past_timeout=True, max_losses=10, rand=lambda: 0.5
    )
    record, retry = decision.effects
    assert isinstance(record, RecordAttempt)
    assert record.status is StepAttemptStatus.TIMED_OUT
    assert record.retry_delay_secs == 2.0
    error = json.loads(record.error_json or "")
    assert error["type"] == "StepTimeout"
    assert "did not finish within its timeout of 10s" in error["message"]
    assert retry == RetryTask(42, 2.0, failure=True, loss=False)


def test_lease_expiry_past_the_timeout_on_the_last_attempt_fails_the_execution() -> None:
    task = _task("charge", attempt=3, failures=2)
    decision = decide_lease_expired(
        DEFINITION, task, past_timeout=True, max_losses=10, rand=_rand_never_called
    )
    assert _kinds(decision) == [RecordAttempt, RemoveTask, FailLane]
    record = decision.effects[0]
    assert isinstance(record, RecordAttempt)
    assert record.status is StepAttemptStatus.TIMED_OUT


def test_lease_expiry_within_the_timeout_is_a_loss_that_uses_no_retry() -> None:
    # ``validate`` has no retry policy: a loss must still run it again, at once.
    task = _task("validate", losses=3)
    decision = decide_lease_expired(
        DEFINITION, task, past_timeout=False, max_losses=10, rand=_rand_never_called
    )
    record, retry = decision.effects
    assert isinstance(record, RecordAttempt)
    assert record.status is StepAttemptStatus.LOST
    assert record.retry_delay_secs is None
    error = json.loads(record.error_json or "")
    assert error["type"] == "LeaseExpired"
    assert "worker 'w1' stopped heartbeating while running step 'validate'" in error["message"]
    assert retry == RetryTask(42, 0.0, failure=False, loss=True)


@pytest.mark.parametrize("losses_before", [0, 1])
def test_losses_up_to_the_limit_are_retried(losses_before: int) -> None:
    task = _task("validate", attempt=losses_before + 1, losses=losses_before)
    decision = decide_lease_expired(DEFINITION, task, past_timeout=False, max_losses=2)
    assert _kinds(decision) == [RecordAttempt, RetryTask]


def test_a_loss_beyond_the_limit_fails_with_step_lost() -> None:
    task = _task("validate", attempt=3, losses=2)
    decision = decide_lease_expired(
        DEFINITION, task, past_timeout=False, max_losses=2, rand=_rand_never_called
    )
    assert _kinds(decision) == [RecordAttempt, RemoveTask, FailLane]
    record, remove, finish = decision.effects
    assert isinstance(record, RecordAttempt)
    assert record.status is StepAttemptStatus.LOST
    assert remove == RemoveTask(42)
    assert isinstance(finish, FailLane)
    error = json.loads(finish.error_json or "")
    assert error["type"] == "StepLost"
    assert error["step"] == "validate"
    assert "was lost 3 times" in error["message"]


# -- an into merge's goto ------------------------------------------------------------------


def _looping_workflow() -> Workflow:
    def fetch(item: object) -> object:
        return item

    def merge(data: object, results: object) -> object:
        return goto("start", data)

    def inner_merge(data: object, results: object) -> object:
        return results

    wf = Workflow("pager")
    wf.step(step(fetch, name="start"))
    wf.foreach(
        "pages",
        items="xs",
        steps=[foreach("inner", items="ys", steps=[step(fetch, name="deep")], into=inner_merge)],
        into=merge,
    )
    wf.step(step(fetch, name="done"))
    return wf


LOOPING = Definition.from_proto(to_definition(_looping_workflow()))


def _into_task(group: str, lane: Lane = ROOT) -> LeasedTask:
    return LeasedTask(
        id=43,
        execution_id=EXECUTION_ID,
        sequence=5,
        step_name=group,
        attempt=1,
        failures=0,
        losses=0,
        queue="default",
        priority=0,
        workflow_version=LOOPING.version,
        timeout_secs=None,
        leased_at=LEASED_AT,
        worker_id="w1",
        kind=TaskKind.INTO,
        group_id=lane.group_id,
        lane=lane.index,
        lane_path=lane.path,
    )


def test_an_into_goto_continues_at_the_target_in_the_groups_lane() -> None:
    task = _into_task("pages")
    decision = decide_step_completed(LOOPING, task, '{"xs": []}', goto_target="start")
    assert decision.effects == (
        RecordAttempt(task, StepAttemptStatus.COMPLETED, result_json='{"xs": []}'),
        RemoveTask(43),
        EnqueueTask(Origin.of(task), ROOT, TaskKind.STEP, "start", '{"xs": []}', None),
    )
    # Without a goto: the node after the group.
    plain = decide_step_completed(LOOPING, task, "[]")
    assert plain.effects[-1] == EnqueueTask(Origin.of(task), ROOT, TaskKind.STEP, "done", "[]")


def test_an_into_goto_out_of_its_groups_sequence_fails_the_lane() -> None:
    lane = Lane(7, 0, "pages/0")
    task = _into_task("inner", lane)
    decision = decide_step_completed(LOOPING, task, "{}", goto_target="start")
    assert _kinds(decision) == [RecordAttempt, RemoveTask, FailLane]
    fail = decision.effects[-1]
    assert isinstance(fail, FailLane)
    assert fail.lane == lane
    error = json.loads(fail.error_json)
    assert error["type"] == "GotoError"
    assert error["message"] == (
        "into merge of 'inner' jumped to 'start', which is not a node of the same sequence: "
        "a goto stays within its sequence (forward or back)"
    )
