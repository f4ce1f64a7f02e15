"""Apply decided effects through the store, inside the caller's transaction.

Simple effects (record an attempt, remove, retry or enqueue tasks) are applied in
batches. Effects that depend on stored state — a lane ending inside a group, a group
starting, an execution failing into its compensations — are applied one by one and may
produce more effects, until none are left. Everything happens in one transaction, so
a crash anywhere leaves either all of it or none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from durable_server.engine.definitions import Definition, ForeachDef, ParallelDef
from durable_server.engine.states import (
    ACTIVE_STATUS_VALUES,
    ExecutionStatus,
    TaskKind,
    allowed_from,
)
from durable_server.engine.transitions import (
    ROOT,
    CompensationDone,
    Effect,
    EndLane,
    EnqueueTask,
    FailLane,
    FinishExecution,
    Lane,
    Origin,
    RecordAttempt,
    RemoveTask,
    RetryTask,
    StartGroup,
    StepError,
    lane_start,
    walk,
)
from durable_server.metrics import Metrics
from durable_server.store import executions as ex_store
from durable_server.store import groups as group_store
from durable_server.store import step_attempts as attempt_store
from durable_server.store import tasks as task_store
from durable_server.store import timers as timer_store
from durable_server.store import waits as wait_store
from durable_server.store.db import Conn, after_commit
from durable_server.store.rows import ClaimedTask, GroupState

__all__ = ["Applier", "FinishNotice"]

DefinitionLookup = dict[str, Definition]


@dataclass(frozen=True)
class FinishNotice:
    """Who hears that executions finished (WaitExecution's waiters, see ``watch``).

    Every orchestrator, through NOTIFY on ``channel`` (sent by the finishing statement);
    this one also directly, with ``local``, once the transaction commits.
    """

    channel: str
    local: Callable[[list[str]], None]


class Applier:
    """Applies the effects of one transaction; ``ready`` collects queues with new work."""

    def __init__(
        self,
        conn: Conn,
        definitions: DefinitionLookup,
        *,
        now: datetime | None,
        max_step_runs: int,
        metrics: Metrics | None = None,
        handback: task_store.Handback | None = None,
        handback_queues: frozenset[str] = frozenset(),
        handback_room: int = 0,
        finish_notice: FinishNotice | None = None,
    ) -> None:
        self.conn = conn
        self.finish_notice = finish_notice
        # Tasks made ready here go straight to the reporting worker, up to its free room,
        # when they are of its queues (see Handback); ``leased`` collects them.
        self.handback = handback
        self.handback_queues = handback_queues
        self.handback_room = handback_room
        self.leased: list[ClaimedTask] = []
        self.definitions = definitions
        self.now = now
        self.max_step_runs = max_step_runs
        self.metrics = metrics  # counts the executions finished, once the transaction commits
        self.ready: set[str] = set()
        self.finished: set[str] = set()
        self.enqueued: set[str] = set()  # executions given a new task here
        self.timers_added = False

    async def apply(self, effects: Sequence[Effect]) -> None:
        """Apply ``effects`` and everything they lead to.

        An execution whose step ended here without a next task (a branch of a group
        ended) may be left with only waiting tasks: it is marked waiting.
        """
        ended = {
            e.task.execution_id
            for e in effects
            if isinstance(e, RecordAttempt) and e.retry_delay_secs is None
        }
        pending = list(effects)
        while pending:
            simple = [e for e in pending if isinstance(e, RecordAttempt | RemoveTask | RetryTask)]
            enqueues = [e for e in pending if isinstance(e, EnqueueTask)]
            stateful = [
                e for e in pending if not isinstance(e, RecordAttempt | RemoveTask | RetryTask)
            ]
            stateful = [e for e in stateful if not isinstance(e, EnqueueTask)]
            await self._apply_simple(simple)
            pending = await self._enqueue(enqueues)
            for effect in stateful:
                pending += await self._apply_stateful(effect)
        if quiet := ended - self.enqueued - self.finished:
            await ex_store.execution_waiting_mark_many(self.conn, execution_ids=sorted(quiet))

    # -- batches -----------------------------------------------------------------------

    async def _apply_simple(self, effects: Sequence[Effect]) -> None:
        records = [e for e in effects if isinstance(e, RecordAttempt)]
        retries = [e for e in effects if isinstance(e, RetryTask)]
        removes = [e.task_id for e in effects if isinstance(e, RemoveTask)]
        if records:  # one statement records them and deletes the finished tasks
            await attempt_store.step_attempt_insert_many(
                self.conn, [_new_attempt(r) for r in records], now=self.now, remove_task_ids=removes
            )
        else:
            await task_store.task_delete_many(self.conn, ids=removes)
        requeued = await task_store.task_requeue_many(
            self.conn, [_task_retry(r) for r in retries], now=self.now
        )
        # A delayed retry too: polls parked with no due time must learn when it is due, or
        # they sleep to their deadline (which may be long after the retry's backoff).
        self.ready |= {q for q, _ in requeued}

    async def _enqueue(self, tasks: Sequence[EnqueueTask]) -> list[Effect]:
        """Insert tasks with fresh sequence numbers; over the step-run limit, fail instead."""
        tasks = [t for t in tasks if t.origin.execution_id not in self.finished]
        if not tasks:
            return []
        counts: dict[str, int] = {}
        for t in tasks:
            counts[t.origin.execution_id] = counts.get(t.origin.execution_id, 0) + 1
        last = await ex_store.execution_sequences_take(self.conn, counts=counts)
        next_seq = {eid: last[eid] - n + 1 for eid, n in counts.items()}
        insert: list[EnqueueTask] = []
        sequences: list[int] = []
        failed: list[Effect] = []
        over: set[str] = set()
        for t in tasks:
            eid = t.origin.execution_id
            seq = next_seq[eid]
            next_seq[eid] += 1
            limit = self.definitions[t.origin.workflow_version].max_step_runs
            limit = limit or self.max_step_runs
            if seq > limit and t.kind != TaskKind.COMPENSATION:
                if eid not in over:
                    over.add(eid)
                    error = StepError(
                        "StepRunLimit",
                        f"the execution ran more than {limit} step runs (max_step_runs): "
                        "a goto loop that never ends, or a workflow that needs a higher limit",
                    )
                    failed.append(FailLane(t.origin, ROOT, error.to_json()))
                continue
            insert.append(t)
            sequences.append(seq)
        self.enqueued |= {t.origin.execution_id for t in insert}
        rows = [
            _new_task(t, seq, self._hand_back(t)) for t, seq in zip(insert, sequences, strict=True)
        ]
        leased = await task_store.task_insert_many(
            self.conn, rows, now=self.now, handback=self.handback
        )
        self.leased += leased
        self.handback_room += sum(r.lease for r in rows) - len(leased)  # a paused queue leased none
        taken = {(c.execution_id, c.sequence) for c in leased}
        self.ready |= {r.queue for r in rows if (r.execution_id, r.sequence) not in taken}
        return failed

    def _hand_back(self, task: EnqueueTask) -> bool:
        """Whether to lease ``task`` to the reporting worker now (while it has room)."""
        if self.handback is None or self.handback_room <= 0:
            return False
        if task.origin.queue not in self.handback_queues:
            return False
        self.handback_room -= 1
        return True

    # -- one at a time -------------------------------------------------------------------

    async def _apply_stateful(self, effect: Effect) -> list[Effect]:
        if isinstance(effect, FinishExecution):
            await self.finish([effect])
            return []
        if effect.origin.execution_id in self.finished:  # type: ignore[union-attr]
            return []
        if isinstance(effect, StartGroup):
            return await self._start_group(effect)
        if isinstance(effect, EndLane):
            if effect.lane.is_root:
                finish = FinishExecution(
                    effect.origin.execution_id,
                    ExecutionStatus.COMPLETED,
                    result_json=effect.result_json,
                )
                await self.finish([finish])
                return []
            return await self._lane_ended(effect.origin, effect.lane, effect.result_json, None)
        if isinstance(effect, FailLane):
            if effect.lane.is_root:
                return await self._fail_execution(effect.origin, effect.error_json)
            return await self._lane_ended(effect.origin, effect.lane, None, effect.error_json)
        if isinstance(effect, CompensationDone):
            return await self._compensation_done(effect)
        raise TypeError(f"unknown effect {effect!r}")

    # -- groups --------------------------------------------------------------------------

    async def _start_group(self, effect: StartGroup) -> list[Effect]:
        node, lane, origin = effect.node, effect.lane, effect.origin
        collect = not node.fail_fast or node.has_into
        if isinstance(node, ParallelDef):
            group_id = await group_store.group_insert_parallel(
                self.conn,
                execution_id=origin.execution_id,
                node_name=node.name,
                parent_group_id=lane.group_id,
                parent_lane=lane.index,
                lane_path=lane.path,
                input_json=effect.input_json,
                branch_names=[name for name, _ in node.branches],
                fail_fast=node.fail_fast,
                collect=collect,
            )
            if group_id is None:
                return []  # the lane it would run in ended meanwhile
            return [
                lane_start(
                    origin,
                    Lane(group_id, i, _join(lane.path, node.name, name)),
                    body,
                    effect.input_json,
                )
                for i, (name, body) in enumerate(node.branches)
            ]
        assert effect.items_json is not None
        started = await group_store.group_insert_foreach(
            self.conn,
            execution_id=origin.execution_id,
            node_name=node.name,
            parent_group_id=lane.group_id,
            parent_lane=lane.index,
            lane_path=lane.path,
            input_json=effect.input_json,
            items_json=effect.items_json,
            concurrency=node.concurrency,
            fail_fast=node.fail_fast,
            collect=collect,
        )
        if started is None:
            error = StepError(
                "ForeachItemsError", f"foreach {node.name!r}: its items are not a JSON array"
            )
            return [FailLane(origin, lane, error.to_json(node=node.name))]
        group_id, total = started
        if total == 0:
            return await self._group_done(origin, lane, node, group_id)
        first = min(node.concurrency, total)  # never lanes past the last item
        return await self._start_lanes(origin, node, group_id, lane.path, 0, first)

    async def _start_lanes(
        self, origin: Origin, node: ForeachDef, group_id: int, path: str, start: int, count: int
    ) -> list[Effect]:
        stop = start + count
        await group_store.group_lanes_start(self.conn, group_id=group_id, start=start, stop=stop)
        # Lanes past the end do not exist: the insert's lane lookup finds no such rows, so
        # only ask for the ones the caller knows exist (start + count <= total).
        return [
            lane_start(origin, Lane(group_id, i, _join(path, node.name, str(i))), node.body, None)
            for i in range(start, stop)
        ]

    async def _lane_ended(
        self, origin: Origin, lane: Lane, result_json: str | None, error_json: str | None
    ) -> list[Effect]:
        assert lane.group_id is not None
        assert lane.index is not None
        state = await group_store.group_lane_finish(
            self.conn,
            group_id=lane.group_id,
            index=lane.index,
            status="completed" if error_json is None else "failed",
            result_json=result_json,
            error_json=error_json,
        )
        if state is None or not state.changed:
            return []  # the group was cancelled, or this lane already ended
        definition = self.definitions[origin.workflow_version]
        node = definition.node(state.node_name)
        assert isinstance(node, ParallelDef | ForeachDef)
        parent = _parent_lane(state)
        if error_json is not None and state.fail_fast:
            await group_store.group_delete(self.conn, group_id=state.id)
            which = f"branch {lane.path.rsplit('/', 1)[-1]!r}"
            if isinstance(node, ForeachDef):
                which = f"item {lane.index}"
            error = StepError(
                "ParallelFailed" if isinstance(node, ParallelDef) else "ForeachFailed",
                f"{which} of {type(node).__name__[:-3].lower()} {node.name!r} failed",
            )
            return [FailLane(origin, parent, _with_cause(error, error_json))]
        if state.finished == state.total:
            return await self._group_done(origin, parent, node, state.id)
        running = state.started - state.finished
        room = min(state.concurrency - running, state.total - state.started)
        if isinstance(node, ForeachDef) and room > 0:
            return await self._start_lanes(
                origin, node, state.id, state.lane_path, state.started, room
            )
        return []

    async def _group_done(
        self, origin: Origin, parent: Lane, node: ParallelDef | ForeachDef, group_id: int
    ) -> list[Effect]:
        input_json, output_json = await group_store.group_output(self.conn, group_id=group_id)
        await group_store.group_delete(self.conn, group_id=group_id)
        if node.has_into:
            into_input = f'{{"data": {input_json}, "results": {output_json}}}'
            return [EnqueueTask(origin, parent, TaskKind.INTO, node.name, into_input)]
        definition = self.definitions[origin.workflow_version]
        return list(walk(definition, definition.after(node.name), output_json, {}, origin, parent))

    # -- failure and compensation ------------------------------------------------------------

    async def _fail_execution(self, origin: Origin, error_json: str) -> list[Effect]:
        definition = self.definitions[origin.workflow_version]
        following = await self._next_compensation(origin, definition, before=2**31 - 1)
        if following is not None:
            began = await ex_store.execution_compensation_begin(
                self.conn,
                execution_id=origin.execution_id,
                error_json=error_json,
                allowed_from=allowed_from(ExecutionStatus.COMPENSATING),
            )
            if began:
                await self._stop_everything(origin.execution_id)
                return [following]
        finish = FinishExecution(origin.execution_id, ExecutionStatus.FAILED, error_json=error_json)
        await self.finish([finish])
        return []

    async def _compensation_done(self, effect: CompensationDone) -> list[Effect]:
        origin = effect.origin
        if effect.failed:
            await ex_store.execution_compensation_failed_set(
                self.conn, execution_id=origin.execution_id
            )
        definition = self.definitions[origin.workflow_version]
        following = await self._next_compensation(
            origin, definition, before=effect.compensated_sequence
        )
        if following is not None:
            return [following]
        failed = await ex_store.execution_compensation_failed_get(
            self.conn, execution_id=origin.execution_id
        )
        status = ExecutionStatus.COMPENSATION_FAILED if failed else ExecutionStatus.COMPENSATED
        await self.finish([FinishExecution(origin.execution_id, status)])
        return []

    async def _next_compensation(
        self, origin: Origin, definition: Definition, *, before: int
    ) -> EnqueueTask | None:
        by_step = {c.step_name: c for c in definition.compensations.values()}
        if not by_step:
            return None
        found = await attempt_store.step_attempt_last_compensable(
            self.conn, execution_id=origin.execution_id, steps=sorted(by_step), before=before
        )
        if found is None:
            return None
        step_name, sequence, result_json = found
        comp = by_step[step_name]
        return EnqueueTask(
            origin,
            ROOT,
            TaskKind.COMPENSATION,
            comp.name,
            result_json or "null",
            comp.timeout_secs,
            compensated_step=step_name,
            compensated_sequence=sequence,
        )

    async def _stop_everything(self, execution_id: str) -> None:
        await group_store.group_delete_for_executions(self.conn, execution_ids=[execution_id])
        await task_store.task_delete_for_executions(self.conn, execution_ids=[execution_id])

    async def finish(self, finishes: Sequence[FinishExecution]) -> list[str]:
        """End executions (guarded by the transition table); drop their tasks and timers.

        Only what a finished execution left behind is cleaned up (its row says what), so
        the common end of a plain workflow costs one statement.
        """
        ended: list[ex_store.Finished] = []
        notice = self.finish_notice
        for status in sorted({f.status for f in finishes}):
            group = [f for f in finishes if f.status == status]
            changed = await ex_store.execution_finish_many(
                self.conn,
                [_execution_finish(f) for f in group],
                allowed_from=allowed_from(status),
                now=self.now,
                notify_channel=notice.channel if notice else None,
            )
            ended += changed
            if self.metrics is not None:
                self.metrics.count_finished((e.workflow_name, status.value) for e in changed)
        done = [e.id for e in ended]
        if not done:
            return done
        if notice is not None:
            after_commit(lambda: notice.local(done))
        if groups := [e.id for e in ended if e.has_groups]:
            await group_store.group_delete_for_executions(self.conn, execution_ids=groups)
        if tasks := [e.id for e in ended if e.has_tasks]:
            await task_store.task_delete_for_executions(self.conn, execution_ids=tasks)
        if timers := [e.id for e in ended if e.has_timers]:
            await timer_store.timer_delete_for_executions(self.conn, execution_ids=timers)
        self.finished |= set(done)
        parents = {e.id for e in ended if e.has_children}
        cancelled = [
            f.execution_id
            for f in finishes
            if f.status == ExecutionStatus.CANCELLED and f.execution_id in parents
        ]
        if cancelled:
            await self._cancel_descendants(cancelled)
        if children := [e.id for e in ended if e.has_parent]:
            await self._wake_parents(children)
        return done

    async def _cancel_descendants(self, execution_ids: list[str]) -> None:
        """Cancel the unfinished children (and theirs) of cancelled executions."""
        below = await ex_store.execution_descendants_active(
            self.conn, execution_ids=execution_ids, active=ACTIVE_STATUS_VALUES
        )
        error = StepError("Cancelled", "cancelled with its parent execution").to_json()
        await self.finish(
            [FinishExecution(e, ExecutionStatus.CANCELLED, error_json=error) for e in below]
        )

    async def _wake_parents(self, ended: list[str]) -> None:
        """Wake the parent steps waiting on these (just ended) children."""
        waits = await wait_store.wait_take_for_children(self.conn, child_ids=ended)
        if not waits:
            return
        children = sorted({w.child_id for w in waits if w.child_id})
        outcomes = await wait_store.wait_child_outcomes(
            self.conn, child_ids=children, active=ACTIVE_STATUS_VALUES
        )
        await self.wake(
            [(w.task_id, w.wait_index, outcomes[w.child_id] or "null") for w in waits if w.child_id]
        )

    async def wake(self, wakes: Sequence[tuple[int, int, str]]) -> None:
        """Record (task id, wait index, outcome) in waiting tasks and make them ready."""
        woken = await task_store.task_wake_many(self.conn, wakes=wakes, now=self.now)
        await ex_store.execution_running_mark_many(
            self.conn, execution_ids=sorted({e for _, e in woken})
        )
        self.ready |= {q for q, _ in woken}


# -- effects as the rows the store writes ----------------------------------------------------


def _new_task(task: EnqueueTask, sequence: int, lease: bool) -> task_store.NewTask:
    origin, lane = task.origin, task.lane
    return task_store.NewTask(
        origin.execution_id,
        sequence,
        task.name,
        origin.queue,
        origin.priority,
        origin.workflow_version,
        task.timeout_secs,
        task.input_json,
        task.kind.value,
        lane.group_id,
        lane.index,
        lane.path,
        task.compensated_step,
        task.compensated_sequence,
        lease,
    )


def _new_attempt(record: RecordAttempt) -> attempt_store.NewAttempt:
    task = record.task
    return attempt_store.NewAttempt(
        task.execution_id,
        task.sequence,
        task.attempt,
        task.step_name,
        record.status.value,
        record.result_json,
        record.error_json,
        task.worker_id,
        task.leased_at,
        record.retry_delay_secs,
        task.kind,
        task.lane_path,
        task.id,
        record.final,
    )


def _task_retry(retry: RetryTask) -> task_store.TaskRetry:
    return task_store.TaskRetry(retry.task_id, retry.delay_secs, retry.failure, retry.loss)


def _execution_finish(finish: FinishExecution) -> ex_store.ExecutionFinish:
    return ex_store.ExecutionFinish(
        finish.execution_id, finish.status.value, finish.result_json, finish.error_json
    )


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _parent_lane(state: GroupState) -> Lane:
    if state.parent_group_id is None:
        return ROOT
    return Lane(state.parent_group_id, state.parent_lane, state.lane_path)


def _with_cause(error: StepError, cause_json: str) -> str:
    """``error`` as JSON with the lane's own error (JSON text) nested as its cause."""
    doc = error.to_json()
    return f'{doc[:-1]}, "cause": {cause_json}}}'
