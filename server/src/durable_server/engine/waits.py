"""Waits: parking a suspended step, and what ends the wait (a child, a timer, an event, an answer).

A waiting step holds no worker and no memory here: it is a ``waiting`` task and a
``waits`` row (with a timer row at its deadline). Whatever ends the wait records the
outcome in the task's memo, by the wait's index, and makes the task ready again in the
same transaction; the step then runs again and each wait it already passed returns at
once. Outcomes are JSON text built without parsing user payloads:
``{"ok": true, "value": ...}`` or ``{"ok": false, "error": {...}}``.

Sending an event and starting an event wait both lock the execution's row first, so an
event sent while the wait begins is never missed: it is kept, and taken when the wait starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from durable_server.clock import Clock
from durable_server.engine.apply import Applier
from durable_server.engine.children import ChildWaitSpec
from durable_server.engine.inputs import check_answer, check_spec
from durable_server.engine.states import (
    ACTIVE_STATUS_VALUES,
    TERMINAL_STATUSES,
    ExecutionStatus,
)
from durable_server.engine.transitions import StepError
from durable_server.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from durable_server.ids import child_execution_id
from durable_server.store import events as event_store
from durable_server.store import executions as ex_store
from durable_server.store import tasks as task_store
from durable_server.store import waits as wait_store
from durable_server.store.db import Conn
from durable_server.store.rows import LeasedTask, WaitRow
from durable_server.store.waits import NewWait

__all__ = [
    "EventWaitSpec",
    "InputWaitSpec",
    "SleepSpec",
    "WaitSpec",
    "ok",
    "park",
    "provide_input",
    "send_event",
    "timed_out",
]


@dataclass(frozen=True)
class SleepSpec:
    """Sleep for ``duration_secs``, or until ``until``."""

    index: int
    duration_secs: float | None
    until: datetime | None
    # A sleep ends by itself: it has no timeout, so no value to return on one.
    timeout_value_json: ClassVar[None] = None


@dataclass(frozen=True)
class EventWaitSpec:
    """Wait for events: ``mode`` is "one", "any" or "all"."""

    index: int
    names: tuple[str, ...]
    mode: str
    timeout_secs: float | None
    timeout_value_json: str | None


@dataclass(frozen=True)
class InputWaitSpec:
    """Wait for a person's answer to the input ``name``; ``spec`` is what is asked."""

    index: int
    name: str
    spec_json: str
    timeout_secs: float | None
    timeout_value_json: str | None


WaitSpec = ChildWaitSpec | SleepSpec | EventWaitSpec | InputWaitSpec


def ok(value_json: str) -> str:
    """The outcome of a wait that returns ``value_json``."""
    return f'{{"ok": true, "value": {value_json}}}'


def timeout_value(value_json: str | None) -> str | None:
    """The outcome a wait records on timeout, when it has a timeout value."""
    if value_json is None:
        return None
    return f'{{"ok": true, "value": {value_json}, "timed_out": true}}'


def _error(type_: str, message: str, **extra: object) -> str:
    return json.dumps({"ok": False, "error": {"type": type_, "message": message, **extra}})


def timed_out(wait: WaitRow) -> str:
    """The outcome of a wait whose deadline passed: its timeout value, or an error."""
    if wait.timeout_value_json is not None:
        return wait.timeout_value_json
    if wait.kind == "child":
        return _error(
            "ChildTimeout",
            f"child execution {wait.child_id} did not finish in time; it was cancelled",
            execution_id=wait.child_id,
        )
    what = "events" if wait.kind == "event" else "the input"
    return _error(
        "EventTimeout" if wait.kind == "event" else "InputTimeout",
        f"{what} did not arrive before the wait's timeout",
    )


def _object(pairs: dict[str, str]) -> str:
    """A JSON object of already-encoded values."""
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in sorted(pairs.items())) + "}"


def _event_value(mode: str, name: str, payload_json: str) -> str:
    if mode == "any":
        return f'{{"event": {json.dumps(name)}, "payload": {payload_json}}}'
    return payload_json


async def _lock_active(conn: Conn, execution_id: str, what: str) -> ExecutionStatus:
    return _active(execution_id, await _lock(conn, execution_id), what)


async def _lock(conn: Conn, execution_id: str) -> ExecutionStatus:
    """The execution's status, its row locked until the transaction ends; NOT_FOUND if none."""
    status = await ex_store.execution_status_get(conn, execution_id=execution_id)
    if status is None:
        raise NotFoundError(f"execution {execution_id} does not exist")
    return ExecutionStatus(status)


def _active(execution_id: str, status: ExecutionStatus, what: str) -> ExecutionStatus:
    if status in TERMINAL_STATUSES:
        raise FailedPreconditionError(
            f"execution {execution_id} is {status}: {what} pending, running or waiting executions"
        )
    return status


async def park(
    conn: Conn,
    applier: Applier,
    clock: Clock,
    task: LeasedTask,
    wait: WaitSpec,
) -> StepError | None:
    """Suspend ``task`` on ``wait`` (or wake it at once if the wait is over already).

    Returns the error that fails the step instead, if the wait cannot be made.
    """
    now = clock.db_now()
    await task_store.task_suspend(conn, task_id=task.id)
    new: NewWait
    if isinstance(wait, ChildWaitSpec):
        child_id = child_execution_id(task.execution_id, task.sequence, wait.index)
        outcomes = await wait_store.wait_child_outcomes(
            conn, child_ids=[child_id], active=ACTIVE_STATUS_VALUES
        )
        if child_id not in outcomes:
            message = (
                f"step {task.step_name!r} waits for child {wait.index}, which it never started"
            )
            await applier.wake([(task.id, wait.index, _error("ChildWorkflowMissing", message))])
            return None
        ended = outcomes[child_id]
        if ended is not None:
            await applier.wake([(task.id, wait.index, ended)])
            return None
        value = wait.timeout_value_json
        new = NewWait(
            task.execution_id,
            task.id,
            wait.index,
            "child",
            child_id=child_id,
            timeout_value_json=timeout_value(value),
            timeout_secs=wait.timeout_secs,
        )
    elif isinstance(wait, SleepSpec):
        due = wait.until or clock.now() + timedelta(seconds=wait.duration_secs or 0)
        if due <= clock.now():
            await applier.wake([(task.id, wait.index, ok("null"))])
            return None
        new = NewWait(
            task.execution_id,
            task.id,
            wait.index,
            "sleep",
            timeout_value_json=ok("null"),
            timeout_secs=wait.duration_secs if wait.until is None else None,
            until=wait.until,
        )
    elif isinstance(wait, EventWaitSpec):
        await _lock_active(conn, task.execution_id, "events can only be awaited by")
        names = list(wait.names)
        received: dict[str, str] = {}
        if wait.mode == "all":
            received = await event_store.event_take_each(
                conn, execution_id=task.execution_id, names=names
            )
            if set(received) == set(names):
                await applier.wake([(task.id, wait.index, ok(_object(received)))])
                return None
        else:
            kept = await event_store.event_take_oldest(
                conn, execution_id=task.execution_id, names=names
            )
            if kept is not None:
                value = _event_value(wait.mode, *kept)
                await applier.wake([(task.id, wait.index, ok(value))])
                return None
        value = wait.timeout_value_json
        new = NewWait(
            task.execution_id,
            task.id,
            wait.index,
            "event",
            timeout_value_json=timeout_value(value),
            timeout_secs=wait.timeout_secs,
            event_names=names,
            mode=wait.mode,
            received_json=_object(received) if received else None,
        )
    else:
        problem = check_spec(json.loads(wait.spec_json))
        if problem is not None:
            return StepError("InvalidInputRequest", problem, non_retryable=True)
        taken = await wait_store.wait_input_lock(
            conn, execution_id=task.execution_id, name=wait.name
        )
        if taken is not None:
            return StepError(
                "DuplicateInput",
                f"execution {task.execution_id} already waits for an input named {wait.name!r}",
                non_retryable=True,
            )
        value = wait.timeout_value_json
        new = NewWait(
            task.execution_id,
            task.id,
            wait.index,
            "input",
            timeout_value_json=timeout_value(value),
            timeout_secs=wait.timeout_secs,
            input_name=wait.name,
            input_spec_json=wait.spec_json,
        )
    _, deadline = await wait_store.wait_insert(conn, new, now=now)
    if deadline is not None:
        applier.timers_added = True
    await ex_store.execution_waiting_mark(conn, execution_id=task.execution_id)
    return None


@dataclass(frozen=True)
class EventSent:
    """What became of a sent event."""

    delivered: bool  # a waiting step took it (else it is kept for a later wait)
    duplicate: bool = False  # an earlier send had its event id: nothing was done


async def send_event(
    conn: Conn,
    applier: Applier,
    execution_id: str,
    name: str,
    payload_json: str,
    event_id: str | None = None,
) -> EventSent:
    """Deliver an event to the wait that takes it, or keep it.

    With an ``event_id`` the execution remembers the send, and a later send with the
    same id answers as the first did without doing anything, even once the execution
    has finished (the first send may have been what finished it).
    """
    # The execution's row lock serialises sends, so of two with one id the second sees
    # the first's receipt.
    status = await _lock(conn, execution_id)
    if event_id is not None:
        first = await event_store.event_receipt_get(
            conn, execution_id=execution_id, event_id=event_id
        )
        if first is not None:
            return EventSent(delivered=first, duplicate=True)
    _active(execution_id, status, "events can only be sent to")
    delivered = await _deliver_event(conn, applier, execution_id, name, payload_json)
    if event_id is not None:
        await event_store.event_receipt_insert(
            conn,
            execution_id=execution_id,
            event_id=event_id,
            delivered=delivered,
            now=applier.now,
        )
    return EventSent(delivered=delivered)


async def _deliver_event(
    conn: Conn, applier: Applier, execution_id: str, name: str, payload_json: str
) -> bool:
    wait = await wait_store.wait_event_lock(conn, execution_id=execution_id, name=name)
    if wait is None:
        await event_store.event_insert(
            conn, execution_id=execution_id, name=name, payload_json=payload_json, now=applier.now
        )
        return False
    if wait.mode != "all":
        await wait_store.wait_take(conn, wait_id=wait.id)
        value = _event_value(wait.mode, name, payload_json)
        await applier.wake([(wait.task_id, wait.wait_index, ok(value))])
        return True
    received = await wait_store.wait_received_add(
        conn, wait_id=wait.id, name=name, payload_json=payload_json
    )
    if set(json.loads(received)) >= set(wait.event_names):
        await wait_store.wait_take(conn, wait_id=wait.id)
        await applier.wake([(wait.task_id, wait.wait_index, ok(received))])
    return True


async def provide_input(
    conn: Conn, applier: Applier, execution_id: str, name: str, value_json: str
) -> None:
    """Answer a pending input, if the answer fits what it asks."""
    await _lock_active(conn, execution_id, "inputs can only be provided to")
    found = await wait_store.wait_input_lock(conn, execution_id=execution_id, name=name)
    if found is None:
        pending = await wait_store.wait_input_names(conn, execution_id=execution_id)
        raise FailedPreconditionError(
            f"execution {execution_id} has no pending input named {name!r} "
            f"(pending: {', '.join(map(repr, pending)) or 'none'})"
        )
    wait_id, task_id, index, spec_json = found
    try:
        value = json.loads(value_json)
    except ValueError as exc:
        raise InvalidArgumentError(f"value_json is not valid JSON: {exc}") from exc
    check_answer(name, json.loads(spec_json), value)
    await wait_store.wait_take(conn, wait_id=wait_id)
    await applier.wake([(task_id, index, ok(value_json))])
