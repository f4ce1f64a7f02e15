"""StepContext's child workflows: ids, recorded starts, suspensions and memo replay (no I/O)."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from datetime import timedelta
from typing import Any

import pytest

from durable import ChildWorkflowError, NonRetryableError, StepContext, TaskKind, Workflow
from durable._context import (
    StepSuspended,
    child_execution_id,
    recorded_children,
    suspension_of,
)
from durable._serde import JSONSerializationError
from durable.v1 import worker_service_pb2 as pb
from durable_server.ids import child_execution_id as server_child_id
from tests.helpers.aio import yield_to_loop

PARENT = "0190c3e2-0000-7000-8000-000000000001"


def ctx(memo: dict[str, Any] | None = None, *, sequence: int = 3, attempt: int = 1) -> StepContext:
    return StepContext(
        execution_id=PARENT,
        workflow_name="parent",
        step_name="fan_out",
        sequence=sequence,
        attempt=attempt,
        input=None,
        memo=memo or {},
    )


def suspend(context: StepContext, *args: Any, **kwargs: Any) -> StepSuspended:
    with pytest.raises(StepSuspended) as info:
        context.call_workflow(*args, **kwargs)
    return info.value


# -- ids -------------------------------------------------------------------------------


def test_child_ids_are_uuid5_of_parent_sequence_and_index() -> None:
    expected = uuid.uuid5(uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8"), f"{PARENT}/3/0")
    assert child_execution_id(PARENT, 3, 0) == str(expected)
    assert child_execution_id(PARENT, 3, 0) == child_execution_id(PARENT, 3, 0)
    assert child_execution_id(PARENT, 3, 0) == server_child_id(PARENT, 3, 0)
    others = {
        child_execution_id(PARENT, 3, 1),
        child_execution_id(PARENT, 4, 0),
        child_execution_id("0190c3e2-0000-7000-8000-000000000002", 3, 0),
    }
    assert child_execution_id(PARENT, 3, 0) not in others
    assert len(others) == 3


def test_start_workflow_returns_the_derived_id_and_a_retry_makes_the_same() -> None:
    first = ctx(attempt=1)
    ids = [first.start_workflow("child", {"n": n}) for n in range(2)]
    assert ids == [child_execution_id(PARENT, 3, 0), child_execution_id(PARENT, 3, 1)]
    retry = ctx(attempt=2)  # a fresh context per attempt: the counter starts at 0 again
    assert [retry.start_workflow("child", {"n": n}) for n in range(2)] == ids
    assert ctx(sequence=4).start_workflow("child") != ids[0]


# -- start_workflow --------------------------------------------------------------------


def test_start_workflow_records_a_child_start_through_the_json_boundary() -> None:
    context = ctx()
    target = Workflow("billing")
    context.start_workflow(target, {"when": datetime.date(2030, 1, 2), "pair": (1, 2)})
    context.start_workflow("mail", queue="mails", priority=-5)
    assert recorded_children(context) == (
        pb.ChildStart(
            index=0,
            workflow_name="billing",
            input_json='{"when":"2030-01-02","pair":[1,2]}',
            queue="",
            priority=0,
        ),
        pb.ChildStart(index=1, workflow_name="mail", input_json="null", queue="mails", priority=-5),
    )
    assert suspension_of(context) is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"workflow": "bad name"}, ValueError, "workflow name 'bad name' is invalid"),
        ({"queue": "no/slash"}, ValueError, "queue name 'no/slash' is invalid"),
        ({"priority": True}, ValueError, "priority must be an int"),
        ({"priority": 2**31}, ValueError, "priority must fit in 32 bits"),
        ({"input": object()}, JSONSerializationError, "not JSON serializable"),
        ({"input": float("nan")}, JSONSerializationError, "not valid JSON"),
    ],
)
def test_bad_starts_raise_in_the_step_and_record_nothing(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    context = ctx()
    args = {"workflow": "child", **kwargs}
    with pytest.raises(error, match=message):
        context.start_workflow(**args)
    with pytest.raises(error, match=message):
        context.call_workflow(**args)
    assert recorded_children(context) == ()
    assert suspension_of(context) is None


# -- call_workflow: suspending ---------------------------------------------------------


def test_call_workflow_suspends_with_its_wait_and_every_start_so_far() -> None:
    context = ctx()
    context.start_workflow("audit", 1)
    suspended = suspend(context, "billing", {"total": 3}, queue="q", priority=2)
    assert suspended.wait == pb.ChildWait(index=1)
    assert not suspended.wait.HasField("timeout")
    assert suspended.children == (
        pb.ChildStart(index=0, workflow_name="audit", input_json="1"),
        pb.ChildStart(
            index=1, workflow_name="billing", input_json='{"total":3}', queue="q", priority=2
        ),
    )
    assert suspension_of(context) is suspended
    assert recorded_children(context) == suspended.children


def test_call_workflow_with_a_timeout_and_a_timeout_value() -> None:
    suspended = suspend(
        ctx(), "billing", timeout=timedelta(minutes=5), timeout_value={"late": True}
    )
    wait = suspended.wait
    assert wait.index == 0
    assert wait.timeout.ToTimedelta() == timedelta(minutes=5)
    # The outcome recorded should the timeout fire: the call then returns the value.
    assert wait.timeout_value_json == '{"late":true}'
    assert wait.has_timeout_value


def test_a_timeout_value_of_none_is_a_value() -> None:
    wait = suspend(ctx(), "billing", timeout=timedelta(seconds=1), timeout_value=None).wait
    assert (wait.timeout_value_json, wait.has_timeout_value) == ("null", True)


def test_a_timeout_without_a_value_is_an_error_on_timeout() -> None:
    wait = suspend(ctx(), "billing", timeout=timedelta(seconds=1)).wait
    assert wait.HasField("timeout")
    assert (wait.timeout_value_json, wait.has_timeout_value) == ("", False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout": timedelta(0)}, "timeout must be a positive timedelta"),
        ({"timeout": 5}, "timeout must be a positive timedelta"),
        ({"timeout_value": 1}, "timeout_value is only used with a timeout"),
    ],
)
def test_bad_waits_raise_value_error(kwargs: dict[str, Any], message: str) -> None:
    context = ctx()
    with pytest.raises(ValueError, match=message):
        context.call_workflow("billing", **kwargs)
    assert suspension_of(context) is None


def test_the_suspension_is_not_an_exception() -> None:
    assert not issubclass(StepSuspended, Exception)
    context = ctx()

    def step_code() -> str:
        try:
            return str(context.call_workflow("billing"))
        except Exception:  # what user code often does: must not swallow the wait
            return "swallowed"

    with pytest.raises(StepSuspended):
        step_code()


def test_a_caught_suspension_stays_recorded_and_the_first_wait_wins() -> None:
    context = ctx()
    first = suspend(context, "one")
    second = suspend(context, "two")
    assert (first.wait.index, second.wait.index) == (0, 1)
    assert suspension_of(context) is first
    assert len(recorded_children(context)) == 2


# -- call_workflow: replaying the memo -------------------------------------------------


def test_a_recorded_value_is_returned_without_recording_a_start() -> None:
    context = ctx({"0": {"ok": True, "value": {"paid": 3}}})
    assert context.call_workflow("billing", {"total": 3}) == {"paid": 3}
    assert recorded_children(context) == ()
    assert suspension_of(context) is None


def test_a_recorded_null_value_is_returned() -> None:
    assert ctx({"0": {"ok": True, "value": None}}).call_workflow("billing") is None


def test_a_recorded_error_raises_child_workflow_error() -> None:
    child = child_execution_id(PARENT, 3, 0)
    error = {
        "type": "ChildWorkflowFailed",
        "message": f"child execution {child} (billing) ended failed: card declined",
        "execution_id": child,
        "status": "failed",
        "cause": {"type": "ValueError", "message": "card declined"},
    }
    context = ctx({"0": {"ok": False, "error": error}})
    with pytest.raises(ChildWorkflowError) as info:
        context.call_workflow("billing")
    exc = info.value
    assert isinstance(exc, NonRetryableError)  # a retry would wait on the same child
    assert str(exc) == exc.message == error["message"]
    assert (exc.type, exc.child_execution_id, exc.status) == (
        "ChildWorkflowFailed",
        child,
        "failed",
    )


def test_a_timeout_error_without_a_status_names_the_derived_child() -> None:
    error = {"type": "ChildTimeout", "message": "did not finish in time"}
    context = ctx({"0": {"ok": True, "value": 1}, "1": {"ok": False, "error": error}})
    assert context.call_workflow("a") == 1
    with pytest.raises(ChildWorkflowError, match="did not finish in time") as info:
        context.call_workflow("b")
    assert info.value.type == "ChildTimeout"
    assert info.value.child_execution_id == child_execution_id(PARENT, 3, 1)
    assert info.value.status is None


@pytest.mark.parametrize("outcome", [{"ok": True}, {"ok": False}, {"ok": False, "error": "x"}, 7])
def test_a_malformed_outcome_fails_the_step_for_good(outcome: Any) -> None:
    with pytest.raises(NonRetryableError, match="malformed outcome for child call 0"):
        ctx({"0": outcome}).call_workflow("billing")


def test_indexes_count_starts_and_calls_together_in_call_order() -> None:
    memo = {"1": {"ok": True, "value": "one"}, "3": {"ok": True, "value": "three"}}
    context = ctx(memo)
    assert context.start_workflow("s0") == child_execution_id(PARENT, 3, 0)
    assert context.call_workflow("c1") == "one"
    assert context.start_workflow("s2") == child_execution_id(PARENT, 3, 2)
    assert context.call_workflow("c3") == "three"
    suspended = suspend(context, "c4")
    assert suspended.wait.index == 4
    # Starts are recorded again on every run (the orchestrator ignores repeats); calls
    # answered from the memo are not.
    assert [(c.index, c.workflow_name) for c in suspended.children] == [
        (0, "s0"),
        (2, "s2"),
        (4, "c4"),
    ]


def test_the_same_calls_work_in_an_async_step() -> None:
    async def step(context: StepContext) -> Any:
        context.start_workflow("s0")
        await yield_to_loop()
        return context.call_workflow("c1")

    with pytest.raises(StepSuspended) as info:
        asyncio.run(step(ctx()))
    assert info.value.wait.index == 1
    assert asyncio.run(step(ctx({"1": {"ok": True, "value": 5}}))) == 5


def test_the_context_still_compares_and_prints_as_before() -> None:
    a, b = ctx(), ctx()
    a.start_workflow("x")
    assert a == b  # the recorded calls are not part of equality
    assert hash(a) == hash(b)  # nor is the memo part of the hash
    assert "memo" not in repr(a)
    assert "_calls" not in repr(a)
    assert a.kind is TaskKind.STEP
    assert a.idempotency_key == f"{PARENT}:3:fan_out"
