"""The engine: load rows, decide (``transitions``), apply the effects in one transaction.

Every write path of the orchestrator goes through here; the API servicers only validate,
call one method and convert the result.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from durable_server.batching import Batcher
from durable_server.clock import Clock
from durable_server.config import Settings
from durable_server.engine.apply import Applier, FinishNotice
from durable_server.engine.children import (
    ChildStart,
    ChildStartError,
    start_children,
)
from durable_server.engine.definitions import Definition, DefinitionCache, StepDef
from durable_server.engine.logs import LogEntry, append_logs
from durable_server.engine.presence import WorkerPresence
from durable_server.engine.scope import QueueScope, check_task_queues
from durable_server.engine.states import TERMINAL_STATUSES, ExecutionStatus, TaskKind
from durable_server.engine.transitions import (
    Decision,
    Evaluation,
    FinishExecution,
    StepError,
    decide_lease_expired,
    decide_step_completed,
    decide_step_failed,
    workflow_version_of,
)
from durable_server.engine.waits import (
    EventSent,
    WaitSpec,
    park,
    provide_input,
    send_event,
    timed_out,
)
from durable_server.errors import (
    AbortedError,
    DurableError,
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidJsonError,
    NotFoundError,
)
from durable_server.ids import new_execution_id
from durable_server.metrics import Metrics
from durable_server.store import executions as ex_store
from durable_server.store import tasks as task_store
from durable_server.store import timers as timer_store
from durable_server.store import waits as wait_store
from durable_server.store.db import Conn, Database, after_commit
from durable_server.store.rows import ClaimedTask, ExecutionRow, LeasedTask

__all__ = ["Engine", "NextTasks", "StartRequest", "Suspension", "TaskOutcome"]

log = logging.getLogger(__name__)

STALE_TRAILER = "durable-stale-task-ids"
RETRIES = 3
T = TypeVar("T")


@dataclass(frozen=True)
class StartRequest:
    """A validated StartWorkflow request."""

    workflow_name: str
    input_json: str
    queue: str | None
    priority: int
    scheduled_at: datetime | None
    idempotency_key: str | None
    traceparent: str = ""


@dataclass(frozen=True)
class TaskOutcome:
    """One reported result: exactly one of ``result_json`` and ``error`` is set."""

    task_id: int
    lease_token: str
    result_json: str | None = None
    error: StepError | None = None
    timed_out: bool = False
    goto_target: str = ""
    evaluations: Mapping[str, Evaluation] = field(default_factory=dict)
    children: Sequence[ChildStart] = ()
    logs: Sequence[LogEntry] = ()


@dataclass(frozen=True)
class NextTasks:
    """A reporting worker's room for the tasks its report makes ready."""

    worker_id: str
    queues: Sequence[str]
    limit: int


@dataclass(frozen=True)
class Suspension:
    """A task parked on a wait, with the children its step run asked for."""

    task_id: int
    lease_token: str
    children: Sequence[ChildStart]
    wait: WaitSpec
    logs: Sequence[LogEntry] = ()


class Engine:
    """The execution and step state machine, applied to PostgreSQL."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        definitions: DefinitionCache,
        on_ready: Callable[[Iterable[str]], None],
        rand: Callable[[], float] = random.random,
        metrics: Metrics | None = None,
        on_finished: Callable[[list[str]], None] = lambda _ids: None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.db = db
        self.clock = clock
        self.settings = settings
        self.definitions = definitions
        self._on_ready = on_ready
        self.on_timer: Callable[[], None] = lambda: None  # set by the app: wake the timer loop
        self._rand = rand
        self.notify_channel = f"durable_{settings.schema}_tasks"
        # Executions finished, for WaitExecution: NOTIFY on this channel, and on_finished here.
        self.finish_notice = FinishNotice(f"durable_{settings.schema}_finished", on_finished)
        self.presence = WorkerPresence(db, clock)
        self._outages_made_up = 0  # outages whose leases were given a full length again
        self._starts: Batcher[tuple[StartRequest, Definition], tuple[str, bool]] = Batcher(
            self._start_many
        )

    # -- starting and cancelling -------------------------------------------------------

    async def start(self, req: StartRequest, definition: Definition) -> tuple[str, bool]:
        """Create an execution of ``definition``; returns (id, created).

        Concurrent starts share one statement and one commit (see ``batching``).
        """
        return await self._starts.submit((req, definition))

    async def start_many(
        self, starts: Sequence[tuple[StartRequest, Definition]]
    ) -> list[tuple[str, bool]]:
        """Create many executions in one statement and one transaction: all or none.

        Returns (id, created) for each, in order. An input PostgreSQL refuses, or a
        draining queue, fails the whole call; the error names the requests at fault.
        """
        if not starts:
            return []
        try:
            results = await self._insert_executions(list(starts), atomic=True)
        except (InvalidArgumentError, InvalidJsonError) as exc:
            if exc.message.startswith("requests["):
                raise
            bad = [i for i, (req, _) in enumerate(starts) if not _is_storable_json(req.input_json)]
            where = f"requests[{bad[0]}]: " if bad else ""
            raise type(exc)(f"{where}{exc.message}") from exc
        return [r for r in results if not isinstance(r, BaseException)]

    async def _start_many(
        self, batch: list[tuple[StartRequest, Definition]]
    ) -> list[tuple[str, bool] | BaseException]:
        try:
            return await self._insert_executions(batch)
        except (InvalidArgumentError, InvalidJsonError):
            if len(batch) == 1:
                raise
        # One bad input fails the whole statement: write each alone, so only it fails.
        out: list[tuple[str, bool] | BaseException] = []
        for item in batch:
            try:
                out += await self._insert_executions([item])
            except (InvalidArgumentError, InvalidJsonError) as exc:
                out.append(exc)
        return out

    async def _insert_executions(
        self, batch: list[tuple[StartRequest, Definition]], *, atomic: bool = False
    ) -> list[tuple[str, bool] | BaseException]:
        """Insert ``batch`` in one statement; with ``atomic``, none when any is refused."""
        news = [_new_execution(req, definition) for req, definition in batch]
        now = self.clock.now()
        ready_now = [req.scheduled_at is None or req.scheduled_at <= now for req, _ in batch]
        written = self.db.transaction() if atomic else self.db.connection()
        async with written as conn:
            inserted = await ex_store.execution_insert_many(
                conn,
                news,
                ready_now=ready_now,
                now=self.clock.db_now(),
                channel=self.notify_channel,
            )
            keys = [n.idempotency_key for n, i in zip(news, inserted, strict=True) if not i.created]
            held = (
                await ex_store.execution_ids_by_idempotency_keys(
                    conn, keys=[k for k in keys if k is not None]
                )
                if any(keys)
                else {}
            )
            out: list[tuple[str, bool] | BaseException] = [
                _start_outcome(n, i, held) for n, i in zip(news, inserted, strict=True)
            ]
            refused = [(i, o) for i, o in enumerate(out) if isinstance(o, DurableError)]
            if atomic and refused:  # leaving the block with it rolls every insert back
                index, error = refused[0]
                raise type(error)(f"requests[{index}]: {error.message}")
        created = [n for n, o in zip(news, inserted, strict=True) if o.created]
        self.metrics.count_started([n.workflow_name for n in created])
        ready = sorted(
            {n.queue for n, r in zip(news, ready_now, strict=True) if r}
            & {n.queue for n in created}
        )
        if ready:
            self._on_ready(ready)
        if any(n.timeout_secs is not None for n in created):
            self.on_timer()
        return out

    async def cancel(self, execution_id: str, reason: str) -> ExecutionRow:
        """Cancel an unfinished execution: no further steps run."""
        error = StepError("Cancelled", reason or "cancelled by request").to_json()
        async with self.db.transaction() as conn:
            status = await ex_store.execution_status_get(conn, execution_id=execution_id)
            if status is None:
                raise NotFoundError(f"execution {execution_id} does not exist")
            if ExecutionStatus(status) in TERMINAL_STATUSES:
                raise FailedPreconditionError(
                    f"execution {execution_id} is already {status}; only pending, running or "
                    "waiting executions can be cancelled"
                )
            finish = FinishExecution(execution_id, ExecutionStatus.CANCELLED, error_json=error)
            await self._applier(conn, {}).finish([finish])
            row = await ex_store.execution_get(conn, execution_id=execution_id)
        assert row is not None
        return row

    # -- claiming --------------------------------------------------------------------------

    async def claim(
        self, worker_id: str, queues: Sequence[str], max_tasks: int
    ) -> tuple[list[ClaimedTask], datetime | None]:
        """Lease up to ``max_tasks`` ready tasks for a registered worker.

        Returns the tasks, and when none: when delayed work of ``queues`` is next ready.
        A queue without a concurrency limit is claimed from by one statement, outside
        any transaction; a limited one takes its lock and counts its leases first.
        """
        self.presence.seen(worker_id)
        limited = any(q in self.settings.queue_limits for q in queues)
        if limited:
            async with self.db.transaction() as conn:
                claimed = await self._claim_from(conn, worker_id, queues, max_tasks)
        else:
            async with self.db.connection() as conn:
                claimed = await self._claim_from(conn, worker_id, queues, max_tasks)
        if claimed:
            return claimed, None
        async with self.db.connection() as conn:
            known, next_due = await task_store.task_poll_idle(
                conn, worker_id=worker_id, queues=list(queues), now=self.clock.db_now()
            )
        if not known:
            raise FailedPreconditionError(
                f"worker {worker_id!r} is unknown: call RegisterWorkflows first"
            )
        return [], next_due

    async def _claim_from(
        self, conn: Conn, worker_id: str, queues: Sequence[str], max_tasks: int
    ) -> list[ClaimedTask]:
        now = self.clock.db_now()
        if len(queues) > 1:  # claim only from the queues with work: one query finds them
            queues = await task_store.task_ready_queues(conn, queues=list(queues), now=now)
        claimed: list[ClaimedTask] = []
        for queue in queues:
            room = max_tasks - len(claimed)
            limit = self.settings.queue_limits.get(queue)
            if limit is not None:
                await task_store.task_queue_lock(conn, queue=queue)
                leased = await task_store.task_queue_leased_count(conn, queue=queue)
                room = min(room, limit - leased)
            if room <= 0:
                continue
            batch = await task_store.task_claim_many(
                conn,
                worker_id=worker_id,
                queue=queue,
                limit=room,
                now=now,
                lease_secs=self.settings.lease_secs,
                timeout_grace_secs=self.settings.timeout_grace_secs,
            )
            claimed += batch
            self.metrics.count_claimed(queue, [t.dispatch_secs for t in batch])
        return claimed

    # -- reports from workers ----------------------------------------------------------

    async def report(
        self,
        outcomes: Sequence[TaskOutcome],
        next_tasks: NextTasks | None = None,
        scope: QueueScope = None,
    ) -> list[ClaimedTask]:
        """Record results and failures; all or nothing when a lease is stale.

        With ``next_tasks``, up to its ``limit`` of the tasks this makes ready (of the
        worker's queues, without a concurrency limit) are leased to the worker at once
        and returned, in the same transaction. A task outside ``scope`` (the caller's
        queues) refuses the whole report.
        """
        return await self._retrying(self._report_once, outcomes, next_tasks, scope)

    async def _report_once(
        self, outcomes: Sequence[TaskOutcome], next_tasks: NextTasks | None, scope: QueueScope
    ) -> list[ClaimedTask]:
        ids = [o.task_id for o in outcomes]
        tokens = [o.lease_token for o in outcomes]
        async with self.db.transaction() as conn:
            tasks = await task_store.task_lock_leased_many(conn, ids=ids, tokens=tokens)
            check_task_queues(((t.id, t.queue) for t in tasks), scope)
            self._check_fresh(ids, tasks)
            by_id = {t.id: t for t in tasks}
            await self._append_logs(conn, [(by_id[o.task_id], o.logs) for o in outcomes])
            decisions = []
            children_ready: set[str] = set()
            for outcome in outcomes:
                task = by_id[outcome.task_id]
                definition = await self._definition(task.workflow_version)
                self.metrics.count_step(
                    definition.name, task, _step_outcome(outcome), self.clock.now()
                )
                if outcome.children and outcome.error is None:
                    try:
                        children_ready |= set(
                            await start_children(
                                conn,
                                self.definitions,
                                task,
                                outcome.children,
                                now=self.clock.db_now(),
                                metrics=self.metrics,
                            )
                        )
                    except ChildStartError as exc:
                        decisions.append(decide_step_failed(definition, task, exc.error))
                        continue
                if outcome.error is None:
                    assert outcome.result_json is not None
                    decisions.append(
                        decide_step_completed(
                            definition,
                            task,
                            outcome.result_json,
                            goto_target=outcome.goto_target,
                            evaluations=outcome.evaluations,
                        )
                    )
                else:
                    decisions.append(
                        decide_step_failed(
                            definition,
                            task,
                            outcome.error,
                            timed_out=outcome.timed_out,
                            rand=self._rand,
                        )
                    )
            applier = await self._apply(
                conn, decisions, also_ready=children_ready, next_tasks=next_tasks
            )
        self._on_ready(sorted(applier.ready))
        for queue in {t.queue for t in applier.leased}:
            self.metrics.count_claimed(queue, [0.0 for t in applier.leased if t.queue == queue])
        return applier.leased

    async def suspend(self, suspensions: Sequence[Suspension], scope: QueueScope = None) -> None:
        """Park tasks on their waits, starting the children they ask for; all or nothing.

        A task outside ``scope`` (the caller's queues) refuses them all.
        """
        await self._retrying(self._suspend_once, suspensions, scope)

    async def _suspend_once(self, suspensions: Sequence[Suspension], scope: QueueScope) -> None:
        ids = [x.task_id for x in suspensions]
        tokens = [x.lease_token for x in suspensions]
        now = self.clock.db_now()
        async with self.db.transaction() as conn:
            tasks = await task_store.task_lock_leased_many(conn, ids=ids, tokens=tokens)
            check_task_queues(((t.id, t.queue) for t in tasks), scope)
            self._check_fresh(ids, tasks)
            by_id = {t.id: t for t in tasks}
            await self._append_logs(conn, [(by_id[x.task_id], x.logs) for x in suspensions])
            definitions = {
                t.workflow_version: await self._definition(t.workflow_version) for t in tasks
            }
            applier = self._applier(conn, definitions)
            failures: list[Decision] = []
            for x in suspensions:
                task = by_id[x.task_id]
                workflow = definitions[task.workflow_version].name
                self.metrics.count_step(workflow, task, "suspended", self.clock.now())
                try:
                    applier.ready |= set(
                        await start_children(
                            conn, self.definitions, task, x.children, now=now, metrics=self.metrics
                        )
                    )
                except ChildStartError as exc:
                    failures.append(
                        decide_step_failed(definitions[task.workflow_version], task, exc.error)
                    )
                    continue
                error = await park(conn, applier, self.clock, task, x.wait)
                if error is not None:
                    failures.append(
                        decide_step_failed(definitions[task.workflow_version], task, error)
                    )
            await applier.apply([e for d in failures for e in d.effects])
            ready = await self._notify(conn, applier)
        self._on_ready(ready)

    async def _append_logs(
        self, conn: Conn, reports: Sequence[tuple[LeasedTask, Sequence[LogEntry]]]
    ) -> None:
        """Store what the reported runs logged, with their reports (see ``engine.logs``)."""
        await append_logs(
            conn,
            reports,
            max_bytes=self.settings.max_log_bytes,
            max_lines=self.settings.max_log_lines,
            now=self.clock.db_now(),
            fallback_time=self.clock.now(),
        )

    async def send_event(
        self, execution_id: str, name: str, payload_json: str, event_id: str | None = None
    ) -> EventSent:
        """Deliver an event (or keep it for a later wait); see ``waits.send_event``."""
        async with self.db.transaction() as conn:
            applier = self._applier(conn, {})
            sent = await send_event(conn, applier, execution_id, name, payload_json, event_id)
            ready = await self._notify(conn, applier)
        self._on_ready(ready)
        return sent

    async def provide_input(self, execution_id: str, name: str, value_json: str) -> None:
        """Answer a pending human input."""
        async with self.db.transaction() as conn:
            applier = self._applier(conn, {})
            await provide_input(conn, applier, execution_id, name, value_json)
            ready = await self._notify(conn, applier)
        self._on_ready(ready)

    async def _notify(self, conn: Conn, applier: Applier) -> list[str]:
        """Tell every orchestrator about the queues with new ready work; wake the timers."""
        ready = sorted(applier.ready)
        await task_store.task_notify_ready(conn, channel=self.notify_channel, queues=ready)
        if applier.timers_added:  # once committed: the loop must find the new timers
            after_commit(self.on_timer)
        return ready

    async def release(self, leases: Sequence[tuple[int, str]], scope: QueueScope = None) -> None:
        """Give leased tasks back unrun, without using an attempt (none outside ``scope``)."""
        ids = [i for i, _ in leases]
        async with self.db.transaction() as conn:
            tasks = await task_store.task_lock_leased_many(
                conn, ids=ids, tokens=[t for _, t in leases]
            )
            check_task_queues(((t.id, t.queue) for t in tasks), scope)
            self._check_fresh(ids, tasks)
            released = await task_store.task_release_many(conn, ids=ids, now=self.clock.db_now())
            queues = sorted({q for q, _ in released})
            await task_store.task_notify_ready(conn, channel=self.notify_channel, queues=queues)
        self._on_ready(queues)

    async def heartbeat(
        self, worker_id: str, leases: Sequence[tuple[int, str]], scope: QueueScope = None
    ) -> tuple[list[int], datetime | None]:
        """Extend held leases; returns (lost task ids, new expiry).

        One held task outside ``scope`` (the caller's queues) refuses the call: no lease
        is extended.
        """
        self.presence.seen(worker_id)
        if not leases:
            return [], None
        async with self.db.connection() as conn:
            held = await task_store.task_heartbeat_many(
                conn,
                ids=[i for i, _ in leases],
                tokens=[t for _, t in leases],
                lease_secs=self.settings.lease_secs,
                now=self.clock.db_now(),
                timeout_grace_secs=self.settings.timeout_grace_secs,
                queues=sorted(scope) if scope is not None else None,
            )
        check_task_queues(((h.id, h.queue) for h in held), scope)
        extended = {h.id: h.lease_expires_at for h in held if h.lease_expires_at is not None}
        lost = [i for i, _ in leases if i not in extended]
        return lost, min(extended.values(), default=None)

    # -- background work ---------------------------------------------------------------

    async def reclaim_expired(self, limit: int = 500) -> int:
        """Retry or fail the tasks whose leases expired; returns how many.

        Time the database was out of reach does not count against a lease: workers could
        neither heartbeat nor report meanwhile, and their steps may well have finished.
        So after an outage this orchestrator saw (any failed contact, see
        ``Reachability``), and after PostgreSQL started (its ``pg_postmaster_start_time``),
        every lease is first given a full length again, in the same transaction as the
        reclaim, so no reclaim runs ahead of it. Each replica does so before its own
        reclaims (they all see the database go), and the start time covers a replica that
        saw nothing (one started while the database was down).
        """
        return await self._retrying(self._reclaim_expired_once, limit)

    async def _reclaim_expired_once(self, limit: int) -> int:
        outages = self.db.reachability.outages
        async with self.db.transaction() as conn:
            extended = await task_store.task_lease_extend_after_outage(
                conn,
                after_outage=outages != self._outages_made_up,
                now=self.clock.db_now(),
                lease_secs=self.settings.lease_secs,
            )
            expired = await task_store.task_lock_expired_many(
                conn, now=self.clock.db_now(), limit=limit
            )
            decisions = []
            for task, past_timeout in expired:
                definition = await self._definition(task.workflow_version)
                decisions.append(
                    decide_lease_expired(
                        definition,
                        task,
                        past_timeout=past_timeout,
                        max_losses=self.settings.max_lost_attempts,
                        rand=self._rand,
                    )
                )
            ready = sorted((await self._apply(conn, decisions)).ready)
        self._outages_made_up = outages
        if extended:
            log.info(
                "gave %d lease(s) a full %gs again: the database was out of reach",
                len(extended),
                self.settings.lease_secs,
            )
        if expired:
            log.info("reclaimed %d expired lease(s)", len(expired))
        self._on_ready(ready)
        return len(expired)

    async def next_lease_expiry(self) -> datetime | None:
        """When the next lease expires."""
        async with self.db.connection() as conn:
            return await task_store.task_next_lease_expiry(conn)

    async def fire_timers(self, limit: int = 500) -> int:
        """Fire due timers (workflow timeouts, wait timeouts); returns how many fired."""
        return await self._retrying(self._fire_timers_once, limit)

    async def _fire_timers_once(self, limit: int) -> int:
        async with self.db.transaction() as conn:
            due = await timer_store.timer_fire_due(conn, now=self.clock.db_now(), limit=limit)
            applier = self._applier(conn, {})
            finishes = [
                FinishExecution(
                    t.execution_id,
                    ExecutionStatus.TIMED_OUT,
                    error_json=StepError(
                        "WorkflowTimeout", f"the execution did not finish by {t.due_at.isoformat()}"
                    ).to_json(),
                )
                for t in due
                if t.kind == "execution_timeout"
            ]
            await applier.finish(finishes)
            for t in due:
                if t.kind == "wait_timeout" and t.wait_id is not None:
                    await self._wait_timed_out(conn, applier, t.wait_id)
            ready = await self._notify(conn, applier)
        self._on_ready(ready)
        return len(due)

    async def _wait_timed_out(self, conn: Conn, applier: Applier, wait_id: int) -> None:
        wait = await wait_store.wait_take(conn, wait_id=wait_id)
        if wait is None:  # whatever it waited for came first
            return
        await applier.wake([(wait.task_id, wait.wait_index, timed_out(wait))])
        if wait.kind == "child" and wait.child_id is not None:
            error = StepError(
                "Cancelled", "the parent step stopped waiting for it (its call timed out)"
            ).to_json()
            await applier.finish(
                [FinishExecution(wait.child_id, ExecutionStatus.CANCELLED, error_json=error)]
            )

    async def next_timer_due(self) -> datetime | None:
        """When the next timer is due."""
        async with self.db.connection() as conn:
            return await timer_store.timer_next_due(conn)

    # -- applying decisions ------------------------------------------------------------

    async def _retrying(self, once: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a transaction again when it lost to a concurrent one (deadlock, conflict).

        A report whose group a sibling's failure is deleting, for example, can deadlock
        with it; PostgreSQL aborts one, and running it again sees the other's outcome.
        """
        for attempt in range(1, RETRIES + 1):
            try:
                return await once(*args)
            except AbortedError:
                if attempt == RETRIES:
                    raise
                log.info("%s lost to a concurrent change; running it again", once.__name__)
                await asyncio.sleep(0.005 * attempt * (1 + self._rand()))
        raise AssertionError("unreachable")

    async def _definition(self, version: str) -> Definition:
        definition = await self.definitions.get(version)
        if definition is None:  # a foreign key makes this impossible short of manual deletes
            raise NotFoundError(f"workflow version {version} is not stored")
        return definition

    @staticmethod
    def _check_fresh(ids: Sequence[int], held: Sequence[LeasedTask]) -> None:
        stale = sorted(set(ids) - {t.id for t in held})
        if stale:
            listed = ", ".join(str(i) for i in stale)
            raise FailedPreconditionError(
                f"the lease on task(s) {listed} is stale or wrong: the task finished, was "
                "cancelled, or was reclaimed and leased again; nothing was recorded — drop "
                f"these tasks (ids in trailer {STALE_TRAILER!r}) and send the rest again",
                trailers=[(STALE_TRAILER, ",".join(str(i) for i in stale))],
            )

    def _applier(
        self,
        conn: Conn,
        definitions: dict[str, Definition],
        next_tasks: NextTasks | None = None,
    ) -> Applier:
        if next_tasks is None or next_tasks.limit <= 0:
            return Applier(
                conn,
                definitions,
                now=self.clock.db_now(),
                max_step_runs=self.settings.max_step_runs,
                metrics=self.metrics,
                finish_notice=self.finish_notice,
            )
        return Applier(
            conn,
            definitions,
            now=self.clock.db_now(),
            max_step_runs=self.settings.max_step_runs,
            metrics=self.metrics,
            finish_notice=self.finish_notice,
            handback=task_store.Handback(
                next_tasks.worker_id, self.settings.lease_secs, self.settings.timeout_grace_secs
            ),
            # A queue with a concurrency limit is only claimed from under its lock.
            handback_queues=frozenset(next_tasks.queues) - set(self.settings.queue_limits),
            handback_room=next_tasks.limit,
        )

    async def _apply(
        self,
        conn: Conn,
        decisions: Sequence[Decision],
        also_ready: Iterable[str] = (),
        next_tasks: NextTasks | None = None,
    ) -> Applier:
        """Apply every effect in this transaction; the applier says what became ready."""
        effects = [e for d in decisions for e in d.effects]
        versions = {v for e in effects if (v := workflow_version_of(e)) is not None}
        definitions = {v: await self._definition(v) for v in versions}
        applier = self._applier(conn, definitions, next_tasks)
        applier.ready |= set(also_ready)
        await applier.apply(effects)
        await task_store.task_notify_ready(
            conn, channel=self.notify_channel, queues=sorted(applier.ready)
        )
        return applier


def _start_outcome(
    new: ex_store.NewExecution, inserted: ex_store.Inserted, held: Mapping[str, str]
) -> tuple[str, bool] | DurableError:
    """(id, created) of one start, or why it did not start."""
    if inserted.refused is not None:
        return FailedPreconditionError(
            f"queue {new.queue!r} is draining ({inserted.refused}): it takes no new "
            "executions until it is resumed"
        )
    if inserted.created:
        return (new.id, True)
    if new.idempotency_key is not None and new.idempotency_key in held:
        return (held[new.idempotency_key], False)
    return FailedPreconditionError("idempotency key conflict; try again")  # deleted meanwhile


def _is_storable_json(text: str) -> bool:
    """Whether PostgreSQL's jsonb takes ``text`` (checked only to name a refused input)."""

    def refuse(constant: str) -> None:  # NaN and Infinity are not JSON
        raise ValueError(constant)

    try:
        json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return False
    return "\\u0000" not in text  # jsonb cannot hold the NUL character


def _new_execution(req: StartRequest, definition: Definition) -> ex_store.NewExecution:
    """The row a start request inserts."""
    first = definition.first
    return ex_store.NewExecution(
        id=new_execution_id(),
        workflow_name=definition.name,
        workflow_version=definition.version,
        queue=req.queue or definition.queue or "default",
        priority=req.priority,
        input_json=req.input_json,
        idempotency_key=req.idempotency_key,
        scheduled_at=req.scheduled_at,
        timeout_secs=definition.timeout_secs,
        first_step=first.name,
        first_step_timeout_secs=first.timeout_secs if isinstance(first, StepDef) else None,
        first_task_kind=TaskKind.STEP if isinstance(first, StepDef) else TaskKind.ROUTE,
        traceparent=req.traceparent,
    )


def _step_outcome(outcome: TaskOutcome) -> str:
    """The ``outcome`` label of a reported step run."""
    if outcome.error is None:
        return "completed"
    return "timed_out" if outcome.timed_out else "failed"
