"""Read paths: one execution with its attempts, and filtered pages of executions."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from durable_server.clock import Clock, SystemClock
from durable_server.engine.logs import LogEntry, entries_from_row
from durable_server.errors import InvalidArgumentError, NotFoundError
from durable_server.store import events as event_store
from durable_server.store import executions as ex_store
from durable_server.store import step_attempts as attempt_store
from durable_server.store import step_logs as log_store
from durable_server.store import tasks as task_store
from durable_server.store import waits as wait_store
from durable_server.store import workers as worker_store
from durable_server.store.db import Database
from durable_server.store.executions import ExecutionFilter
from durable_server.store.rows import ExecutionRow, RunningStep, StepAttemptRow

__all__ = ["ExecutionDetail", "ExecutionPage", "Reads", "decode_page_token", "encode_page_token"]


@dataclass(frozen=True)
class ExecutionDetail:
    """An execution with its recorded attempts and the ones running now."""

    execution: ExecutionRow
    attempts: list[StepAttemptRow]
    running: list[RunningStep]
    events: list[tuple[str, str, datetime]] = field(default_factory=list)
    logs: dict[tuple[int, int], list[LogEntry]] = field(default_factory=dict)
    """(sequence, attempt) -> the attempt's captured lines (with ``include_logs``)."""


@dataclass(frozen=True)
class ExecutionPage:
    """One page of executions."""

    executions: list[ExecutionRow]
    next_page_token: str
    total_count: int


def encode_page_token(row: ExecutionRow) -> str:
    """An opaque cursor after ``row`` (its created_at and id)."""
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[datetime, str]:
    """The (created_at, id) cursor in ``token``; InvalidArgumentError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, _, execution_id = raw.partition("|")
        return datetime.fromisoformat(created), str(uuid.UUID(execution_id))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(
            "page_token is not valid: pass next_page_token from a previous response"
        ) from exc


def encode_id_token(last_id: int) -> str:
    """An opaque cursor after the row with id ``last_id``."""
    return base64.urlsafe_b64encode(f"id|{last_id}".encode()).decode().rstrip("=")


def decode_id_token(token: str) -> int:
    """The id in a token from :func:`encode_id_token`; InvalidArgumentError if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        tag, _, value = raw.partition("|")
        if tag != "id":
            raise ValueError(tag)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(
            "page_token is not valid: pass next_page_token from a previous response"
        ) from exc


class Reads:
    """Queries that change nothing."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or SystemClock()

    def now(self) -> datetime | None:
        """The time SQL compares with (None: the database's clock)."""
        return self.clock.db_now()

    async def get_execution(
        self, execution_id: str, *, include_steps: bool, include_logs: bool = False
    ) -> ExecutionDetail:
        """One execution; NotFoundError if it does not exist.

        ``include_logs`` (with ``include_steps``) also reads the attempts' captured logs.
        """
        async with self.db.connection() as conn:
            row = await ex_store.execution_get(conn, execution_id=execution_id)
            if row is None:
                raise NotFoundError(f"execution {execution_id} does not exist")
            if not include_steps:
                return ExecutionDetail(row, [], [])
            attempts = await attempt_store.step_attempt_list(conn, execution_id=execution_id)
            running = await task_store.task_running_for_execution(conn, execution_id=execution_id)
            events = await event_store.event_list_for_execution(conn, execution_id=execution_id)
            logs = (
                {
                    (r.sequence, r.attempt): entries_from_row(r)
                    for r in await log_store.step_log_list(conn, execution_id=execution_id)
                }
                if include_logs
                else {}
            )
        return ExecutionDetail(row, attempts, running, events, logs)

    async def list_workers(self, *, queue: str | None, seen_within_secs: float | None) -> list[Any]:
        """Registered workers (records), most recently seen first."""
        async with self.db.connection() as conn:
            return await worker_store.worker_list(
                conn, queue=queue, seen_within_secs=seen_within_secs, now=self.now()
            )

    async def execution_waits(self, execution_id: str) -> list[Any]:
        """What an execution's suspended steps wait for now (records), oldest first."""
        async with self.db.connection() as conn:
            return await wait_store.wait_list_for_execution(conn, execution_id=execution_id)

    async def list_waits(
        self,
        kind: str,
        *,
        execution_id: str | None,
        workflow_name: str | None,
        name: str | None,
        page_size: int,
        page_token: str,
    ) -> tuple[list[Any], str]:
        """A page of pending inputs (``kind`` "input") or event waits ("event"), oldest first."""
        after = decode_id_token(page_token) if page_token else 0
        query = wait_store.wait_list_inputs if kind == "input" else wait_store.wait_list_events
        async with self.db.connection() as conn:
            rows = await query(
                conn,
                after_id=after,
                execution_id=execution_id,
                workflow_name=workflow_name,
                name=name,
                limit=page_size + 1,
            )
        more = len(rows) > page_size
        rows = rows[:page_size]
        return rows, (encode_id_token(rows[-1]["id"]) if more and rows else "")

    async def list_executions(
        self, flt: ExecutionFilter, *, page_size: int, page_token: str
    ) -> ExecutionPage:
        """A page of executions, newest first, and the total matching ``flt``."""
        after = decode_page_token(page_token) if page_token else None
        async with self.db.connection() as conn:
            rows = await ex_store.execution_list(conn, flt, after=after, limit=page_size + 1)
            total = await ex_store.execution_count(conn, flt)
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = encode_page_token(rows[-1]) if more and rows else ""
        return ExecutionPage(rows, token, total)
