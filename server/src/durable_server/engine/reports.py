"""Reports from workers (results, failures, suspensions) and what else ends a wait.

A report locks the reported tasks by their lease tokens, records what their runs logged,
decides (``transitions``) and applies the outcome in one unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from durable_server.engine.children import ChildStart, ChildStartError, start_children
from durable_server.engine.context import EngineContext, Handback, UnitOfWork, check_fresh
from durable_server.engine.definitions import BranchDef, Definition, ForeachDef
from durable_server.engine.logs import LogEntry, append_logs
from durable_server.engine.scope import QueueScope, check_task_queues
from durable_server.engine.states import TaskKind
from durable_server.engine.transitions import (
    Decision,
    Evaluation,
    StepError,
    decide_step_completed,
    decide_step_failed,
)
from durable_server.engine.waits import EventSent, WaitSpec, park, provide_input, send_event
from durable_server.errors import InvalidArgumentError
from durable_server.store import tasks as task_store
from durable_server.store.rows import ClaimedTask, LeasedTask

__all__ = ["NextTasks", "Reports", "Suspension", "TaskOutcome"]

NextTasks = Handback  # a reporting worker's room for the tasks its report makes ready


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
class Suspension:
    """A task parked on a wait, with the children its step run asked for."""

    task_id: int
    lease_token: str
    children: Sequence[ChildStart]
    wait: WaitSpec
    logs: Sequence[LogEntry] = ()


class Reports:
    """CompleteTasks, FailTasks, SuspendTasks; SendEvent and SubmitInput."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

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
        return await self.ctx.retrying(self._report_once, outcomes, next_tasks, scope)

    async def _report_once(
        self, outcomes: Sequence[TaskOutcome], next_tasks: NextTasks | None, scope: QueueScope
    ) -> list[ClaimedTask]:
        ctx = self.ctx
        async with ctx.unit(handback=next_tasks) as uow:
            by_id = await self._lock(uow, outcomes, scope)
            for outcome in outcomes:  # refuse the whole report before recording any of it
                task = by_id[outcome.task_id]
                if outcome.error is None and (outcome.evaluations or task.kind == TaskKind.ROUTE):
                    definition = await ctx.definition(task.workflow_version)
                    _check_evaluations(definition, task, outcome.evaluations)
            decisions = []
            for outcome in outcomes:
                task = by_id[outcome.task_id]
                definition = await ctx.definition(task.workflow_version)
                ctx.metrics.count_step(
                    definition.name, task, _step_outcome(outcome), ctx.clock.now()
                )
                if outcome.children and outcome.error is None:
                    try:
                        uow.ready(
                            await start_children(
                                uow.conn,
                                ctx.definitions,
                                task,
                                outcome.children,
                                now=ctx.clock.db_now(),
                                metrics=ctx.metrics,
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
                            rand=ctx.rand,
                        )
                    )
            applier = await uow.apply(decisions)
        for queue in {t.queue for t in applier.leased}:
            ctx.metrics.count_claimed(queue, [0.0 for t in applier.leased if t.queue == queue])
        return applier.leased

    async def suspend(self, suspensions: Sequence[Suspension], scope: QueueScope = None) -> None:
        """Park tasks on their waits, starting the children they ask for; all or nothing.

        A task outside ``scope`` (the caller's queues) refuses them all.
        """
        await self.ctx.retrying(self._suspend_once, suspensions, scope)

    async def _suspend_once(self, suspensions: Sequence[Suspension], scope: QueueScope) -> None:
        ctx = self.ctx
        now = ctx.clock.db_now()
        async with ctx.unit() as uow:
            by_id = await self._lock(uow, suspensions, scope)
            definitions = {
                t.workflow_version: await ctx.definition(t.workflow_version) for t in by_id.values()
            }
            applier = uow.applier
            applier.definitions.update(definitions)
            failures: list[Decision] = []
            for x in suspensions:
                task = by_id[x.task_id]
                workflow = definitions[task.workflow_version].name
                ctx.metrics.count_step(workflow, task, "suspended", ctx.clock.now())
                try:
                    uow.ready(
                        await start_children(
                            uow.conn,
                            ctx.definitions,
                            task,
                            x.children,
                            now=now,
                            metrics=ctx.metrics,
                        )
                    )
                except ChildStartError as exc:
                    failures.append(
                        decide_step_failed(definitions[task.workflow_version], task, exc.error)
                    )
                    continue
                error = await park(uow.conn, applier, ctx.clock, task, x.wait)
                if error is not None:
                    failures.append(
                        decide_step_failed(definitions[task.workflow_version], task, error)
                    )
            await applier.apply([e for d in failures for e in d.effects])

    async def _lock(
        self, uow: UnitOfWork, reports: Sequence[TaskOutcome | Suspension], scope: QueueScope
    ) -> dict[int, LeasedTask]:
        """Lock the reported tasks by their leases (all fresh, all in ``scope``); store logs."""
        ids = [r.task_id for r in reports]
        tokens = [r.lease_token for r in reports]
        tasks = await task_store.task_lock_leased_many(uow.conn, ids=ids, tokens=tokens)
        check_task_queues(((t.id, t.queue) for t in tasks), scope)
        check_fresh(ids, tasks)
        by_id = {t.id: t for t in tasks}
        settings, clock = self.ctx.settings, self.ctx.clock
        await append_logs(  # what the reported runs logged (see ``engine.logs``)
            uow.conn,
            [(by_id[r.task_id], r.logs) for r in reports],
            max_bytes=settings.max_log_bytes,
            max_lines=settings.max_log_lines,
            now=clock.db_now(),
            fallback_time=clock.now(),
        )
        return by_id

    async def send_event(
        self, execution_id: str, name: str, payload_json: str, event_id: str | None = None
    ) -> EventSent:
        """Deliver an event (or keep it for a later wait); see ``waits.send_event``."""
        async with self.ctx.unit() as uow:
            return await send_event(
                uow.conn, uow.applier, execution_id, name, payload_json, event_id
            )

    async def provide_input(self, execution_id: str, name: str, value_json: str) -> None:
        """Answer a pending human input."""
        async with self.ctx.unit() as uow:
            await provide_input(uow.conn, uow.applier, execution_id, name, value_json)


def _check_evaluations(
    definition: Definition, task: LeasedTask, evaluations: Mapping[str, Evaluation]
) -> None:
    """Refuse evaluations no walk can use, and a ROUTE completion without its own node's.

    Without its node's evaluation a ROUTE task would be routed again and again until the
    execution's step-run limit. Evaluations of branches and foreaches the walk does not
    reach are ignored (the worker may have walked ahead on another path).
    """
    for name in evaluations:
        if not isinstance(definition.nodes.get(name), BranchDef | ForeachDef):
            raise InvalidArgumentError(
                f"task {task.id}: evaluation {name!r} names no branch or foreach of workflow "
                f"{definition.name!r}: evaluations are branch keys and foreach item lists"
            )
    if task.kind == TaskKind.ROUTE and task.step_name not in evaluations:
        node = definition.nodes.get(task.step_name)
        if isinstance(node, BranchDef | ForeachDef):
            kind, value = (
                ("branch", "its key")
                if isinstance(node, BranchDef)
                else (
                    "foreach",
                    "its item list",
                )
            )
            raise InvalidArgumentError(
                f"task {task.id}: the ROUTE task of {kind} {node.name!r} completed without "
                f"the evaluation of {node.name!r}: evaluations must include {value} (or the "
                "error its function raised)"
            )


def _step_outcome(outcome: TaskOutcome) -> str:
    """The ``outcome`` label of a reported step run."""
    if outcome.error is None:
        return "completed"
    return "timed_out" if outcome.timed_out else "failed"
