"""The task transition table, the SQL that moves statuses, and the diagrams in docs/states.md.

The SQL takes unfinished statuses as a parameter where it can. Where it keeps a literal (a
partial index's predicate cannot match a parameter; the single-status guards of the hot
task queries sit on partial indexes too), the literals are checked here against the
tables in ``engine/states.py``: every literal move ``UPDATE … SET status = 'to' WHERE …
status = 'from'`` is an allowed transition, and every list of statuses is the table's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path

import pytest

from durable_server.engine.states import (
    ACTIVE_STATUS_VALUES,
    ACTIVE_STATUSES,
    EXECUTION_TRANSITIONS,
    TASK_INITIAL_STATUSES,
    TASK_TRANSITIONS,
    TERMINAL_STATUSES,
    ExecutionStatus,
    TaskStatus,
    can_task_transition,
)

T = TaskStatus
DOC = Path(__file__).resolve().parents[2] / "docs" / "states.md"

# Written out by hand so that an edit of the table has to be made twice, on purpose.
EXPECTED_TASK_MOVES = {
    (T.READY, T.LEASED),
    (T.LEASED, T.READY),
    (T.LEASED, T.WAITING),
    (T.WAITING, T.READY),
}

TASK_PAIRS = list(itertools.product(TaskStatus, TaskStatus))


def test_every_task_status_has_a_row() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskStatus)
    assert {T.READY, T.LEASED} == TASK_INITIAL_STATUSES


@pytest.mark.parametrize(("current", "new"), TASK_PAIRS, ids=[f"{a}->{b}" for a, b in TASK_PAIRS])
def test_can_task_transition_matches_the_table(current: TaskStatus, new: TaskStatus) -> None:
    assert can_task_transition(current, new) is ((current, new) in EXPECTED_TASK_MOVES)


def test_active_status_values_are_the_table_s() -> None:
    assert sorted(s.value for s in ACTIVE_STATUSES) == ACTIVE_STATUS_VALUES


# -- the SQL -------------------------------------------------------------------------------


def _queries() -> dict[str, str]:
    """Every named query's text (migrations excluded), by name."""
    folder = resources.files("durable_server.store") / "sql"
    out: dict[str, str] = {}
    for f in sorted(folder.iterdir(), key=lambda f: f.name):
        if not f.name.endswith(".sql") or f.name == "schema.sql":
            continue
        for part in f.read_text(encoding="utf-8").split("-- name: ")[1:]:
            name, _, body = part.partition("\n")
            out[name.strip()] = body
    return out


UPDATE = re.compile(r"UPDATE\s+(\w+)(?:\s+(\w+))?\s+SET\b")
SET_STATUS = re.compile(r"(?<![.\w])status\s*=\s*'(\w+)'")
STATEMENT_END = re.compile(r"\bRETURNING\b|;|\bUPDATE\b|\n\)|\Z")

# Moves whose guard is not in the UPDATE itself: (from, to), and why that is safe.
UNGUARDED = {
    # The CTE it updates from locks ready rows only.
    "task_claim_many": ("tasks", "ready", "leased"),
    # Its rows were locked as leased before (task_lock_leased_many, task_lock_expired_many).
    "task_requeue_many": ("tasks", "leased", "ready"),
}


def literal_moves() -> set[tuple[str, str | None, str, str]]:
    """``(table, from, to, query)`` for each UPDATE setting a literal status.

    ``from`` is the literal status its WHERE requires of the updated row; None if none.
    """
    moves: set[tuple[str, str | None, str, str]] = set()
    for name, body in _queries().items():
        for match in UPDATE.finditer(body):
            table, alias = match[1], match[2] or ""
            if alias == "SET":
                alias = ""
            end = STATEMENT_END.search(body, match.end())
            assert end is not None
            statement = body[match.end() : end.start()]
            assignments, _, where = statement.partition("WHERE")
            assignments = assignments.split("FROM")[0]
            new = SET_STATUS.search(assignments)
            if new is None:
                continue  # a status from a parameter (guarded by allowed_from)
            prefix = rf"{alias}\." if alias else ""
            guard = re.compile(rf"(?<![\w.])\(?{prefix}status(?:\s*\|\|\s*'')?\)?\s*=\s*'(\w+)'")
            olds = [found[1] for found in guard.finditer(where)]
            if not olds and not re.search(rf"{prefix}status\s*=\s*ANY", where):
                moves.add((table, None, new[1], name))
            moves |= {(table, old, new[1], name) for old in olds}
    return moves


def test_the_literal_moves_in_sql_are_allowed() -> None:
    tables: Mapping[str, tuple[type[StrEnum], Mapping[StrEnum, frozenset[StrEnum]]]] = {
        "executions": (ExecutionStatus, EXECUTION_TRANSITIONS),  # type: ignore[dict-item]
        "tasks": (TaskStatus, TASK_TRANSITIONS),  # type: ignore[dict-item]
    }
    seen = set()
    for table, old, new, name in literal_moves():
        if table not in tables:
            continue  # lanes: a group's bookkeeping, not a state machine of its own
        if old is None:
            assert UNGUARDED.get(name, ("", "", ""))[::2] == (table, new), (
                f"{name} sets {table}.status = {new!r} without a status guard"
            )
            old = UNGUARDED[name][1]
        enum, transitions = tables[table]
        assert enum(new) in transitions[enum(old)], f"{name}: {table} {old} -> {new}"
        seen.add((table, old, new))
    assert re.search(r"WHERE t\.status = 'ready'", _queries()["task_claim_many"])
    # What the SQL moves literally (the rest goes through allowed_from parameters); the
    # task table is entirely literal: each of its moves is made by some query.
    assert {(old, new) for table, old, new in seen if table == "executions"} == {
        ("pending", "running"),
        ("running", "waiting"),
        ("waiting", "running"),
    }
    task_moves = {(T(old), T(new)) for table, old, new in seen if table == "tasks"}
    assert task_moves == {(a, b) for a, nxt in TASK_TRANSITIONS.items() for b in nxt}


def _status_lists(text: str) -> list[set[str]]:
    return [
        set(re.findall(r"'(\w+)'", found))
        for found in re.findall(r"status\s+IN\s*\(([^)]*)\)", text, flags=re.IGNORECASE)
    ]


def test_the_literal_status_lists_in_sql_are_the_tables() -> None:
    active = {s.value for s in ACTIVE_STATUSES}
    terminal = {s.value for s in TERMINAL_STATUSES}
    tasks = {s.value for s in TaskStatus}
    for name, body in _queries().items():
        for values in _status_lists(body):
            if values <= tasks:
                continue
            assert values in (active, terminal), f"{name} lists {sorted(values)}"


def test_the_active_index_and_the_query_using_it_list_the_active_statuses() -> None:
    folder = resources.files("durable_server.store") / "migrations"
    migrations = "\n".join(
        f.read_text(encoding="utf-8")
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".sql")
    )
    created = re.findall(
        r"CREATE INDEX executions_active_status ON executions \(status\)\s+WHERE ([^;]*);",
        migrations,
    )
    active = {s.value for s in ACTIVE_STATUSES}
    assert _status_lists(created[-1]) == [active]  # the latest definition of the index
    # A partial index is used only when the query repeats its predicate: a literal list.
    assert _status_lists(_queries()["execution_stuck_list"]) == [active]


# -- the diagrams --------------------------------------------------------------------------


def mermaid(
    transitions: Mapping[StrEnum, frozenset[StrEnum]],
    initial: frozenset[StrEnum],
    final: frozenset[StrEnum],
    *,
    final_label: str = "",
) -> str:
    """A Mermaid ``stateDiagram-v2`` of a transition table, in declaration order."""
    lines = ["stateDiagram-v2"]
    order = list(transitions)
    lines += [f"    [*] --> {s.value}" for s in order if s in initial]
    for old in order:
        lines += [f"    {old.value} --> {new.value}" for new in order if new in transitions[old]]
    label = f" : {final_label}" if final_label else ""
    lines += [f"    {s.value} --> [*]{label}" for s in order if s in final]
    return "\n".join(lines)


EXECUTION_DIAGRAM = mermaid(
    EXECUTION_TRANSITIONS,  # type: ignore[arg-type]
    frozenset({ExecutionStatus.PENDING}),
    TERMINAL_STATUSES,
)
TASK_DIAGRAM = mermaid(
    TASK_TRANSITIONS,  # type: ignore[arg-type]
    TASK_INITIAL_STATUSES,
    frozenset(TaskStatus),
    final_label="deleted",
)


@pytest.mark.parametrize("diagram", [EXECUTION_DIAGRAM, TASK_DIAGRAM], ids=["execution", "task"])
def test_the_docs_draw_the_tables(diagram: str) -> None:
    blocks = re.findall(r"```mermaid\n(.*?)\n```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert diagram in blocks, (
        f"docs/states.md does not draw the table; replace its diagram with:\n{diagram}"
    )
