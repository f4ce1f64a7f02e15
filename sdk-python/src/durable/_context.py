"""StepContext: what a step may ask about the run it belongs to, its children and its waits.

A step starts child workflows through its context: :meth:`StepContext.start_workflow`
(fire and forget) and :meth:`StepContext.call_workflow` (wait for the child's result).
It waits for time with :meth:`~StepContext.sleep` and :meth:`~StepContext.sleep_until`,
for events sent to the execution (``send_event``) with
:meth:`~StepContext.wait_for_event`, :meth:`~StepContext.wait_for_any` and
:meth:`~StepContext.wait_for_all`, and for a person's answer (``provide_input``) with
:meth:`~StepContext.wait_for_input`. None of them does any I/O.

Each of these calls takes the next index of the step run (0, 1, 2, ... in call order,
shared by all of them). ``start_workflow`` and ``call_workflow`` record a ``ChildStart``;
the worker sends the starts with the step's result, or with its suspension when the
step has to wait. The child's id is derived from the parent's id, the step run's
sequence and the index, so however often the step runs again (a retry, a re-run after
a wait, a crash) it names the same child, and the orchestrator creates each child once.

**A step that waits runs again from the top when the wait is over.** A wait does not
hold a worker: it raises :class:`StepSuspended`, the worker reports the step as waiting,
and when the wait is over (the time came, the events arrived, the person answered, the
child ended, or the wait's timeout elapsed) the step runs again from its first line.
Every wait it already passed then returns its recorded value at once, without waiting:
the outcomes are memoised by call order (the index). So code before a wait runs once
more per wait and must be safe to repeat (make its side effects idempotent, e.g. with
``ctx.idempotency_key``), and a step must make the same calls in the same order on
every run::

    from durable import StepContext, Workflow, days, next_business_day

    wf = Workflow("expenses")


    @wf.step
    def approve(claim, ctx: StepContext):
        notify_manager(claim, key=ctx.idempotency_key)  # runs again on each resume
        answer = ctx.wait_for_input(  # wait 0
            "manager_approval",
            kind="approval",
            prompt=f"Refund {claim['amount']} EUR to {claim['who']}?",
            timeout=days(3),
            timeout_value=False,  # no answer in 3 days: refused
        )
        if answer is False:
            return {**claim, "approved": False}
        ctx.sleep_until(next_business_day(9, tz="Europe/Paris"))  # wait 1
        receipt = ctx.wait_for_event("payment_sent", timeout=days(7))  # wait 2
        return {**claim, "approved": True, "receipt": receipt}

The first run suspends at wait 0; the run after the answer returns it from the memo and
suspends at wait 1; and so on: ``notify_manager`` runs four times, the waits each once.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, NoReturn, TypeAlias, TypeVar, overload

from durable import _serde
from durable._converters import event_wait_mode_to_proto, input_field_to_proto, input_kind_to_proto
from durable._dsl import Workflow
from durable._models import INPUT_FIELD_TYPES, EventWaitMode, InputField, InputKind, TaskKind
from durable._nodes import check_name
from durable.errors import ChildWorkflowError, NonRetryableError, WaitError, WaitTimeoutError
from durable.secrets import mark_secret
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb

__all__ = [
    "CHILD_NAMESPACE",
    "InputKindName",
    "StepContext",
    "StepSuspended",
    "Wait",
    "WaitKind",
    "child_execution_id",
    "recorded_children",
    "suspension_of",
    "wait_kind",
]

T = TypeVar("T")

Wait: TypeAlias = pb.ChildWait | pb.SleepWait | pb.EventWait | pb.InputWait
"""What a suspended step waits for: one of the ``TaskSuspension.wait`` messages."""

WaitKind: TypeAlias = Literal["child", "sleep", "events", "input"]
"""The name of a wait's field in ``TaskSuspension``'s ``wait`` oneof."""

InputKindName: TypeAlias = Literal["approval", "single_choice", "multi_choice", "free_text", "form"]
"""The names of the :class:`~durable.InputKind` members, accepted as ``kind``."""

_WAIT_KINDS: Final[dict[type[Wait], WaitKind]] = {
    pb.ChildWait: "child",
    pb.SleepWait: "sleep",
    pb.EventWait: "events",
    pb.InputWait: "input",
}

_CHOICE_KINDS: Final = frozenset({InputKind.SINGLE_CHOICE, InputKind.MULTI_CHOICE})
_FIELD_KEYS: Final = frozenset({"name", "type", "required", "label"})

CHILD_NAMESPACE: Final = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
"""The uuid5 namespace of child execution ids (RFC 4122's URL namespace)."""

_MISSING: Any = object()
"""A wait's ``timeout_value`` when none is given (``None`` is a value)."""

_PRIORITY_RANGE = range(-(2**31), 2**31)


def child_execution_id(execution_id: str, sequence: int, index: int) -> str:
    """The id of the child that step run ``sequence`` of ``execution_id`` starts at ``index``.

    ``uuid5(CHILD_NAMESPACE, "<execution id>/<sequence>/<index>")``: the orchestrator
    derives the same id, so the step knows it before the child exists.
    """
    return str(uuid.uuid5(CHILD_NAMESPACE, f"{execution_id}/{sequence}/{index}"))


def wait_kind(wait: Wait) -> WaitKind:
    """The field of ``TaskSuspension``'s ``wait`` oneof that carries ``wait``."""
    return _WAIT_KINDS[type(wait)]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _describe(wait: Wait) -> str:
    """What a suspended step waits for, in words."""
    if isinstance(wait, pb.ChildWait):
        return f"the step waits for the child workflow of its call {wait.index}"
    if isinstance(wait, pb.SleepWait):
        if wait.WhichOneof("until") == "until_time":
            until = wait.until_time.ToDatetime(tzinfo=UTC).isoformat()
            return f"the step sleeps until {until} (call {wait.index})"
        return f"the step sleeps for {wait.duration.ToTimedelta()} (call {wait.index})"
    if isinstance(wait, pb.EventWait):
        which = {
            common_pb2.EVENT_WAIT_MODE_ANY: "any of the events",
            common_pb2.EVENT_WAIT_MODE_ALL: "all of the events",
        }.get(wait.mode, "the event")
        return f"the step waits for {which} {_quoted(wait.names)} (call {wait.index})"
    return f"the step waits for the input {wait.name!r} (call {wait.index})"


class StepSuspended(BaseException):
    """Raised by a wait (``ctx.call_workflow``, ``ctx.sleep``, ``ctx.wait_for_*``) to park the step.

    It derives from ``BaseException``, not ``Exception``, so that ``except Exception`` in
    step code lets it through to the worker, which reports the step as waiting instead of
    failed. Step code that catches ``BaseException`` (or uses a bare ``except:``) must
    re-raise it. (A worker that sees the step swallow it still suspends the step.)

    Attributes:
        wait: What the step waits for: a ``ChildWait``, ``SleepWait``, ``EventWait`` or
            ``InputWait`` (see :func:`wait_kind`).
        children: Every child start the step run recorded up to here (for a child call,
            the waited one included).
        method: The ``StepContext`` method that raised it, e.g. ``"call_workflow"``.
    """

    def __init__(
        self,
        wait: Wait,
        children: tuple[pb.ChildStart, ...],
        *,
        method: str = "call_workflow",
    ) -> None:
        super().__init__(_describe(wait))
        self.wait = wait
        self.children = children
        self.method = method


class _Calls:
    """The mutable part of a step run's context: its call counter and what it recorded."""

    __slots__ = ("counter", "starts", "suspension", "timed_out")

    def __init__(self) -> None:
        self.counter = itertools.count()  # next() is atomic: no index is taken twice
        self.starts: list[pb.ChildStart] = []
        self.suspension: StepSuspended | None = None
        self.timed_out = False  # whether the last wait replayed was a timeout


def _workflow_name(workflow: str | Workflow) -> str:
    name = workflow.name if isinstance(workflow, Workflow) else workflow
    return check_name("workflow", name)


def _check_timeout(method: str, timeout: timedelta | None, has_timeout_value: bool) -> None:
    if timeout is not None and (not isinstance(timeout, timedelta) or timeout <= timedelta(0)):
        raise ValueError(f"{method}: timeout must be a positive timedelta, got {timeout!r}")
    if has_timeout_value and timeout is None:
        raise ValueError(f"{method}: timeout_value is only used with a timeout")


def _names(method: str, what: str, names: Iterable[str]) -> list[str]:
    """A non-empty list of distinct valid names; ValueError otherwise."""
    if isinstance(names, str | bytes):
        raise ValueError(f"{method}: {what}s must be a list of names, not the string {names!r}")
    out = [check_name(what, n) for n in names]
    if not out:
        raise ValueError(f"{method}: give at least one {what} name")
    repeated = sorted({n for n in out if out.count(n) > 1})
    if repeated:
        raise ValueError(f"{method}: {what} names must be distinct, repeated: {_quoted(repeated)}")
    return out


def _choices(kind: InputKind, choices: Iterable[str] | None) -> list[str]:
    if kind not in _CHOICE_KINDS:
        if choices is not None:
            raise ValueError(
                f"wait_for_input: choices are only for single_choice and multi_choice inputs, "
                f"not {kind.value}"
            )
        return []
    if choices is None or isinstance(choices, str | bytes):
        raise ValueError(f"wait_for_input: a {kind.value} input needs a list of choices")
    out = list(choices)
    if not out:
        raise ValueError(f"wait_for_input: a {kind.value} input needs at least one choice")
    for choice in out:
        if not isinstance(choice, str) or not choice:
            raise ValueError(f"wait_for_input: choices must be non-empty strings, got {choice!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"wait_for_input: choices must be distinct, got {out!r}")
    return out


def _field(value: InputField | Mapping[str, Any]) -> InputField:
    """A form field from an InputField or a dict with its attributes; ValueError if bad."""
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - _FIELD_KEYS)
        if unknown or "name" not in value:
            raise ValueError(
                f"wait_for_input: a field is a dict with a 'name' and optionally 'type', "
                f"'required' and 'label', got {dict(value)!r}"
            )
        value = InputField(**value)
    elif not isinstance(value, InputField):
        raise ValueError(
            f"wait_for_input: fields must be durable.InputField or dicts, got {value!r}"
        )
    check_name("field", value.name)
    if value.type not in INPUT_FIELD_TYPES:
        raise ValueError(
            f"wait_for_input: field {value.name!r} has type {value.type!r}; expected one of "
            + ", ".join(sorted(INPUT_FIELD_TYPES))
        )
    if not isinstance(value.required, bool):
        raise ValueError(f"wait_for_input: field {value.name!r}: required must be a bool")
    if not isinstance(value.label, str):
        raise ValueError(f"wait_for_input: field {value.name!r}: label must be a string")
    return value


def _fields(
    kind: InputKind, fields: Iterable[InputField | Mapping[str, Any]] | None
) -> list[InputField]:
    if kind is not InputKind.FORM:
        if fields is not None:
            raise ValueError(f"wait_for_input: fields are only for form inputs, not {kind.value}")
        return []
    if fields is None or isinstance(fields, Mapping | str | bytes):
        raise ValueError("wait_for_input: a form input needs a list of fields")
    out = [_field(f) for f in fields]
    if not out:
        raise ValueError("wait_for_input: a form input needs at least one field")
    names = [f.name for f in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"wait_for_input: field names must be distinct, repeated: {repeated!r}")
    return out


@dataclass(frozen=True)
class StepContext:
    """Passed as the optional last parameter of a step, compensation or into function.

    Attributes:
        execution_id: The execution this step runs in.
        workflow_name: The workflow's name.
        step_name: This step's name (a compensation's own name; for an into merge, the
            name of its parallel or foreach node).
        sequence: Position of this step run in the execution, from 1.
        attempt: The attempt number, from 1.
        input: The execution's original input (decoded from JSON).
        lane_path: Where this run is: ``""`` at the top level, else the lanes from the
            outside in, e.g. ``"checks/fraud"`` or ``"notify/17"`` (foreach item 17).
        kind: What runs: :attr:`TaskKind.STEP`, :attr:`TaskKind.INTO` or
            :attr:`TaskKind.COMPENSATION`.
        memo: The outcomes of this step run's earlier waits and child calls by call
            index (as text), each ``{"ok": true, "value": ...}`` or ``{"ok": false,
            "error": {...}}``. The waits answer from it; empty on a first run.
        idempotency_key: A key unique to this step run, the same for its retries and
            re-runs: use it for side effects. The orchestrator sends it with the task
            (``"<execution_id>:<sequence>:<step_name>"``); when empty (an orchestrator
            that does not send it) it is derived the same way.
    """

    execution_id: str
    workflow_name: str
    step_name: str
    sequence: int
    attempt: int
    input: Any
    lane_path: str = ""
    kind: TaskKind = TaskKind.STEP
    memo: Mapping[str, Any] = field(default_factory=dict, repr=False, hash=False)
    idempotency_key: str = ""
    _calls: _Calls = field(default_factory=_Calls, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.idempotency_key:
            key = f"{self.execution_id}:{self.sequence}:{self.step_name}"
            object.__setattr__(self, "idempotency_key", key)  # a frozen dataclass

    def secret(self, value: str) -> str:
        """Mark ``value`` as secret for this attempt and return it (``durable.secrets``).

        Before the attempt's report leaves the worker, the value is replaced by ``***``
        in its captured log lines and in its error's message and traceback.
        """
        return mark_secret(value)

    def start_workflow(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
    ) -> str:
        """Start a child execution of ``workflow`` (fire and forget); return its id.

        Nothing is sent yet: the child is created with the step's result, so a step that
        fails starts no child. The id is derived from this step run and the call's
        position in it, so a retry or re-run of the step names the same child and the
        orchestrator creates it once. The child is listed by ``list_children`` and is
        cancelled with its parent.

        Args:
            workflow: The child workflow, or its name (it must be registered by a worker).
            input: The child's input; it crosses the JSON boundary here.
            queue: Queue to run it on; ``None`` means the child workflow's queue.
            priority: Higher runs first among ready work on the same queue.

        Raises:
            ValueError: A bad workflow or queue name, or a priority out of range.
            JSONSerializationError: The input cannot be written as JSON.
        """
        index = next(self._calls.counter)
        self._child_start(index, workflow, input, queue, priority)
        return child_execution_id(self.execution_id, self.sequence, index)

    def call_workflow(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        timeout: timedelta | None = None,
        timeout_value: Any = _MISSING,
        queue: str | None = None,
        priority: int = 0,
    ) -> Any:
        """Run ``workflow`` as a child execution and return its result.

        The step does not hold a worker while the child runs: the call raises
        :class:`StepSuspended` (a ``BaseException``, which ``except Exception`` does not
        catch), the worker reports the step as waiting, and when the child ends the step
        **runs again from the top**. This time the call returns the child's result at
        once, and so does every earlier call of this step run: code before the call
        runs once more per call, so it must be safe to repeat (make its side effects
        idempotent, e.g. with :attr:`idempotency_key`). Calls are told apart by their
        order: make the same calls in the same order on every run. A retry of the step
        waits on the same child, it does not start another. Works the same in
        sync and async steps (there is nothing to await). Only a step may wait: in a
        compensation or an into merge the call fails the task.

        Args:
            workflow: The child workflow, or its name (it must be registered by a worker).
            input: The child's input; it crosses the JSON boundary here.
            timeout: Stop waiting after this long: the child is cancelled and the call
                returns ``timeout_value``, or without one raises ChildWorkflowError
                (type ``"ChildTimeout"``). ``None`` waits as long as the child runs.
            timeout_value: The call's result when ``timeout`` elapses (it crosses the JSON
                boundary too: a tuple comes back as a list).
            queue: Queue to run the child on; ``None`` means the child workflow's queue.
            priority: Higher runs first among ready work on the same queue.

        Returns:
            The child's result (decoded from JSON), or ``timeout_value`` on a timeout.

        Raises:
            ChildWorkflowError: The child failed, was cancelled or timed out, or the wait
                timed out without a ``timeout_value``.
            ValueError: A bad workflow or queue name, priority or timeout.
            JSONSerializationError: The input or timeout value cannot be written as JSON.
        """
        has_timeout_value = timeout_value is not _MISSING
        _check_timeout("call_workflow", timeout, has_timeout_value)
        index = next(self._calls.counter)
        key = str(index)
        if key in self.memo:
            return self._replay(index, self.memo[key])
        wait = pb.ChildWait(index=index)
        _set_timeout(wait, timeout, timeout_value)
        self._child_start(index, workflow, input, queue, priority)
        self._suspend(wait, "call_workflow")

    # -- waits -------------------------------------------------------------------------

    def sleep(self, duration: timedelta) -> None:
        """Pause the step for ``duration``, holding no worker.

        The step is suspended and **runs again from the top** once ``duration`` has
        passed (counted from when the orchestrator records the suspension); on that
        run this call returns ``None`` at once, as does every wait the step already
        passed (their outcomes are recorded by call order). Code before the call runs
        again, so it must be safe to repeat. A duration of zero returns at once. Do not
        ``await`` it, in an async step either.

        Raises:
            ValueError: ``duration`` is not a timedelta, or is negative.
        """
        if not isinstance(duration, timedelta):
            raise ValueError(f"sleep: duration must be a timedelta, got {duration!r}")
        if duration < timedelta(0):
            raise ValueError(f"sleep: duration must not be negative, got {duration!r}")
        index = next(self._calls.counter)
        key = str(index)
        if key in self.memo:
            self._wait_value(index, self.memo[key])
            return
        if not duration:
            return
        wait = pb.SleepWait(index=index)
        wait.duration.FromTimedelta(duration)
        self._suspend(wait, "sleep")

    def sleep_until(self, when: datetime) -> None:
        """Pause the step until ``when`` (a timezone-aware datetime), holding no worker.

        Like :meth:`sleep`: the step **runs again from the top** at ``when``, and this
        call (and every earlier wait) then returns at once from the recorded outcomes,
        so code before it must be safe to repeat. A time that has passed already (by
        the worker's clock) returns at once. :func:`durable.next_business_day`,
        :func:`durable.next_weekday` and :func:`durable.end_of_day` compute times in a
        time zone.

        Raises:
            ValueError: ``when`` is not a datetime, or is naive (its zone is unknown).
        """
        if not isinstance(when, datetime):
            raise ValueError(f"sleep_until: when must be a datetime, got {when!r}")
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(
                f"sleep_until: when must be a timezone-aware datetime, got {when!r} "
                "(e.g. datetime(..., tzinfo=ZoneInfo('Europe/Paris')) or datetime.now(UTC))"
            )
        index = next(self._calls.counter)
        key = str(index)
        if key in self.memo:
            self._wait_value(index, self.memo[key])
            return
        if when <= datetime.now(UTC):
            return
        wait = pb.SleepWait(index=index)
        wait.until_time.FromDatetime(when)
        self._suspend(wait, "sleep_until")

    def wait_for_event(
        self, name: str, *, timeout: timedelta | None = None, timeout_value: Any = _MISSING
    ) -> Any:
        """Wait until the event ``name`` is sent to this execution; return its payload.

        Events are sent with ``client.send_event(execution_id, name, payload)``. One
        sent before the step waits is kept, and ends the wait as soon as it begins. The
        step is suspended and **runs again from the top** when the event arrives; this
        call then returns the payload at once, as every wait the step already passed
        returns its recorded value, so code before it must be safe to repeat. Do not
        ``await`` it.

        Args:
            name: The event's name: 1-128 ASCII letters, digits, ``_``, ``-``, ``.``,
                starting with a letter or ``_``; any other fails this call at once.
            timeout: Give up after this long: the call returns ``timeout_value``, or
                without one raises :class:`~durable.WaitTimeoutError` (type
                ``"EventTimeout"``). ``None`` waits as long as the execution lives.
            timeout_value: The call's result when ``timeout`` elapses (it crosses the
                JSON boundary: a tuple comes back as a list).

        Returns:
            The event's payload (decoded from JSON), or ``timeout_value``.

        Raises:
            WaitTimeoutError: The timeout elapsed and there is no ``timeout_value``.
            ValueError: A bad name or timeout.
            JSONSerializationError: ``timeout_value`` cannot be written as JSON.
        """
        names = [check_name("event", name)]
        return self._events("wait_for_event", names, EventWaitMode.ONE, timeout, timeout_value)

    @overload
    def wait_for_any(
        self, names: Iterable[str], *, timeout: timedelta | None = None
    ) -> tuple[str, Any]: ...

    @overload
    def wait_for_any(
        self, names: Iterable[str], *, timeout: timedelta | None = None, timeout_value: T
    ) -> tuple[str, Any] | T: ...

    def wait_for_any(
        self,
        names: Iterable[str],
        *,
        timeout: timedelta | None = None,
        timeout_value: Any = _MISSING,
    ) -> Any:
        """Wait for the first of the events ``names``; return ``(name, payload)``.

        Like :meth:`wait_for_event` (the step **runs again from the top** when the event
        arrives, and this call then returns at once), for several events: the first of
        them sent to the execution ends the wait. The others stay unconsumed, for a
        later wait.

        Args:
            names: The events' names, distinct (a list or tuple, not a single string).
            timeout: Give up after this long: the call returns ``timeout_value`` as it
                is (not a pair), or without one raises :class:`~durable.WaitTimeoutError`
                (type ``"EventTimeout"``).
            timeout_value: The call's result when ``timeout`` elapses.

        Returns:
            ``(name, payload)`` of the event that came, or ``timeout_value``. (A
            ``timeout_value`` shaped like ``{"event": name, "payload": ...}``, with one of
            ``names``, comes back as a pair.)

        Raises:
            WaitTimeoutError: The timeout elapsed and there is no ``timeout_value``.
            ValueError: Bad or repeated names, or a bad timeout.
            JSONSerializationError: ``timeout_value`` cannot be written as JSON.
        """
        checked = _names("wait_for_any", "event", names)
        value = self._events("wait_for_any", checked, EventWaitMode.ANY, timeout, timeout_value)
        if self._calls.timed_out:  # the orchestrator marks a timeout's value as such
            return value
        if (
            isinstance(value, dict)
            and set(value) == {"event", "payload"}
            and value["event"] in checked
        ):
            return str(value["event"]), value["payload"]
        if timeout_value is not _MISSING:
            return value
        raise NonRetryableError(
            "the orchestrator recorded a malformed value for wait_for_any "
            f'(expected {{"event": name, "payload": ...}}): {str(value)[:200]}'
        )

    @overload
    def wait_for_all(
        self, names: Iterable[str], *, timeout: timedelta | None = None
    ) -> dict[str, Any]: ...

    @overload
    def wait_for_all(
        self, names: Iterable[str], *, timeout: timedelta | None = None, timeout_value: T
    ) -> dict[str, Any] | T: ...

    def wait_for_all(
        self,
        names: Iterable[str],
        *,
        timeout: timedelta | None = None,
        timeout_value: Any = _MISSING,
    ) -> Any:
        """Wait until every one of the events ``names`` has come; return ``{name: payload}``.

        Like :meth:`wait_for_event` (the step **runs again from the top** when the last
        event arrives, and this call then returns at once), for several events, in any
        order.

        Args:
            names: The events' names, distinct (a list or tuple, not a single string).
            timeout: Give up after this long (even if some came): the call returns
                ``timeout_value``, or without one raises
                :class:`~durable.WaitTimeoutError` (type ``"EventTimeout"``).
            timeout_value: The call's result when ``timeout`` elapses.

        Returns:
            Each event's payload by name, or ``timeout_value``.

        Raises:
            WaitTimeoutError: The timeout elapsed and there is no ``timeout_value``.
            ValueError: Bad or repeated names, or a bad timeout.
            JSONSerializationError: ``timeout_value`` cannot be written as JSON.
        """
        checked = _names("wait_for_all", "event", names)
        value = self._events("wait_for_all", checked, EventWaitMode.ALL, timeout, timeout_value)
        if isinstance(value, dict) or timeout_value is not _MISSING:
            return value
        raise NonRetryableError(
            "the orchestrator recorded a malformed value for wait_for_all "
            f"(expected {{name: payload, ...}}): {str(value)[:200]}"
        )

    def wait_for_input(
        self,
        name: str,
        *,
        kind: InputKind | InputKindName = InputKind.APPROVAL,
        prompt: str = "",
        choices: Iterable[str] | None = None,
        fields: Iterable[InputField | Mapping[str, Any]] | None = None,
        timeout: timedelta | None = None,
        timeout_value: Any = _MISSING,
    ) -> Any:
        """Wait for a person's answer to the input ``name``; return it.

        The input is listed by ``client.list_pending_inputs`` (``durable
        pending-inputs``) until someone answers it with ``client.provide_input(
        execution_id, name, value)``; the orchestrator checks that the answer fits
        ``kind``. The step is suspended and **runs again from the top** when the answer
        comes; this call then returns it at once, as every wait the step already passed
        returns its recorded value, so code before it must be safe to repeat (send the
        notification asking for the answer idempotently). Do not ``await`` it.

        Args:
            name: The input's name, unique among the execution's pending inputs, e.g.
                ``"manager_approval"``.
            kind: What the answer is: ``"approval"`` (``True``/``False``, or
                ``{"approved": bool, "comment": str}``), ``"single_choice"`` (one of
                ``choices``), ``"multi_choice"`` (a list of distinct ``choices``),
                ``"free_text"`` (a string) or ``"form"`` (an object with ``fields``).
            prompt: What to ask.
            choices: The options of a choice input (required for those, refused for
                the others).
            fields: The fields of a form (required for a form, refused otherwise):
                :class:`~durable.InputField` values or dicts with the same keys
                (``name``, and optionally ``type``, ``required``, ``label``).
            timeout: Give up after this long: the call returns ``timeout_value``, or
                without one raises :class:`~durable.WaitTimeoutError` (type
                ``"InputTimeout"``).
            timeout_value: The call's result when ``timeout`` elapses.

        Returns:
            The answer (decoded from JSON), or ``timeout_value``.

        Raises:
            WaitTimeoutError: The timeout elapsed and there is no ``timeout_value``.
            ValueError: A bad name, kind, choices, fields or timeout.
            JSONSerializationError: ``timeout_value`` cannot be written as JSON.
        """
        check_name("input", name)
        kind_proto = input_kind_to_proto(kind)
        checked_kind = InputKind(kind)
        if not isinstance(prompt, str):
            raise ValueError(f"wait_for_input: prompt must be a string, got {prompt!r}")
        checked_choices = _choices(checked_kind, choices)
        checked_fields = _fields(checked_kind, fields)
        has_timeout_value = timeout_value is not _MISSING
        _check_timeout("wait_for_input", timeout, has_timeout_value)
        index = next(self._calls.counter)
        key = str(index)
        if key in self.memo:
            return self._wait_value(index, self.memo[key])
        wait = pb.InputWait(
            index=index,
            name=name,
            kind=kind_proto,
            prompt=prompt,
            choices=checked_choices,
            fields=[input_field_to_proto(f) for f in checked_fields],
        )
        _set_timeout(wait, timeout, timeout_value)
        self._suspend(wait, "wait_for_input")

    def _events(
        self,
        method: str,
        names: list[str],
        mode: EventWaitMode,
        timeout: timedelta | None,
        timeout_value: Any,
    ) -> Any:
        """The recorded value of an event wait, or suspend on it."""
        _check_timeout(method, timeout, timeout_value is not _MISSING)
        index = next(self._calls.counter)
        key = str(index)
        if key in self.memo:
            return self._wait_value(index, self.memo[key])
        wait = pb.EventWait(index=index, names=names, mode=event_wait_mode_to_proto(mode))
        _set_timeout(wait, timeout, timeout_value)
        self._suspend(wait, method)

    def _suspend(self, wait: Wait, method: str) -> NoReturn:
        """Raise the suspension on ``wait``, with every child start recorded so far."""
        suspension = StepSuspended(wait, tuple(self._calls.starts), method=method)
        if self._calls.suspension is None:  # the first wait wins, should the step go on
            self._calls.suspension = suspension
        raise suspension

    def _wait_value(self, index: int, outcome: Any) -> Any:
        """The recorded outcome of wait ``index``: its value, or WaitError."""
        doc: dict[str, Any] = outcome if isinstance(outcome, dict) else {}
        self._calls.timed_out = doc.get("timed_out") is True
        if doc.get("ok") is True and "value" in doc:
            return doc["value"]
        error = doc.get("error")
        if doc.get("ok") is not False or not isinstance(error, dict):
            raise NonRetryableError(
                f"the orchestrator recorded a malformed outcome for wait {index}: "
                f"{str(outcome)[:200]}"
            )
        error_type = str(error.get("type") or "WaitError")
        message = str(error.get("message") or "the wait ended without a value")
        cls = WaitTimeoutError if error_type.endswith("Timeout") else WaitError
        raise cls(message, type=error_type, index=index)

    def _child_start(
        self, index: int, workflow: str | Workflow, input: Any, queue: str | None, priority: int
    ) -> None:
        """Check and record the child start of call ``index``."""
        name = _workflow_name(workflow)
        if queue:
            check_name("queue", queue)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ValueError(f"priority must be an int, got {priority!r}")
        if priority not in _PRIORITY_RANGE:
            raise ValueError(f"priority must fit in 32 bits, got {priority}")
        input_json = _serde.dumps(input)
        start = pb.ChildStart(
            index=index,
            workflow_name=name,
            input_json=input_json,
            queue=queue or "",
            priority=priority,
        )
        self._calls.starts.append(start)

    def _replay(self, index: int, outcome: Any) -> Any:
        """The recorded outcome of call ``index``: its value, or ChildWorkflowError."""
        doc: dict[str, Any] = outcome if isinstance(outcome, dict) else {}
        if doc.get("ok") is True and "value" in doc:
            return doc["value"]
        error = doc.get("error")
        if doc.get("ok") is not False or not isinstance(error, dict):
            raise NonRetryableError(
                f"the orchestrator recorded a malformed outcome for child call {index}: "
                f"{str(outcome)[:200]}"
            )
        child_id = error.get("execution_id") or child_execution_id(
            self.execution_id, self.sequence, index
        )
        status = error.get("status")
        raise ChildWorkflowError(
            str(error.get("message") or "the child workflow ended without a result"),
            type=str(error.get("type") or "ChildWorkflowFailed"),
            child_execution_id=str(child_id),
            status=str(status) if status else None,
        )


def _set_timeout(
    wait: pb.ChildWait | pb.EventWait | pb.InputWait, timeout: timedelta | None, value: Any
) -> None:
    """Set a wait's timeout and, if given, its timeout value (bare JSON)."""
    if timeout is not None:
        wait.timeout.FromTimedelta(timeout)
    if value is not _MISSING:
        wait.timeout_value_json = _serde.dumps(value)
        wait.has_timeout_value = True


def recorded_children(ctx: StepContext) -> tuple[pb.ChildStart, ...]:
    """Every child start the step run recorded so far, in call order (for the worker)."""
    return tuple(ctx._calls.starts)


def suspension_of(ctx: StepContext) -> StepSuspended | None:
    """The first suspension a wait raised in this step run, if any (for the worker).

    Set even when the step caught it, so a step cannot swallow its own wait.
    """
    return ctx._calls.suspension
