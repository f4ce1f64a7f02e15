"""StepContext's waits: sleeps, events and human inputs (suspensions, memo replay, checks)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from durable import (
    Client,
    InputField,
    InputKind,
    NonRetryableError,
    StepContext,
    SyncClient,
    WaitError,
    WaitTimeoutError,
)
from durable._context import (
    StepSuspended,
    child_execution_id,
    recorded_children,
    suspension_of,
    wait_kind,
)
from durable._serde import JSONSerializationError
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from tests.helpers.aio import yield_to_loop

PARENT = "0190c3e2-0000-7000-8000-000000000001"
FUTURE = datetime(2100, 1, 1, 9, 0, tzinfo=UTC)
PAST = datetime(2000, 1, 1, tzinfo=UTC)


def ctx(memo: dict[str, Any] | None = None) -> StepContext:
    return StepContext(
        execution_id=PARENT,
        workflow_name="parent",
        step_name="waiter",
        sequence=3,
        attempt=1,
        input=None,
        memo=memo or {},
    )


def ok(value: Any) -> dict[str, Any]:
    return {"ok": True, "value": value}


def err(type_: str, message: str = "no luck") -> dict[str, Any]:
    return {"ok": False, "error": {"type": type_, "message": message}}


def suspend(context: StepContext, method: str, *args: Any, **kwargs: Any) -> StepSuspended:
    with pytest.raises(StepSuspended) as info:
        getattr(context, method)(*args, **kwargs)
    return info.value


# -- what each wait suspends with ------------------------------------------------------


def test_sleep_suspends_with_a_duration() -> None:
    context = ctx()
    suspended = suspend(context, "sleep", timedelta(hours=2, milliseconds=5))
    assert isinstance(suspended.wait, pb.SleepWait)
    assert suspended.wait.index == 0
    assert suspended.wait.WhichOneof("until") == "duration"
    assert suspended.wait.duration.ToTimedelta() == timedelta(hours=2, milliseconds=5)
    assert wait_kind(suspended.wait) == "sleep"
    assert suspended.method == "sleep"
    assert suspended.children == ()
    assert str(suspended) == "the step sleeps for 2:00:00.005000 (call 0)"
    assert suspension_of(context) is suspended


def test_sleep_until_suspends_with_the_time_in_utc() -> None:
    paris = datetime(2100, 6, 1, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))
    suspended = suspend(ctx(), "sleep_until", paris)
    assert isinstance(suspended.wait, pb.SleepWait)
    assert suspended.wait.WhichOneof("until") == "until_time"
    assert suspended.wait.until_time.ToDatetime(tzinfo=UTC) == paris
    assert suspended.wait.until_time.ToJsonString() == "2100-06-01T07:30:00Z"
    assert suspended.method == "sleep_until"
    assert str(suspended) == "the step sleeps until 2100-06-01T07:30:00+00:00 (call 0)"


def test_sleep_until_accepts_a_fixed_offset() -> None:
    when = datetime(2100, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    wait = suspend(ctx(), "sleep_until", when).wait
    assert isinstance(wait, pb.SleepWait)
    assert wait.until_time.ToJsonString() == "2100-01-01T17:00:00Z"


def test_a_sleep_that_is_due_already_returns_at_once_but_takes_its_index() -> None:
    context = ctx()
    assert context.sleep(timedelta(0)) is None
    assert context.sleep_until(PAST) is None
    suspended = suspend(context, "sleep", timedelta(seconds=1))
    assert suspended.wait.index == 2
    assert suspension_of(context) is suspended


def test_wait_for_event_suspends_with_mode_one() -> None:
    suspended = suspend(ctx(), "wait_for_event", "payment.received")
    assert suspended.wait == pb.EventWait(
        index=0, names=["payment.received"], mode=common_pb2.EVENT_WAIT_MODE_ONE
    )
    assert not suspended.wait.HasField("timeout")
    assert wait_kind(suspended.wait) == "events"
    assert suspended.method == "wait_for_event"
    assert str(suspended) == "the step waits for the event 'payment.received' (call 0)"


def test_wait_for_any_and_all_suspend_with_their_modes() -> None:
    any_wait = suspend(ctx(), "wait_for_any", ("paid", "cancelled")).wait
    assert any_wait == pb.EventWait(
        index=0, names=["paid", "cancelled"], mode=common_pb2.EVENT_WAIT_MODE_ANY
    )
    all_wait = suspend(ctx(), "wait_for_all", ["a", "b", "c"]).wait
    assert all_wait == pb.EventWait(
        index=0, names=["a", "b", "c"], mode=common_pb2.EVENT_WAIT_MODE_ALL
    )
    any_text = str(suspend(ctx(), "wait_for_any", ["paid", "cancelled"]))
    assert any_text == "the step waits for any of the events 'paid', 'cancelled' (call 0)"
    assert "all of the events 'a'" in str(suspend(ctx(), "wait_for_all", iter(["a"])))


@pytest.mark.parametrize("method", ["wait_for_event", "wait_for_any", "wait_for_all"])
def test_event_waits_carry_their_timeout_and_bare_timeout_value(method: str) -> None:
    names: Any = "e" if method == "wait_for_event" else ["e", "f"]
    wait = suspend(
        ctx(), method, names, timeout=timedelta(minutes=5), timeout_value={"late": (1, 2)}
    ).wait
    assert isinstance(wait, pb.EventWait)
    assert wait.timeout.ToTimedelta() == timedelta(minutes=5)
    assert (wait.timeout_value_json, wait.has_timeout_value) == ('{"late":[1,2]}', True)
    none_value = suspend(ctx(), method, names, timeout=timedelta(1), timeout_value=None).wait
    assert isinstance(none_value, pb.EventWait)
    assert (none_value.timeout_value_json, none_value.has_timeout_value) == ("null", True)
    no_value = suspend(ctx(), method, names, timeout=timedelta(1)).wait
    assert isinstance(no_value, pb.EventWait)
    assert no_value.HasField("timeout")
    assert (no_value.timeout_value_json, no_value.has_timeout_value) == ("", False)


def test_wait_for_input_approval_by_default() -> None:
    suspended = suspend(ctx(), "wait_for_input", "manager_approval", prompt="Refund 30 EUR?")
    assert suspended.wait == pb.InputWait(
        index=0,
        name="manager_approval",
        kind=common_pb2.INPUT_KIND_APPROVAL,
        prompt="Refund 30 EUR?",
    )
    assert wait_kind(suspended.wait) == "input"
    assert suspended.method == "wait_for_input"
    assert str(suspended) == "the step waits for the input 'manager_approval' (call 0)"


def test_wait_for_input_choices_and_timeout() -> None:
    wait = suspend(
        ctx(),
        "wait_for_input",
        "colour",
        kind=InputKind.MULTI_CHOICE,
        choices=("red", "green"),
        timeout=timedelta(days=2),
        timeout_value=["red"],
    ).wait
    assert wait == pb.InputWait(
        index=0,
        name="colour",
        kind=common_pb2.INPUT_KIND_MULTI_CHOICE,
        choices=["red", "green"],
        timeout=wait.timeout,
        timeout_value_json='["red"]',
        has_timeout_value=True,
    )
    assert wait.timeout.ToTimedelta() == timedelta(days=2)
    single = suspend(ctx(), "wait_for_input", "pick", kind="single_choice", choices=["a"]).wait
    assert isinstance(single, pb.InputWait)
    assert (single.kind, list(single.choices)) == (common_pb2.INPUT_KIND_SINGLE_CHOICE, ["a"])
    text = suspend(ctx(), "wait_for_input", "why", kind="free_text").wait
    assert isinstance(text, pb.InputWait)
    assert text.kind == common_pb2.INPUT_KIND_FREE_TEXT


def test_wait_for_input_form_fields_from_dataclasses_and_dicts() -> None:
    wait = suspend(
        ctx(),
        "wait_for_input",
        "address",
        kind="form",
        fields=[
            InputField("street", "string", label="Street"),
            {"name": "number", "type": "integer", "required": False},
            {"name": "note"},
        ],
    ).wait
    assert isinstance(wait, pb.InputWait)
    assert wait.kind == common_pb2.INPUT_KIND_FORM
    assert list(wait.fields) == [
        common_pb2.InputField(name="street", type="string", required=True, label="Street"),
        common_pb2.InputField(name="number", type="integer", required=False),
        common_pb2.InputField(name="note", type="any", required=True),
    ]


def test_a_wait_carries_the_children_started_before_it() -> None:
    context = ctx()
    context.start_workflow("audit", 1)
    suspended = suspend(context, "wait_for_event", "go")
    assert suspended.wait.index == 1
    assert suspended.children == (pb.ChildStart(index=0, workflow_name="audit", input_json="1"),)
    assert recorded_children(context) == suspended.children


# -- replaying the memo ----------------------------------------------------------------


def test_sleeps_return_none_from_the_memo_without_suspending() -> None:
    context = ctx({"0": ok(None), "1": ok(None)})
    assert context.sleep(timedelta(days=1)) is None
    assert context.sleep_until(FUTURE) is None
    assert suspension_of(context) is None
    assert suspend(context, "sleep", timedelta(days=1)).wait.index == 2


def test_wait_for_event_returns_the_payload() -> None:
    context = ctx({"0": ok({"amount": 30}), "1": ok(None)})
    assert context.wait_for_event("paid") == {"amount": 30}
    assert context.wait_for_event("nothing") is None
    assert suspension_of(context) is None


def test_wait_for_any_returns_the_name_and_payload() -> None:
    context = ctx({"0": ok({"event": "cancelled", "payload": [1]})})
    assert context.wait_for_any(["paid", "cancelled"]) == ("cancelled", [1])


def test_wait_for_all_returns_the_payloads_by_name() -> None:
    context = ctx({"0": ok({"a": 1, "b": None})})
    assert context.wait_for_all(["a", "b"]) == {"a": 1, "b": None}


def test_timeout_values_come_back_as_they_are() -> None:
    memo = {"0": ok("late"), "1": ok(["x"]), "2": ok({"partial": True}), "3": ok(False)}
    context = ctx(memo)
    hour = timedelta(hours=1)
    assert context.wait_for_event("e", timeout=hour, timeout_value="late") == "late"
    assert context.wait_for_any(["e", "f"], timeout=hour, timeout_value=("x",)) == ["x"]
    assert context.wait_for_all(["e", "f"], timeout=hour, timeout_value={"partial": True}) == {
        "partial": True
    }
    assert context.wait_for_input("ok", timeout=hour, timeout_value=False) is False


def test_a_timeout_value_of_none_for_any_is_none() -> None:
    context = ctx({"0": ok(None)})
    assert context.wait_for_any(["e"], timeout=timedelta(1), timeout_value=None) is None


def test_wait_for_input_returns_the_answer() -> None:
    answer = {"approved": True, "comment": "fine"}
    context = ctx({"0": ok(answer), "1": ok(["red"]), "2": ok({"street": "Main"})})
    assert context.wait_for_input("approval") == answer
    assert context.wait_for_input("colour", kind="multi_choice", choices=["red"]) == ["red"]
    assert context.wait_for_input("address", kind="form", fields=[{"name": "street"}]) == {
        "street": "Main"
    }


@pytest.mark.parametrize(
    ("call", "error_type"),
    [
        (lambda c: c.wait_for_event("e", timeout=timedelta(1)), "EventTimeout"),
        (lambda c: c.wait_for_any(["e", "f"], timeout=timedelta(1)), "EventTimeout"),
        (lambda c: c.wait_for_all(["e", "f"], timeout=timedelta(1)), "EventTimeout"),
        (lambda c: c.wait_for_input("yes", timeout=timedelta(1)), "InputTimeout"),
    ],
)
def test_a_recorded_timeout_raises_wait_timeout_error(call: Any, error_type: str) -> None:
    context = ctx({"0": err(error_type, "events did not arrive before the wait's timeout")})
    with pytest.raises(WaitTimeoutError) as info:
        call(context)
    exc = info.value
    assert isinstance(exc, WaitError)
    assert isinstance(exc, NonRetryableError)  # the outcome stays with the step run
    assert (exc.type, exc.index) == (error_type, 0)
    assert str(exc) == exc.message == "events did not arrive before the wait's timeout"


def test_other_recorded_errors_raise_wait_error() -> None:
    context = ctx({"0": err("Cancelled", "gone"), "1": {"ok": False, "error": {}}})
    with pytest.raises(WaitError, match="gone") as info:
        context.sleep(timedelta(1))
    assert not isinstance(info.value, WaitTimeoutError)
    assert info.value.type == "Cancelled"
    with pytest.raises(WaitError, match="the wait ended without a value") as empty:
        context.wait_for_event("e")
    assert (empty.value.type, empty.value.index) == ("WaitError", 1)


@pytest.mark.parametrize(
    "outcome", [{"ok": True}, {"ok": False}, {"ok": False, "error": "x"}, 7, None]
)
def test_a_malformed_outcome_fails_the_step_for_good(outcome: Any) -> None:
    with pytest.raises(NonRetryableError, match="malformed outcome for wait 0"):
        ctx({"0": outcome}).sleep(timedelta(1))
    with pytest.raises(NonRetryableError, match="malformed outcome for wait 0"):
        ctx({"0": outcome}).wait_for_input("x")


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("wait_for_any", {"event": "other", "payload": 1}),
        ("wait_for_any", {"event": "e"}),
        ("wait_for_any", "e"),
        ("wait_for_all", ["e"]),
    ],
)
def test_a_malformed_any_or_all_value_fails_for_good(method: str, value: Any) -> None:
    with pytest.raises(NonRetryableError, match=f"malformed value for {method}"):
        getattr(ctx({"0": ok(value)}), method)(["e", "f"])


# -- one index counter for starts, calls and waits -------------------------------------


def test_waits_share_the_index_counter_with_child_calls_and_starts() -> None:
    memo = {
        "1": ok("child says hi"),
        "2": ok(None),
        "3": ok({"event": "b", "payload": 2}),
        "4": ok(True),
    }
    context = ctx(memo)
    assert context.start_workflow("s0") == child_execution_id(PARENT, 3, 0)
    assert context.call_workflow("c1") == "child says hi"
    context.sleep(timedelta(minutes=1))
    assert context.wait_for_any(["a", "b"]) == ("b", 2)
    assert context.wait_for_input("approve") is True
    suspended = suspend(context, "call_workflow", "c5")
    assert isinstance(suspended.wait, pb.ChildWait)
    assert suspended.wait.index == 5
    assert [(c.index, c.workflow_name) for c in suspended.children] == [(0, "s0"), (5, "c5")]
    assert context.start_workflow("s6") == child_execution_id(PARENT, 3, 6)


def test_a_child_call_after_a_wait_gets_the_next_index() -> None:
    context = ctx({"0": ok(None)})
    context.sleep(timedelta(seconds=5))
    suspended = suspend(context, "call_workflow", "billing")
    assert suspended.wait.index == 1
    assert suspended.children[0].index == 1


def test_the_first_wait_wins_when_the_step_swallows_its_suspension() -> None:
    context = ctx()
    first = suspend(context, "wait_for_event", "e")
    second = suspend(context, "sleep", timedelta(1))
    assert (first.wait.index, second.wait.index) == (0, 1)
    assert suspension_of(context) is first


def test_waits_work_the_same_in_an_async_step() -> None:
    async def step(context: StepContext) -> Any:
        await yield_to_loop()
        context.sleep(timedelta(seconds=1))
        return context.wait_for_event("go")

    with pytest.raises(StepSuspended) as info:
        asyncio.run(step(ctx()))
    assert info.value.wait.index == 0
    with pytest.raises(StepSuspended) as again:
        asyncio.run(step(ctx({"0": ok(None)})))
    assert again.value.wait.index == 1
    assert asyncio.run(step(ctx({"0": ok(None), "1": ok("went")}))) == "went"


def test_except_exception_does_not_swallow_a_wait() -> None:
    context = ctx()

    def step_code() -> str:
        try:
            context.wait_for_input("ok")
        except Exception:
            return "swallowed"
        return "answered"

    with pytest.raises(StepSuspended):
        step_code()


# -- checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "error", "message"),
    [
        ("sleep", (5,), {}, ValueError, "sleep: duration must be a timedelta"),
        ("sleep", (timedelta(-1),), {}, ValueError, "sleep: duration must not be negative"),
        ("sleep_until", ("2030-01-01",), {}, ValueError, "when must be a datetime"),
        (
            "sleep_until",
            (datetime(2100, 1, 1),),
            {},
            ValueError,
            "sleep_until: when must be a timezone-aware datetime",
        ),
        ("wait_for_event", ("bad name",), {}, ValueError, "event name 'bad name' is invalid"),
        ("wait_for_event", ("",), {}, ValueError, "event name '' is invalid"),
        ("wait_for_event", ("paid\n",), {}, ValueError, r"event name 'paid\\n' is invalid"),
        ("wait_for_event", ("café",), {}, ValueError, "event name 'café' is invalid"),
        ("wait_for_input", ("2fa",), {}, ValueError, "input name '2fa' is invalid: use 1-128"),
        (
            "wait_for_event",
            ("e",),
            {"timeout": timedelta(0)},
            ValueError,
            "wait_for_event: timeout must be a positive timedelta",
        ),
        (
            "wait_for_event",
            ("e",),
            {"timeout": 10},
            ValueError,
            "wait_for_event: timeout must be a positive timedelta",
        ),
        (
            "wait_for_event",
            ("e",),
            {"timeout_value": 1},
            ValueError,
            "wait_for_event: timeout_value is only used with a timeout",
        ),
        (
            "wait_for_event",
            ("e",),
            {"timeout": timedelta(1), "timeout_value": object()},
            JSONSerializationError,
            "not JSON serializable",
        ),
        ("wait_for_any", ("paid",), {}, ValueError, "events must be a list of names"),
        ("wait_for_any", ([],), {}, ValueError, "wait_for_any: give at least one event name"),
        (
            "wait_for_all",
            (["a", "b", "a"],),
            {},
            ValueError,
            "wait_for_all: event names must be distinct, repeated: 'a'",
        ),
        ("wait_for_all", (["a", "b c"],), {}, ValueError, "event name 'b c' is invalid"),
        (
            "wait_for_any",
            (["a"],),
            {"timeout_value": None},
            ValueError,
            "wait_for_any: timeout_value is only used with a timeout",
        ),
        ("wait_for_input", ("bad/name",), {}, ValueError, "input name 'bad/name' is invalid"),
        ("wait_for_input", ("x",), {"kind": "yes_no"}, ValueError, "unknown input kind 'yes_no'"),
        ("wait_for_input", ("x",), {"prompt": 3}, ValueError, "prompt must be a string"),
        (
            "wait_for_input",
            ("x",),
            {"kind": "single_choice"},
            ValueError,
            "a single_choice input needs a list of choices",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "multi_choice", "choices": "ab"},
            ValueError,
            "a multi_choice input needs a list of choices",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "multi_choice", "choices": []},
            ValueError,
            "needs at least one choice",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "single_choice", "choices": ["a", ""]},
            ValueError,
            "choices must be non-empty strings",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "single_choice", "choices": ["a", "a"]},
            ValueError,
            "choices must be distinct",
        ),
        (
            "wait_for_input",
            ("x",),
            {"choices": ["a"]},
            ValueError,
            "choices are only for single_choice and multi_choice inputs, not approval",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form"},
            ValueError,
            "a form input needs a list of fields",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": {"name": "a"}},
            ValueError,
            "a form input needs a list of fields",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": []},
            ValueError,
            "a form input needs at least one field",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "free_text", "fields": [{"name": "a"}]},
            ValueError,
            "fields are only for form inputs, not free_text",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [{"name": "a", "kind": "string"}]},
            ValueError,
            "a field is a dict with a 'name'",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [{"type": "string"}]},
            ValueError,
            "a field is a dict with a 'name'",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": ["street"]},
            ValueError,
            "fields must be durable.InputField or dicts",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [{"name": "1st"}]},
            ValueError,
            "field name '1st' is invalid",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [InputField("a", "text")]},
            ValueError,
            "field 'a' has type 'text'; expected one of any, boolean, integer, number, string",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [{"name": "a", "required": "yes"}]},
            ValueError,
            "field 'a': required must be a bool",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [{"name": "a", "label": 1}]},
            ValueError,
            "field 'a': label must be a string",
        ),
        (
            "wait_for_input",
            ("x",),
            {"kind": "form", "fields": [{"name": "a"}, InputField("a")]},
            ValueError,
            "field names must be distinct, repeated: ['a']",
        ),
        (
            "wait_for_input",
            ("x",),
            {"timeout": timedelta(seconds=-1)},
            ValueError,
            "wait_for_input: timeout must be a positive timedelta",
        ),
    ],
)
def test_bad_waits_raise_in_the_step_and_suspend_nothing(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    context = ctx()
    with pytest.raises(error, match=message.replace("(", r"\(").replace("[", r"\[")):
        getattr(context, method)(*args, **kwargs)
    assert suspension_of(context) is None


def test_checks_run_on_a_replay_too() -> None:
    # The memo never hides a mistake: the same call fails the same way on every run.
    with pytest.raises(ValueError, match="sleep_until: when must be a timezone-aware"):
        ctx({"0": ok(None)}).sleep_until(datetime(2100, 1, 1))
    with pytest.raises(ValueError, match="needs a list of choices"):
        ctx({"0": ok("a")}).wait_for_input("x", kind="single_choice")


# -- names on the client's side ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["paid\n", "café", "2fa", "a b", "", "x" * 129])
async def test_the_client_refuses_a_bad_event_or_input_name_before_calling(name: str) -> None:
    rule = (
        "is invalid: use 1-128 characters from ASCII letters, digits, '_', '-', '.', "
        "starting with a letter or '_'"
    )
    # Nothing listens at this address: the name is refused before any call is made.
    async with Client("127.0.0.1:9", timeout=0.5) as client:
        with pytest.raises(ValueError, match="event name") as err:
            await client.send_event("0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", name, 1)
        assert str(err.value) == f"event name {name!r} {rule}"
        with pytest.raises(ValueError, match="input name") as err:
            await client.provide_input("0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", name, True)
        assert str(err.value) == f"input name {name!r} {rule}"
    with SyncClient("127.0.0.1:9", timeout=0.5) as sync:
        with pytest.raises(ValueError, match="event name"):
            sync.send_event("0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", name)
        with pytest.raises(ValueError, match="input name"):
            sync.provide_input("0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", name, True)
