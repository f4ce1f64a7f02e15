"""Run one leased task: find its job, run it with its timeout, and hand the report on.

Async steps run on the event loop; sync steps run in a thread pool sized to the
worker's concurrency, where their input is also decoded, their result encoded and the
branch keys and foreach items after them evaluated, so neither large JSON nor user
code blocks the loop (see :mod:`durable_worker.jobs`). Routes run in the pool too.

A thread cannot be killed. When a sync step times out, or its lease is lost, the
runner reports the timeout (or nothing, for a lost lease) at once and drops the
thread's eventual result; until that thread returns it still counts against the
concurrency limit, so a stuck step never lets the worker take more work than it has
threads for (see :attr:`Runner.busy_threads`).

A step that waits (``ctx.call_workflow`` for a child, ``ctx.sleep``, ``ctx.sleep_until``,
``ctx.wait_for_event``, ``wait_for_any``, ``wait_for_all``, ``wait_for_input``) becomes a
TaskSuspension (sent with SuspendTasks) instead of a completion, with no evaluations: it
holds no slot while it waits, and runs again when the wait is over. Only a step may
wait; an into merge or a compensation that tries fails for good
(``CallWorkflowOutsideStep`` for a child call, ``WaitOutsideStep`` for the others).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from opentelemetry.trace import Tracer

from durable import TaskKind, Workflow
from durable._shared import tracer as durable_tracer
from durable.v1 import worker_service_pb2 as pb
from durable_worker import capture, outcome
from durable_worker.catalog import Job, StepCatalog
from durable_worker.config import DEFAULT_CONCURRENCY, DEFAULT_MAX_PAYLOAD_BYTES
from durable_worker.jobs import Done, Suspended, run_async, run_sync
from durable_worker.outcome import Report
from durable_worker.tracing import attempt_span, record_outcome

__all__ = ["DEFAULT_HEARTBEAT_INTERVAL", "ReportSink", "Runner"]

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 10.0
"""Seconds between heartbeats when no running task asks for a shorter interval."""


class ReportSink(Protocol):
    """Where the runner puts the report of each finished or suspended step (the reporter)."""

    def put(self, report: Report) -> None:
        """Queue ``report`` for sending; must not block."""


class _StepTimedOutError(Exception):
    """The step's own timeout elapsed (as opposed to a TimeoutError the step raised)."""


@dataclass
class _Running:
    """A task being run, and how to stop caring about it."""

    task: pb.Task
    handle: asyncio.Task[Any] | None
    heartbeat_seconds: float | None
    abandoned: bool = False
    started: bool = False


def _seconds(task: pb.Task, field: Literal["timeout", "heartbeat_interval"]) -> float | None:
    """A Duration field of the task in seconds; None when unset or not positive."""
    if not task.HasField(field):
        return None
    seconds = getattr(task, field).ToTimedelta().total_seconds()
    return seconds if seconds > 0 else None


def _outside_step(task: pb.Task, job: Job, done: Suspended) -> pb.TaskFailure:
    """The failure of an into merge or a compensation that tried to wait."""
    what = f"{job.kind.value} {job.node!r}"
    if isinstance(done.wait, pb.ChildWait):
        return outcome.worker_failure(
            task,
            "CallWorkflowOutsideStep",
            f"{what} called ctx.call_workflow, but only a step can wait for a child workflow "
            "(ctx.start_workflow starts one without waiting)",
        )
    return outcome.worker_failure(
        task,
        "WaitOutsideStep",
        f"{what} called ctx.{done.method}, but only a step can wait",
    )


class Runner:
    """Runs leased tasks, at most ``concurrency`` at a time, and reports each once.

    Args:
        workflows: The workflows this worker registered.
        versions: Workflow name -> the version the orchestrator returned at registration.
            Read on every task, so the worker can update it when it registers again.
        sink: Receives one report per finished step (none for an abandoned one).
        concurrency: Steps running at the same time, at most.
        max_payload_bytes: Results larger than this, encoded, fail with PayloadTooLarge.
        max_log_bytes: Log text kept per task run (see :mod:`durable_worker.capture`).
        executor: Runs sync steps; by default a thread pool of ``concurrency`` threads,
            shut down by :meth:`close`.
    """

    def __init__(
        self,
        workflows: Sequence[Workflow],
        versions: Mapping[str, str],
        sink: ReportSink,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        executor: Executor | None = None,
        max_log_bytes: int = capture.DEFAULT_MAX_LOG_BYTES,
        tracer: Tracer | None = None,
        worker_id: str = "",
    ) -> None:
        self._catalog = StepCatalog(workflows, versions)
        self._tracer = tracer or durable_tracer()
        self.worker_id = worker_id
        self._sink = sink
        self._concurrency = concurrency
        self._max_payload_bytes = max_payload_bytes
        self._max_log_bytes = max_log_bytes
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="durable-step"
        )
        self._running: dict[int, _Running] = {}
        self._threads = 0
        self._orphans = 0
        self._reserved = 0
        self._changed = asyncio.Event()
        self._interval_in_use = DEFAULT_HEARTBEAT_INTERVAL
        self._interval_shortened = asyncio.Event()

    # -- capacity ----------------------------------------------------------------------

    @property
    def free_slots(self) -> int:
        """How many more tasks the runner can take now (slots reserved are not free)."""
        return max(self._concurrency - len(self._running) - self._orphans - self._reserved, 0)

    def reserve(self, most: int) -> int:
        """Hold up to ``most`` free slots for tasks a call in flight may bring; how many.

        The poller and the reporter (which asks for next tasks with its reports) each
        reserve what they ask for, so together they never lease more tasks than there are
        slots. Start the tasks that arrive, then :meth:`unreserve` the same number.
        """
        taken = max(min(most, self.free_slots), 0)
        self._reserved += taken
        return taken

    def unreserve(self, count: int) -> None:
        """Give back slots :meth:`reserve` held (after starting the tasks that came)."""
        self._reserved -= count
        self._notify()

    @property
    def busy_threads(self) -> int:
        """Sync steps still running in threads, including those whose result is dropped."""
        return self._threads

    async def wait_for_slot(self) -> None:
        """Return once at least one slot is free."""
        while self.free_slots <= 0:
            await self._changed.wait()

    async def wait_idle(self) -> None:
        """Return once no task is running (abandoned threads are not waited for)."""
        while self._running:
            await self._changed.wait()

    def _notify(self) -> None:
        # Wake every waiter once, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    # -- what is running ---------------------------------------------------------------

    def leases(self) -> list[pb.TaskLease]:
        """The leases of the tasks running now (abandoned ones excluded)."""
        return [outcome.lease_of(r.task) for r in self._running.values() if not r.abandoned]

    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats: the shortest any running task asks for.

        The caller (the heartbeat loop) is taken to use this value until
        :meth:`wait_interval_shortened` returns.
        """
        interval = min(
            (r.heartbeat_seconds for r in self._running.values() if r.heartbeat_seconds),
            default=DEFAULT_HEARTBEAT_INTERVAL,
        )
        self._interval_in_use = interval
        self._interval_shortened.clear()
        return interval

    async def wait_interval_shortened(self) -> None:
        """Return once a task started that needs heartbeats more often than the interval in use.

        Under steady load this never fires, so the heartbeat loop does not wake per task.
        """
        await self._interval_shortened.wait()

    def abandon(self, task_ids: Iterable[int]) -> list[int]:
        """Stop caring about these tasks: cancel async steps, drop sync steps' results.

        Nothing is reported for an abandoned task. Returns the ids that were running.
        """
        abandoned = []
        for task_id in task_ids:
            running = self._running.get(task_id)
            if running is None or running.abandoned:
                continue
            running.abandoned = True
            abandoned.append(task_id)
            if running.started and running.handle is not None and not running.handle.done():
                running.handle.cancel()  # one not started yet sees ``abandoned`` and returns
        return abandoned

    # -- running -----------------------------------------------------------------------

    def start(self, task: pb.Task) -> asyncio.Task[None]:
        """Run ``task`` in the background; its slot is taken at once, not when it starts."""
        running = self._take_slot(task)
        handle = asyncio.get_running_loop().create_task(
            self._run(task, running), name=f"durable-task-{task.task_id}"
        )
        running.handle = handle
        # Cancelled before it ever ran (a stop), the task still frees its slot.
        handle.add_done_callback(lambda _: self._release(task, running))
        return handle

    async def run(self, task: pb.Task) -> None:
        """Run ``task`` to its end and put its report in the sink, unless it is abandoned."""
        running = self._take_slot(task)
        running.handle = asyncio.current_task()
        await self._run(task, running)

    def _take_slot(self, task: pb.Task) -> _Running:
        running = _Running(task, None, _seconds(task, "heartbeat_interval"))
        self._running[task.task_id] = running
        if running.heartbeat_seconds and running.heartbeat_seconds < self._interval_in_use:
            self._interval_shortened.set()
        self._notify()
        return running

    def _release(self, task: pb.Task, running: _Running) -> None:
        """Free the task's slot (once; later calls do nothing)."""
        if self._running.get(task.task_id) is running:
            del self._running[task.task_id]
            self._notify()

    async def _run(self, task: pb.Task, running: _Running) -> None:
        running.started = True
        if running.abandoned:
            self._release(task, running)
            return
        try:
            with attempt_span(self._tracer, task, self.worker_id) as span:
                report = await self._execute(task)
                record_outcome(span, report)
        except asyncio.CancelledError:
            if not running.abandoned:
                raise
            report = None
            if running.handle is not None:
                running.handle.uncancel()
        finally:
            self._release(task, running)
        if running.abandoned or report is None:
            log.warning(
                "task %d (%s.%s) abandoned: its lease was lost or given back; "
                "nothing is reported for it",
                task.task_id,
                task.workflow_name,
                task.step_name,
            )
            return
        self._sink.put(report)

    async def _execute(self, task: pb.Task) -> Report:
        """The report for one run of ``task``, with what it logged (secrets masked)."""
        step_log = capture.StepLog(self._max_log_bytes)
        with capture.capturing(step_log):
            report = await self._outcome(task)
        capture.attach(report, step_log)
        return report

    async def _outcome(self, task: pb.Task) -> Report:
        """The report for one run of ``task``."""
        job = self._catalog.resolve(task)
        if isinstance(job, pb.TaskFailure):
            return job
        seconds = _seconds(task, "timeout")
        try:
            done = await self._invoke(job, task, seconds)
        except _StepTimedOutError:
            assert seconds is not None
            return outcome.timeout_failure(task, seconds)
        except Exception as exc:
            return outcome.failure(task, outcome.error_from_exception(exc))
        too_large = self._children_too_large(task, done)
        if too_large is not None:
            return too_large
        if isinstance(done, Suspended):
            if job.kind is not TaskKind.STEP:
                return _outside_step(task, job, done)
            return outcome.suspension(task, done.children, done.wait)
        size = outcome.payload_size(done.result_json)
        if size > self._max_payload_bytes:
            return outcome.too_large_failure(task, size, self._max_payload_bytes)
        return outcome.completion(
            task,
            done.result_json,
            goto_target=done.goto_target,
            evaluations=outcome.evaluations_to_proto(done.evaluations, self._max_payload_bytes),
            children=done.children,
        )

    def _children_too_large(self, task: pb.Task, done: Done | Suspended) -> pb.TaskFailure | None:
        """The failure of a run whose child inputs (or timeout value) are over the limit."""
        limit = self._max_payload_bytes
        for start in done.children:
            size = outcome.payload_size(start.input_json)
            if size > limit:
                return outcome.child_too_large_failure(task, "input", start, size, limit)
        if isinstance(done, Suspended) and not isinstance(done.wait, pb.SleepWait):
            size = outcome.payload_size(done.wait.timeout_value_json)
            if size > limit:
                return outcome.child_too_large_failure(
                    task, "timeout value", done.wait, size, limit
                )
        return None

    async def _invoke(self, job: Job, task: pb.Task, seconds: float | None) -> Done | Suspended:
        """Run the job within its timeout; returns what to report."""
        call: Awaitable[Done | Suspended] = (
            run_async(job, task) if job.is_async else self._in_thread(run_sync, job, task)
        )
        scope = asyncio.timeout(seconds)
        try:
            async with scope:
                return await call
        except TimeoutError:
            if scope.expired():
                raise _StepTimedOutError from None
            raise  # the step's own TimeoutError: an ordinary failure

    async def _in_thread(
        self, fn: Callable[[Job, pb.Task], Done | Suspended], job: Job, task: pb.Task
    ) -> Done | Suspended:
        """Run ``fn`` in the executor; on timeout or cancel, leave the thread to finish alone."""
        # In a copy of this task's context: the step's log buffer (and secrets) go along.
        context = contextvars.copy_context()
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, context.run, fn, job, task
        )
        self._threads += 1
        future.add_done_callback(self._thread_done)
        try:
            return await asyncio.shield(future)
        except BaseException:
            if not future.done():
                self._orphans += 1
                future.add_done_callback(self._orphan_done)
            raise

    def _thread_done(self, future: asyncio.Future[Done | Suspended]) -> None:
        self._threads -= 1
        if not future.cancelled():
            future.exception()  # retrieved, so a dropped result never logs "never retrieved"

    def _orphan_done(self, future: asyncio.Future[Done | Suspended]) -> None:
        self._orphans -= 1
        self._notify()

    def close(self) -> None:
        """Shut down the thread pool (if the runner made it) without waiting for threads."""
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
