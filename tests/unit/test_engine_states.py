"""The state machine's tables, and the three places statuses are spelled (Python, SQL, proto)."""

from __future__ import annotations

import itertools
import re
from importlib import resources
from typing import Any

import pytest

from durable.v1 import common_pb2
from durable_server.engine.states import (
    ACTIVE_STATUSES,
    EXECUTION_TRANSITIONS,
    TERMINAL_STATUSES,
    ExecutionStatus,
    StepAttemptStatus,
    TaskStatus,
    allowed_from,
    can_transition,
)

E = ExecutionStatus
ALL_PAIRS = list(itertools.product(ExecutionStatus, ExecutionStatus))

# Written out by hand so that an edit of the table has to be made twice, on purpose.
EXPECTED_ALLOWED = {
    (E.PENDING, E.RUNNING),
    (E.PENDING, E.CANCELLED),
    (E.PENDING, E.TIMED_OUT),
    (E.PENDING, E.FAILED),
    (E.RUNNING, E.WAITING),
    (E.RUNNING, E.COMPLETED),
    (E.RUNNING, E.FAILED),
    (E.RUNNING, E.CANCELLED),
    (E.RUNNING, E.TIMED_OUT),
    (E.WAITING, E.RUNNING),
    (E.WAITING, E.CANCELLED),
    (E.WAITING, E.TIMED_OUT),
    (E.WAITING, E.FAILED),
    (E.RUNNING, E.COMPENSATING),
    (E.WAITING, E.COMPENSATING),
    (E.COMPENSATING, E.COMPENSATED),
    (E.COMPENSATING, E.COMPENSATION_FAILED),
    (E.COMPENSATING, E.CANCELLED),
    (E.COMPENSATING, E.TIMED_OUT),
}


def _migration_sql() -> str:
    """Every migration, in order."""
    folder = resources.files("durable_server.store") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def _check_values(table: str, column: str) -> set[str]:
    """The values of ``column``'s ``CHECK (column IN (...))`` in ``CREATE TABLE table``."""
    sql = _migration_sql()
    body = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.DOTALL)
    assert body is not None, f"no CREATE TABLE {table} in 0001_initial.sql"
    check = re.search(rf"\b{column}\b[^,]*?CHECK \({column} IN\s*\(([^)]*)\)\)", body[1], re.DOTALL)
    assert check is not None, f"no CHECK on {table}.{column}"
    # A later migration may replace the constraint; the last one wins.
    replaced = re.findall(
        rf"ALTER TABLE {table} ADD CONSTRAINT \w+\s+CHECK \({column} IN\s*\(([^)]*)\)\)", sql
    )
    values = re.findall(r"'([^']*)'", replaced[-1] if replaced else check[1])
    assert values, f"CHECK on {table}.{column} lists no values"
    return set(values)


def _proto_names(enum: Any, prefix: str) -> set[str]:
    names = {v.name for v in enum.DESCRIPTOR.values if v.name != prefix + "UNSPECIFIED"}
    assert all(n.startswith(prefix) for n in names)
    return {n.removeprefix(prefix).lower() for n in names}


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(EXECUTION_TRANSITIONS) == set(ExecutionStatus)


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_can_transition_matches_the_table(current: ExecutionStatus, new: ExecutionStatus) -> None:
    assert can_transition(current, new) is (new in EXECUTION_TRANSITIONS[current])
    assert can_transition(current, new) is ((current, new) in EXPECTED_ALLOWED)
    if current in TERMINAL_STATUSES:
        assert not can_transition(current, new)
    # The SQL guard of a move to ``new`` lets ``current`` through exactly when Python does.
    assert (current.value in allowed_from(new)) is can_transition(current, new)


def test_terminal_and_active_statuses() -> None:
    assert {
        E.COMPLETED,
        E.FAILED,
        E.CANCELLED,
        E.TIMED_OUT,
        E.COMPENSATED,
        E.COMPENSATION_FAILED,
    } == TERMINAL_STATUSES
    assert {E.PENDING, E.RUNNING, E.WAITING, E.COMPENSATING} == ACTIVE_STATUSES
    for status in TERMINAL_STATUSES:
        assert EXECUTION_TRANSITIONS[status] == frozenset()


def test_no_status_moves_to_itself_or_back_to_pending() -> None:
    for status in ExecutionStatus:
        assert not can_transition(status, status)
        assert not can_transition(status, E.PENDING)


def test_allowed_from_is_sorted_values() -> None:
    assert allowed_from(E.CANCELLED) == ["compensating", "pending", "running", "waiting"]
    assert allowed_from(E.COMPLETED) == ["running"]
    assert allowed_from(E.PENDING) == []


def test_execution_status_matches_the_sql_check() -> None:
    assert {s.value for s in ExecutionStatus} == _check_values("executions", "status")


def test_execution_status_matches_the_proto_enum() -> None:
    assert {s.value for s in ExecutionStatus} == _proto_names(
        common_pb2.ExecutionStatus, "EXECUTION_STATUS_"
    )


def test_step_attempt_status_matches_the_sql_check_plus_running() -> None:
    # ``running`` and ``waiting`` are tasks (leased, suspended), shown as attempts but never
    # stored as rows.
    stored = _check_values("step_attempts", "status")
    assert "running" not in stored
    assert {s.value for s in StepAttemptStatus} == stored | {"running", "waiting"}


def test_step_attempt_status_matches_the_proto_enum() -> None:
    assert {s.value for s in StepAttemptStatus} == _proto_names(
        common_pb2.StepAttemptStatus, "STEP_ATTEMPT_STATUS_"
    )


def test_task_status_matches_the_sql_check() -> None:
    assert {s.value for s in TaskStatus} == _check_values("tasks", "status")
