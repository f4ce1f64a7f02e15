"""The store's types: the connection protocol matches asyncpg; batch rows match their SQL."""

from __future__ import annotations

import inspect
import re
from typing import Any, Protocol

import asyncpg
import asyncpg.pool
import pytest

from durable_server.store import executions as ex_store
from durable_server.store import step_attempts as attempt_store
from durable_server.store import tasks as task_store
from durable_server.store.db import Conn, Record
from durable_server.store.queries import QUERIES

# -- the connection --------------------------------------------------------------------


def _members(protocol: type) -> list[str]:
    return sorted(
        name
        for name, value in vars(protocol).items()
        if callable(value) and (not name.startswith("_") or name == "__getitem__")
        if name not in vars(Protocol)
    )


def test_conn_and_record_are_protocols_not_any() -> None:
    for protocol in (Conn, Record):
        assert protocol is not Any
        assert Protocol in protocol.__mro__
    assert _members(Conn) == ["execute", "fetch", "fetchrow", "fetchval", "transaction"]
    assert _members(Record) == ["__getitem__", "get"]


@pytest.mark.parametrize("impl", [asyncpg.Connection, asyncpg.pool.PoolConnectionProxy])
@pytest.mark.parametrize("name", _members(Conn))
def test_an_asyncpg_connection_takes_every_call_of_the_protocol(impl: type, name: str) -> None:
    """Each protocol method exists on asyncpg's class and binds the same arguments."""
    ours = inspect.signature(getattr(Conn, name))
    theirs = inspect.signature(getattr(impl, name))
    args: tuple[object, ...] = ("SELECT $1, $2", 1, 2) if "query" in ours.parameters else ()
    ours.bind(None, *args)
    theirs.bind(None, *args)  # raises TypeError when asyncpg would refuse the call


def test_an_asyncpg_record_has_what_the_protocol_names() -> None:
    for name in _members(Record):
        assert callable(getattr(asyncpg.Record, name)), name


# -- batch rows: their fields, in order, are the columns their statement unnests ----------

# Where a field's name says its type (``…_json``), the column drops the suffix.
_COLUMN = {"input_json": "input", "result_json": "result", "error_json": "error"}


def _unnested_columns(query: str) -> list[str]:
    match = re.search(r"unnest\(.*?\)\s+AS x\(([^)]*)\)", QUERIES[query], re.DOTALL)
    assert match, f"{query} unnests no x(...) columns"
    return [c.strip() for c in match.group(1).split(",")]


@pytest.mark.parametrize(
    ("row", "query"),
    [
        (task_store.NewTask, "task_insert_many"),
        (attempt_store.NewAttempt, "step_attempt_insert_many"),
    ],
)
def test_a_batch_row_lists_its_statements_columns_in_order(row: Any, query: str) -> None:
    assert [_COLUMN.get(f, f) for f in row._fields] == _unnested_columns(query)


@pytest.mark.parametrize(
    "row", [task_store.NewTask, attempt_store.NewAttempt, task_store.TaskRetry]
)
def test_batch_rows_are_immutable(row: Any) -> None:
    instance = row(*range(len(row._fields)))
    with pytest.raises(AttributeError):
        instance.lease = True
    assert ex_store.ExecutionFinish("id", "completed").error_json is None
