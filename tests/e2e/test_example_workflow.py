"""The README's example end to end: PostgreSQL, an orchestrator and a worker *process*.

The worker runs as ``python -m durable_worker examples.order`` (what ``durable-worker
examples.order`` runs), so the workflow crosses every real boundary: module loading,
registration, polling, leases and reports over gRPC, state in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from durable import Client, ExecutionStatus, StepAttemptStatus
from tests.helpers.orchestrator import running_orchestrator

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
WAIT_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
READY_LINE = re.compile(r"^durable-worker ready worker_id=(\S+)")


@dataclass
class WorkerProcess:
    """A ``durable-worker`` subprocess and everything it printed so far."""

    process: asyncio.subprocess.Process
    worker_id: str = ""
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def output(self) -> str:
        """Both streams, for failure messages."""
        return (
            f"worker pid {self.process.pid}, exit code {self.process.returncode}\n"
            f"--- stdout ---\n{''.join(self.stdout)}--- stderr ---\n{''.join(self.stderr)}"
        )


async def _pump(
    stream: asyncio.StreamReader | None,
    lines: list[str],
    ready: asyncio.Future[str] | None = None,
) -> None:
    """Read a pipe to its end (so the worker never blocks on a full pipe).

    ``ready`` gets the worker id of the first ``durable-worker ready`` line.
    """
    assert stream is not None
    while line := (await stream.readline()).decode(errors="replace"):
        lines.append(line)
        if ready is not None and not ready.done() and (match := READY_LINE.match(line)):
            ready.set_result(match.group(1))


async def _wait_ready(worker: WorkerProcess, ready: asyncio.Future[str]) -> str:
    """The worker id once the worker says it is ready; fail if it exits or times out."""
    exited = asyncio.ensure_future(worker.process.wait())
    try:
        await asyncio.wait({ready, exited}, timeout=READY_TIMEOUT, return_when="FIRST_COMPLETED")
    finally:
        exited.cancel()
    if ready.done():
        return ready.result()
    if worker.process.returncode is not None:
        raise AssertionError(f"the worker exited before it was ready\n{worker.output()}")
    raise AssertionError(f"the worker was not ready within {READY_TIMEOUT}s\n{worker.output()}")


@contextlib.asynccontextmanager
async def worker_process(address: str) -> AsyncIterator[WorkerProcess]:
    """``python -m durable_worker examples.order`` against ``address``, ready; stopped on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_SERVER_ADDRESS=address, PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "durable_worker",
        "examples.order",
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = WorkerProcess(process)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    pumps = [
        asyncio.create_task(_pump(process.stdout, worker.stdout, ready)),
        asyncio.create_task(_pump(process.stderr, worker.stderr)),
    ]
    try:
        worker.worker_id = await _wait_ready(worker, ready)
        yield worker
    finally:
        if process.returncode is None:
            process.terminate()  # SIGTERM: the worker drains and exits 0
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.wait_for(asyncio.gather(*pumps), STOP_TIMEOUT)


async def test_example_workflow_runs_on_a_worker_process(database_url: str) -> None:
    async with running_orchestrator(database_url) as orch:
        async with worker_process(orch.address) as worker:
            # The default worker id names the process that ran the steps.
            assert f"-{worker.process.pid}-" in worker.worker_id, worker.output()
            async with Client(orch.address) as client:
                execution_id = await client.start(
                    "process_order", {"id": 1, "items": ["book", "pen"]}
                )
                done = await client.wait(execution_id, timeout=WAIT_TIMEOUT)
                execution = await client.get_execution(execution_id, include_steps=True)

            assert done.status is ExecutionStatus.COMPLETED, worker.output()
            assert execution.status is ExecutionStatus.COMPLETED
            assert execution.error is None
            assert execution.result == {
                "order_id": 1,
                "items": ["book", "pen"],
                "receipt": "rcpt-1",
            }
            assert execution.input == {"id": 1, "items": ["book", "pen"]}
            assert execution.current_step == ""
            assert execution.finished_at is not None

            steps = [(s.step_name, s.sequence, s.attempt, s.status) for s in execution.steps]
            assert steps == [
                ("validate", 1, 1, StepAttemptStatus.COMPLETED),
                ("charge", 2, 1, StepAttemptStatus.COMPLETED),
            ], worker.output()
            validate, charge = execution.steps
            assert validate.result == {"order_id": 1, "items": ["book", "pen"]}
            assert charge.result == execution.result
            for step in execution.steps:
                assert step.worker_id == worker.worker_id
                assert step.error is None
                assert step.started_at is not None
                assert step.finished_at is not None
                assert step.started_at <= step.finished_at

        # The worker drained on SIGTERM and exited cleanly.
        assert worker.process.returncode == 0, worker.output()


async def test_a_failing_step_fails_the_execution(database_url: str) -> None:
    async with running_orchestrator(database_url) as orch:
        async with worker_process(orch.address) as worker:
            async with Client(orch.address) as client:
                execution_id = await client.start("process_order", {"id": 2, "items": []})
                await client.wait(execution_id, timeout=WAIT_TIMEOUT)
                execution = await client.get_execution(execution_id, include_steps=True)

    assert execution.status is ExecutionStatus.FAILED, worker.output()
    assert execution.result is None
    assert execution.error is not None
    assert execution.error.type == "ValueError"
    assert "an order needs at least one item" in execution.error.message
    # validate has no retry policy: one failed attempt, and charge never ran.
    assert [(s.step_name, s.attempt, s.status) for s in execution.steps] == [
        ("validate", 1, StepAttemptStatus.FAILED)
    ]
    (attempt,) = execution.steps
    assert attempt.worker_id == worker.worker_id
    assert attempt.error is not None
    assert attempt.error.type == "ValueError"
    assert attempt.error.message == "an order needs at least one item"
    assert "ValueError" in attempt.error.traceback
    assert attempt.retry_at is None


async def test_idempotency_key_returns_the_first_execution(database_url: str) -> None:
    async with running_orchestrator(database_url) as orch:
        async with worker_process(orch.address) as worker:
            async with Client(orch.address) as client:
                first = await client.start_execution(
                    "process_order", {"id": 3, "items": ["mug"]}, idempotency_key="order-3"
                )
                assert first.created
                done = await client.wait(first.execution_id, timeout=WAIT_TIMEOUT)
                assert done.status is ExecutionStatus.COMPLETED, worker.output()

                # Same key, even with another input: the first execution, not a new one.
                again = await client.start_execution(
                    "process_order", {"id": 4, "items": ["cup"]}, idempotency_key="order-3"
                )
                same_id = await client.start(
                    "process_order", {"id": 3, "items": ["mug"]}, idempotency_key="order-3"
                )
                assert again.execution_id == first.execution_id
                assert not again.created
                assert same_id == first.execution_id

                page = await client.list_executions(workflow="process_order")
                assert [e.id for e in page.executions] == [first.execution_id]
                assert page.total_count == 1
                execution = await client.get_execution(first.execution_id)
                assert execution.idempotency_key == "order-3"
                assert execution.input == {"id": 3, "items": ["mug"]}
                assert execution.result == {"order_id": 3, "items": ["mug"], "receipt": "rcpt-3"}
