"""Test your workflows against a real orchestrator, on a clock you move yourself.

:class:`WorkflowTestEnv` starts, in your test's event loop, an orchestrator (on a fresh
schema of a PostgreSQL database), a worker running your workflows and a
:class:`~durable.Client`. Time is a manual clock: a step that sleeps for a day, an input
that times out after three days, a retry backed off for an hour all wait until the test
moves the clock (:meth:`~WorkflowTestEnv.advance`,
:meth:`~WorkflowTestEnv.skip_to_next_timer`), and then take no real time at all::

    from datetime import timedelta

    from durable.testing import WorkflowTestEnv

    async def test_expense_is_refused_without_an_answer() -> None:
        async with WorkflowTestEnv([expenses]) as env:
            run = await env.start(expenses, {"who": "ann", "amount": 30})
            await run.until_suspended()  # the step waits for the manager's approval
            await env.skip_to_next_timer()  # three days later: the input times out
            execution = await run.result()
            assert execution.result == {"who": "ann", "amount": 30, "approved": False}

The database: ``database_url``, else ``$DURABLE_TEST_DATABASE_URL``, else an embedded
PostgreSQL (slow the first time: it runs ``initdb``). Each environment works in a
schema of its own (``durable_test_<hex>``), dropped when it closes, so tests may run side
by side on one database.

**An optional part of the SDK**: it needs the orchestrator and the worker, the
``durable-server`` and ``durable-worker`` packages, installed next to ``durable``
(``pip install durable[testing]``). This module imports without them; creating a
:class:`WorkflowTestEnv` without them raises ImportError, naming what to install.

What "suspended" means here: nothing of the execution (or of the children it started)
can run at the clock's current time. No step is running, none is ready to run, and no
timer is due; every step left is waiting for something: time, an event, a person's
input, a child workflow or a retry's backoff. :meth:`WorkflowRun.until_suspended` and
every method that moves the clock wait (in real time, up to ``settle_timeout``) for that
state, so what a test sees after them is deterministic.

Cron schedules (declared with a workflow or created with the client) are timers of the
manual clock like the others: :meth:`~WorkflowTestEnv.next_timer` includes their next
slot, and a move of the clock fires the slots it reaches and returns once their runs
exist and have run to their next suspension. A move past several slots of one schedule
fires them as the orchestrator does after an outage, by the schedule's ``catch_up``
policy (``once``: one run, for the latest slot); move slot by slot
(:meth:`~WorkflowTestEnv.skip_to_next_timer`) to run each.

Workers read the real clock, the orchestrator the manual one: ``ctx.sleep_until(when)``
returns at once in the worker when ``when`` is in the real past. Keep the manual clock
at or after the real time (the default ``start`` is now) when steps sleep until fixed
times computed from the real clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from durable._client import Client
from durable._dsl import Workflow
from durable._models import Execution, StepAttempt

if TYPE_CHECKING:
    from durable_server.app import Orchestrator
    from durable_server.engine.clock_control import ClockControl
    from durable_worker import Worker

__all__ = [
    "DATABASE_URL_ENV",
    "NotSettledError",
    "PendingWait",
    "WaitKind",
    "WorkflowRun",
    "WorkflowSuspendedError",
    "WorkflowTestEnv",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_URL_ENV: Final = "DURABLE_TEST_DATABASE_URL"
"""The variable naming the database to test on when no ``database_url`` is given."""

_POLL_INTERVAL: Final = 0.01
"""Seconds between two looks at the database while waiting for work to settle."""

_SHOWN: Final = 10
"""At most this many running things or waits are named in an error."""

WaitKind = Literal["sleep", "event", "input", "child", "retry", "start"]
"""What a step (or an execution) is waiting for; see :class:`PendingWait`."""


class WorkflowSuspendedError(Exception):
    """The execution is suspended, and nothing due on the clock will resume it.

    Raised by :meth:`WorkflowRun.result` when the execution has not finished but nothing
    can run: it waits for an event, an input, or (without ``skip_timers``) for time.

    Attributes:
        execution: The execution as it is now, with its steps.
        waits: What it waits for.
    """

    def __init__(self, message: str, execution: Execution, waits: Sequence[PendingWait]) -> None:
        super().__init__(message)
        self.execution = execution
        self.waits = tuple(waits)


class NotSettledError(TimeoutError):
    """Steps were still running (or ready to run) when the real-time deadline passed.

    A step that never returns, a step on a queue no worker of the environment polls,
    or a workflow that loops without waiting keeps an environment busy.
    """


@dataclass(frozen=True)
class PendingWait:
    """One thing an execution waits for.

    Attributes:
        execution_id: The waiting execution (a child's, when a child waits).
        step_name: The waiting step (``""`` for a scheduled start).
        kind: ``"sleep"``, ``"event"`` (``ctx.wait_for_event``/``any``/``all``),
            ``"input"`` (``ctx.wait_for_input``), ``"child"`` (``ctx.call_workflow``),
            ``"retry"`` (a failed step backing off) or ``"start"`` (a start scheduled
            for later).
        names: The events waited for, or the input's name.
        mode: For an event wait: ``"one"``, ``"any"`` or ``"all"``; else ``""``.
        received: For an ``"all"`` event wait: the events that came already.
        due_at: When it ends on its own: the sleep's end, the wait's timeout, the retry
            or the start; ``None`` when it waits as long as it takes.
        child_execution_id: For a child wait: the child's id; else ``""``.
    """

    execution_id: str
    step_name: str
    kind: WaitKind
    names: tuple[str, ...] = ()
    mode: str = ""
    received: tuple[str, ...] = ()
    due_at: datetime | None = None
    child_execution_id: str = ""

    def describe(self) -> str:
        """The wait in words, e.g. ``step 'approve' waits for input 'manager_approval'``."""
        due = self.due_at.isoformat() if self.due_at else ""
        step = f"step {self.step_name!r}"
        if self.kind == "sleep":
            return f"{step} sleeps until {due}"
        if self.kind == "retry":
            return f"{step} is retried at {due}"
        if self.kind == "start":
            return f"the execution starts at {due}"
        if self.kind == "event":
            names = ", ".join(repr(n) for n in self.names)
            what = {
                "any": f"any of the events {names}",
                "all": f"all of the events {names}",
            }.get(self.mode, f"the event {names}")
            text = f"{step} waits for {what}"
            if self.received:
                text += " (received: " + ", ".join(repr(n) for n in self.received) + ")"
        elif self.kind == "input":
            text = f"{step} waits for the input {self.names[0] if self.names else ''!r}"
        else:
            text = f"{step} waits for the child execution {self.child_execution_id}"
        return text + (f", timing out at {due}" if due else "")


# -- queries on the environment's own schema (search_path is set to it) -----------------

# The executions in scope: $1 and its descendants; every execution when $1 is NULL.
_SCOPE = """
WITH RECURSIVE tree AS (
    SELECT id FROM executions WHERE id = $1::uuid
    UNION
    SELECT e.id FROM executions e JOIN tree ON e.parent_id = tree.id
)
"""
_IN_SCOPE = "($1::uuid IS NULL OR {col} IN (SELECT id FROM tree))"

_BUSY = (
    _SCOPE
    + f"""
SELECT 'task' AS what, t.execution_id::text AS execution_id, t.step_name AS name,
       t.status AS status, t.queue AS queue, coalesce(t.worker_id, '') AS worker_id
FROM tasks t
WHERE {_IN_SCOPE.format(col="t.execution_id")}
  AND (t.status = 'leased' OR (t.status = 'ready' AND t.available_at <= $2))
UNION ALL
SELECT 'timer', m.execution_id::text, m.kind, 'due', '', ''
FROM timers m
WHERE {_IN_SCOPE.format(col="m.execution_id")} AND m.due_at <= $2
UNION ALL
SELECT 'schedule', '', s.name, 'due', '', ''
FROM schedules s
WHERE $1::uuid IS NULL AND s.enabled AND s.next_fire_at <= $2
LIMIT {_SHOWN}
"""
)

_WAITS = (
    _SCOPE
    + f"""
SELECT w.execution_id::text AS execution_id, t.step_name, w.kind, w.event_names,
       coalesce(w.mode, '') AS mode, w.input_name,
       ARRAY(SELECT jsonb_object_keys(w.received)) AS received,
       w.deadline_at AS due_at, coalesce(w.child_id::text, '') AS child_id, w.id AS ord
FROM waits w JOIN tasks t ON t.id = w.task_id
WHERE {_IN_SCOPE.format(col="w.execution_id")}
UNION ALL
SELECT t.execution_id::text, t.step_name,
       CASE WHEN t.failures > 0 OR t.losses > 0 THEN 'retry' ELSE 'start' END,
       NULL, '', NULL, ARRAY[]::text[], t.available_at, '', 0
FROM tasks t
WHERE {_IN_SCOPE.format(col="t.execution_id")} AND t.status = 'ready' AND t.available_at > $2
ORDER BY ord
"""
)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


class WorkflowRun:
    """One execution started in a :class:`WorkflowTestEnv`: wait for it, feed it, read it.

    Attributes:
        id: The execution's id.
        env: The environment it runs in.
    """

    def __init__(self, env: WorkflowTestEnv, execution_id: str) -> None:
        self.env = env
        self.id = execution_id

    def __repr__(self) -> str:
        return f"WorkflowRun({self.id!r})"

    async def execution(self, *, include_logs: bool = False) -> Execution:
        """The execution as it is now, with its steps."""
        return await self.env.client.get_execution(
            self.id, include_steps=True, include_logs=include_logs
        )

    async def history(self, *, include_logs: bool = False) -> list[StepAttempt]:
        """Every step attempt so far, in order (a running or waiting one included)."""
        return list((await self.execution(include_logs=include_logs)).steps)

    async def waits(self) -> list[PendingWait]:
        """What the execution and its children wait for now (empty when nothing)."""
        return await self.env._waits(self.id)

    async def until_suspended(self, *, timeout: float | None = None) -> Execution:  # noqa: ASYNC109
        """Wait until nothing of the execution can run now; return it, with its steps.

        That is: it finished, or each of its steps (and of its children's) waits for
        something (see :meth:`waits`). The clock does not move.

        Args:
            timeout: Real seconds to wait for that; by default the environment's
                ``settle_timeout``.

        Raises:
            NotSettledError: Steps still ran (or were ready) when the time was up.
        """
        await self.env._settle(self.id, timeout)
        return await self.execution()

    async def result(
        self,
        *,
        skip_timers: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Execution:
        """Wait until the execution finishes; return it, with its steps.

        It is returned whatever its end (completed, failed, timed out, ...): check its
        ``status``, ``result`` and ``error``.

        Args:
            skip_timers: While the execution is suspended on time (a sleep, a timeout,
                a retry's backoff), jump the clock to its next due time, as
                :meth:`WorkflowTestEnv.skip_to_next_timer` does, until it finishes.
                Without it the clock does not move.
            timeout: Real seconds each stretch of running may take; by default the
                environment's ``settle_timeout``.

        Raises:
            WorkflowSuspendedError: It is suspended and nothing due will resume it: it
                waits for an event or an input (or, without ``skip_timers``, for time).
                The message says what it waits for.
            NotSettledError: Steps still ran when the time was up.
        """
        while True:
            execution = await self.until_suspended(timeout=timeout)
            if execution.status.is_terminal:
                return execution
            due = await self.env._next_due(self.id)
            if skip_timers and due is not None:
                await self.env._control.advance_to(max(due, self.env.now))
                continue
            raise await self._suspended_error(execution, due)

    async def send_event(
        self, name: str, payload: Any = None, *, event_id: str | None = None
    ) -> bool:
        """Send the event ``name`` to this execution; see :meth:`WorkflowTestEnv.send_event`."""
        return await self.env.send_event(self.id, name, payload, event_id=event_id)

    async def provide_input(self, name: str, value: Any) -> None:
        """Answer this execution's input ``name``; see :meth:`WorkflowTestEnv.provide_input`."""
        await self.env.provide_input(self.id, name, value)

    async def cancel(self, reason: str = "") -> Execution:
        """Cancel the execution (and its unfinished children); return it."""
        return await self.env.client.cancel(self.id, reason)

    async def _suspended_error(
        self, execution: Execution, due: datetime | None
    ) -> WorkflowSuspendedError:
        waits = await self.waits()
        lines = [
            w.describe() if w.execution_id == self.id else f"child {w.execution_id}: {w.describe()}"
            for w in waits[:_SHOWN]
        ] or ["(no wait recorded)"]
        if len(waits) > _SHOWN:
            lines.append(f"... and {len(waits) - _SHOWN} more")
        if due is None:
            hint = "nothing is due on the clock: send the event or provide the input it waits for"
        else:
            hint = (
                f"its next timer is due at {due.isoformat()}: call env.skip_to_next_timer() "
                "or env.advance(...), or pass skip_timers=True"
            )
        if execution.deadline_at is not None:
            hint += f"; the workflow times out at {execution.deadline_at.isoformat()}"
        message = (
            f"execution {self.id} of {execution.workflow_name!r} is {execution.status.value} "
            f"and cannot go on by itself at {self.env.now.isoformat()} ({hint}):\n  "
            + "\n  ".join(lines)
        )
        return WorkflowSuspendedError(message, execution, waits)


def _require_extras() -> None:
    """ImportError, naming the packages to install, unless the orchestrator and worker are."""
    try:
        import asyncpg  # noqa: F401

        import durable_server.app  # noqa: F401
        import durable_worker  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "durable.testing runs an orchestrator and a worker in your tests: install the "
            f"durable-server and durable-worker packages next to durable ({exc})"
        ) from exc


class WorkflowTestEnv:
    """An orchestrator, a worker and a client for a test, on a manual clock.

    Use it as ``async with WorkflowTestEnv([...]) as env:`` (or call :meth:`open` and
    :meth:`close`).

    Args:
        workflows: The workflows the environment's worker runs (children included).
        database_url: The PostgreSQL to use; by default ``$DURABLE_TEST_DATABASE_URL``,
            else an embedded PostgreSQL whose data lives in ``data_dir``. Any database
            the user may create schemas in: the environment works in a fresh schema of
            its own, dropped on close.
        start: The manual clock's first time (timezone-aware); by default now (whole
            seconds). Only the methods of this class move it.
        settle_timeout: Real seconds the waiting methods wait, by default, for running
            steps to settle.
        concurrency: Steps the worker runs at the same time, at most.
        data_dir: Where an embedded PostgreSQL keeps its data; by default
            ``$DURABLE_DATA_DIR``, else ``.durable`` (as ``durable server`` does).
        settings: Orchestrator settings to change, by field name of
            :class:`durable_server.config.Settings` (e.g. ``{"max_step_runs": 50}``).
        keep_schema: Do not drop the schema on close (to look at it afterwards).

    Attributes:
        client: The :class:`~durable.Client` connected to the environment's orchestrator.
        clock: The manual clock (``ManualClock``): prefer the methods that move it, which
            first wait for running steps to settle.
        orchestrator: The in-process orchestrator (``durable_server.app.Orchestrator``).
        worker: The in-process worker (``durable_worker.Worker``).
        schema: The environment's schema, e.g. ``durable_test_3f2a9c1b7d0e``.
        database_url: The database it runs on (known once open).
    """

    def __init__(
        self,
        workflows: Sequence[Workflow],
        *,
        database_url: str | None = None,
        start: datetime | None = None,
        settle_timeout: float = 10.0,
        concurrency: int = 10,
        data_dir: str | None = None,
        settings: Mapping[str, Any] | None = None,
        keep_schema: bool = False,
    ) -> None:
        _require_extras()
        from durable_server.clock import ManualClock

        if not workflows:
            raise ValueError("WorkflowTestEnv needs at least one workflow to run")
        if settle_timeout <= 0:
            raise ValueError(f"settle_timeout must be positive, got {settle_timeout}")
        first = datetime.now(UTC).replace(microsecond=0) if start is None else start
        self.workflows = list(workflows)
        self.clock = ManualClock(_aware("start", first))
        self.settle_timeout = settle_timeout
        self.schema = f"durable_test_{uuid.uuid4().hex[:12]}"
        self.database_url = database_url or ""
        self._concurrency = concurrency
        self._data_dir = data_dir
        self._settings = dict(settings or {})
        self._keep_schema = keep_schema
        self._orchestrator: Orchestrator | None = None
        self._worker: Worker | None = None
        self._client: Client | None = None
        self._pool: Any = None
        self._opened = False

    # -- parts -------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        """The client connected to the environment's orchestrator."""
        return self._part(self._client)

    @property
    def orchestrator(self) -> Orchestrator:
        """The in-process orchestrator."""
        return self._part(self._orchestrator)

    @property
    def worker(self) -> Worker:
        """The in-process worker."""
        return self._part(self._worker)

    @property
    def _control(self) -> ClockControl:
        """The orchestrator's clock control: what is due next, and moving the clock."""
        control = self.orchestrator.clock_control
        assert control is not None, "the environment's orchestrator runs on a manual clock"
        return control

    @property
    def address(self) -> str:
        """The orchestrator's ``host:port``."""
        return self.orchestrator.address

    @property
    def now(self) -> datetime:
        """The manual clock's time."""
        return self.clock.now()

    @staticmethod
    def _part(part: T | None) -> T:
        if part is None:
            raise RuntimeError(
                "the WorkflowTestEnv is not open: use `async with WorkflowTestEnv(...) as env`"
            )
        return part

    # -- life cycle --------------------------------------------------------------------

    async def open(self) -> WorkflowTestEnv:
        """Start the orchestrator (migrating the fresh schema), the worker and the client."""
        import asyncpg

        from durable_server.app import Orchestrator
        from durable_server.config import Settings
        from durable_worker import Worker

        if self._opened:
            raise RuntimeError("this WorkflowTestEnv was opened already")
        self._opened = True
        try:
            if not self.database_url:
                self.database_url = await self._default_database_url()
            base = Settings(
                database_url=self.database_url,
                listen="127.0.0.1:0",
                schema=self.schema,
                pool_min_size=1,
                pool_max_size=5,
            )
            settings = replace(base, **self._settings)
            self._orchestrator = Orchestrator(settings, self.database_url, clock=self.clock)
            await self._orchestrator.start()
            self._pool = await asyncpg.create_pool(
                self.database_url,
                min_size=1,
                max_size=4,
                server_settings={"search_path": self.schema},
            )
            self._worker = Worker(
                self._orchestrator.address,
                self.workflows,
                concurrency=self._concurrency,
                worker_id=f"{self.schema}-worker",
                poll_wait=timedelta(seconds=1),
                drain_timeout=0.0,
            )
            await self._worker.start()
            self._client = Client(self._orchestrator.address)
        except BaseException:
            await self.close()
            raise
        log.debug("WorkflowTestEnv open on %s, schema %s", self.database_url, self.schema)
        return self

    async def close(self) -> None:
        """Stop the worker, the client and the orchestrator; drop the schema."""
        worker, self._worker = self._worker, None
        client, self._client = self._client, None
        orchestrator, self._orchestrator = self._orchestrator, None
        pool, self._pool = self._pool, None
        try:
            if worker is not None:
                await worker.stop()
            if client is not None:
                await client.close()
            if pool is not None:
                await pool.close()
            if orchestrator is not None:
                await orchestrator.stop(grace=0.5)
        finally:
            if self.database_url and not self._keep_schema:
                await self._drop_schema()

    async def __aenter__(self) -> WorkflowTestEnv:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _default_database_url(self) -> str:
        from_env = os.environ.get(DATABASE_URL_ENV)
        if from_env:
            return from_env
        data_dir = self._data_dir or os.environ.get("DURABLE_DATA_DIR") or ".durable"
        log.info("no %s: starting an embedded PostgreSQL in %s", DATABASE_URL_ENV, data_dir)
        from durable_server.embedded import embedded_database_url

        return await asyncio.to_thread(embedded_database_url, data_dir)

    async def _drop_schema(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        finally:
            await conn.close()

    # -- executions --------------------------------------------------------------------

    async def start(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        queue: str | None = None,
        priority: int = 0,
        scheduled_at: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> WorkflowRun:
        """Start an execution (as :meth:`durable.Client.start`); return its handle.

        Its steps start running at once, on the environment's worker.
        """
        execution_id = await self.client.start(
            workflow,
            input,
            queue=queue,
            priority=priority,
            scheduled_at=scheduled_at,
            idempotency_key=idempotency_key,
        )
        return WorkflowRun(self, execution_id)

    async def execute(
        self,
        workflow: str | Workflow,
        input: Any = None,
        *,
        skip_timers: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Execution:
        """Start an execution and wait until it finishes, skipping its timers; return it.

        The same as ``await (await env.start(workflow, input)).result(skip_timers=True)``:
        sleeps, timeouts and backoffs take no time. Raises
        :class:`WorkflowSuspendedError` if it waits for an event or an input.
        """
        run = await self.start(workflow, input)
        return await run.result(skip_timers=skip_timers, timeout=timeout)

    def run(self, execution_id: str) -> WorkflowRun:
        """A handle on an execution started otherwise (e.g. a child, by its id)."""
        try:
            uuid.UUID(execution_id)
        except ValueError:
            raise ValueError(f"{execution_id!r} is not an execution id") from None
        return WorkflowRun(self, execution_id)

    async def send_event(
        self,
        execution: str | WorkflowRun,
        name: str,
        payload: Any = None,
        *,
        event_id: str | None = None,
    ) -> bool:
        """Send the event ``name`` to an execution (``ctx.wait_for_event`` and the like).

        ``event_id`` makes a repeated send a no-op, as for :meth:`Client.send_event`.

        Returns:
            True when a waiting step took it now, False when the execution keeps it for
            a later wait.
        """
        return await self.client.send_event(_id(execution), name, payload, event_id=event_id)

    async def provide_input(self, execution: str | WorkflowRun, name: str, value: Any) -> None:
        """Answer an execution's pending input ``name`` (``ctx.wait_for_input``)."""
        await self.client.provide_input(_id(execution), name, value)

    # -- time --------------------------------------------------------------------------

    async def until_idle(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until nothing in the environment can run at the clock's current time."""
        await self._settle(None, timeout)

    async def advance(
        self,
        delta: timedelta,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> datetime:
        """Move the clock forward by ``delta``; return the new time.

        First waits until nothing runs (so a step started just before sleeps from the
        right time), then moves the clock: every sleep, timeout, backoff, scheduled
        start and cron slot due by then fires, and the steps they resume (or start) run
        to their next suspension before this returns.

        Raises:
            NotSettledError: Steps still ran, before or after the move, when the
                (real-time) ``timeout`` was up.
        """
        if delta < timedelta(0):
            raise ValueError(f"the clock does not go backwards: delta is {delta}")
        await self._settle(None, timeout)
        return await self._move(self.now + delta, timeout)

    async def advance_to(
        self,
        when: datetime,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> datetime:
        """Move the clock forward to ``when`` (see :meth:`advance`); return the new time."""
        _aware("when", when)
        await self._settle(None, timeout)
        return await self._move(when, timeout)

    async def skip_to_next_timer(
        self,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> datetime | None:
        """Jump the clock to the next time something is due, and run what it resumes.

        Something due: a sleep ending, a wait's or a workflow's timeout, a retry after its
        backoff, a scheduled start, a cron schedule's next slot. Waits first until nothing
        runs, as :meth:`advance` does.

        Returns:
            The new time, or ``None`` (the clock unmoved) when nothing is due ever.
        """
        await self._settle(None, timeout)
        due = await self._next_due(None)
        if due is None:
            return None
        return await self._move(due, timeout)

    async def next_timer(self) -> datetime | None:
        """When something is next due (see :meth:`skip_to_next_timer`), or ``None``."""
        return await self._next_due(None)

    async def _move(self, when: datetime, timeout: float | None) -> datetime:  # noqa: ASYNC109
        # The orchestrator's TestingService moves the clock the same way: it returns once
        # the timers and schedule slots due are fired; waiting for the worker is ours.
        now = await self._control.advance_to(max(when, self.now))
        await self._settle(None, timeout)
        return now

    # -- looking at the schema ---------------------------------------------------------

    async def _settle(self, execution_id: str | None, timeout: float | None) -> None:  # noqa: ASYNC109
        """Return once nothing in scope is running, ready now, or due on the clock."""
        limit = self.settle_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            busy = await self._pool_query("fetch", _BUSY, execution_id, self.now)
            if not busy:
                return
            if time.monotonic() >= deadline:
                raise NotSettledError(_busy_message(execution_id, limit, busy))
            await asyncio.sleep(_POLL_INTERVAL)

    async def _next_due(self, execution_id: str | None) -> datetime | None:
        return await self._control.next_due(execution_id)

    async def _waits(self, execution_id: str | None) -> list[PendingWait]:
        rows = await self._pool_query("fetch", _WAITS, execution_id, self.now)
        return [
            PendingWait(
                execution_id=r["execution_id"],
                step_name=r["step_name"] if r["kind"] != "start" else "",
                kind=r["kind"],
                names=tuple(r["event_names"] or ([r["input_name"]] if r["input_name"] else [])),
                mode=r["mode"],
                received=tuple(sorted(r["received"] or ())),
                due_at=r["due_at"],
                child_execution_id=r["child_id"],
            )
            for r in rows
        ]

    async def _pool_query(self, method: str, sql: str, *args: Any) -> Any:
        pool = self._part(self._pool)
        async with pool.acquire() as conn:
            return await getattr(conn, method)(sql, *args)


def _id(execution: str | WorkflowRun) -> str:
    return execution.id if isinstance(execution, WorkflowRun) else execution


def _busy_message(execution_id: str | None, limit: float, busy: Sequence[Any]) -> str:
    scope = f"execution {execution_id}" if execution_id else "the environment"
    lines = []
    for row in busy:
        if row["what"] == "timer":
            lines.append(f"a {row['name']} timer of execution {row['execution_id']} is due")
        elif row["what"] == "schedule":
            lines.append(f"a slot of schedule {row['name']!r} is due")
        elif row["status"] == "leased":
            lines.append(
                f"step {row['name']!r} of execution {row['execution_id']} is running "
                f"(worker {row['worker_id']})"
            )
        else:
            lines.append(
                f"step {row['name']!r} of execution {row['execution_id']} is ready on queue "
                f"{row['queue']!r} but no worker took it (does the environment's worker "
                "poll that queue and run that workflow?)"
            )
    return f"{scope} did not settle within {limit}s:\n  " + "\n  ".join(lines)
