"""Retries on a real orchestrator and worker, with time moved by an injected clock.

A step fails twice and succeeds on its third attempt. The clock never moves on its own,
so each retry runs only once the test advances time by the policy's delay, and the
recorded attempt times show exactly which delay the orchestrator applied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from durable import Client, RetryPolicy, StepContext, Workflow
from durable._models import Execution, ExecutionStatus, StepAttemptStatus
from durable_server.clock import ManualClock
from durable_worker import Worker
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until


class Flaky(RuntimeError):
    """The error the flaky step raises on its first attempts."""


def flaky_workflow(policy: RetryPolicy, fail_times: int, seen: list[int]) -> Workflow:
    wf = Workflow("flaky")

    @wf.step
    def prepare(data: Any) -> Any:
        return {"n": data["n"]}

    @wf.step(retry=policy)
    def call_service(data: Any, ctx: StepContext) -> Any:
        seen.append(ctx.attempt)
        if ctx.attempt <= fail_times:
            raise Flaky(f"service unavailable (attempt {ctx.attempt})")
        return {"n": data["n"], "answered_on": ctx.attempt}

    return wf


@pytest.fixture
async def client_and_clock(
    database_url: str, manual_clock: ManualClock
) -> AsyncIterator[tuple[str, ManualClock]]:
    async with running_orchestrator(database_url, clock=manual_clock) as orch:
        yield orch.address, manual_clock


@pytest.mark.parametrize(
    ("policy", "expected_delays"),
    [
        (
            RetryPolicy(
                max_attempts=3,
                backoff="exponential",
                initial_delay=timedelta(seconds=10),
                multiplier=3.0,
                jitter=0.0,
            ),
            [10.0, 30.0],
        ),
        (
            RetryPolicy(
                max_attempts=3, backoff="linear", initial_delay=timedelta(seconds=7), jitter=0.0
            ),
            [7.0, 14.0],
        ),
        (
            RetryPolicy(
                max_attempts=3, backoff="fixed", initial_delay=timedelta(seconds=5), jitter=0.0
            ),
            [5.0, 5.0],
        ),
        (
            RetryPolicy(
                max_attempts=3,
                backoff="exponential",
                initial_delay=timedelta(seconds=40),
                max_delay=timedelta(seconds=50),
                jitter=0.0,
            ),
            [40.0, 50.0],
        ),
    ],
    ids=["exponential", "linear", "fixed", "capped"],
)
async def test_step_failing_twice_succeeds_on_third_attempt_after_policy_delays(
    client_and_clock: tuple[str, ManualClock], policy: RetryPolicy, expected_delays: list[float]
) -> None:
    address, clock = client_and_clock
    seen: list[int] = []
    wf = flaky_workflow(policy, fail_times=2, seen=seen)
    async with Worker(address, [wf], poll_wait=timedelta(seconds=1)), Client(address) as client:
        execution_id = await client.start(wf, {"n": 5})
        for failures, delay in enumerate(expected_delays, start=1):
            ex = await wait_until(
                lambda n=failures: _failed_count(client, execution_id, n),
                timeout=10,
            )
            failed = [a for a in ex.steps if a.step_name == "call_service"][-1]
            assert failed.status == StepAttemptStatus.FAILED
            assert failed.error is not None
            assert failed.error.type == "Flaky"
            assert failed.finished_at is not None
            assert failed.retry_at is not None
            assert (failed.retry_at - failed.finished_at).total_seconds() == pytest.approx(delay)
            # Just short of the delay nothing is due; at the delay the next attempt runs.
            clock.advance(timedelta(seconds=delay) - timedelta(milliseconds=1))
            assert seen == list(range(1, failures + 1))
            clock.advance(timedelta(milliseconds=1))

        await client.wait(execution_id, timeout=10)
        ex = await client.get_execution(execution_id, include_steps=True)

    assert ex.status == ExecutionStatus.COMPLETED
    assert ex.result == {"n": 5, "answered_on": 3}
    assert seen == [1, 2, 3]
    calls = [a for a in ex.steps if a.step_name == "call_service"]
    assert [(a.attempt, a.status) for a in calls] == [
        (1, StepAttemptStatus.FAILED),
        (2, StepAttemptStatus.FAILED),
        (3, StepAttemptStatus.COMPLETED),
    ]
    # Each retry started exactly when the policy said it was due (the clock only moved then).
    for before, after, delay in zip(calls, calls[1:], expected_delays, strict=False):
        assert before.finished_at is not None
        gap = (after.started_at - before.finished_at).total_seconds()
        assert gap == pytest.approx(delay)


async def _failed_count(client: Client, execution_id: str, failures: int) -> Execution | None:
    ex = await client.get_execution(execution_id, include_steps=True)
    failed = [
        a
        for a in ex.steps
        if a.step_name == "call_service" and a.status == StepAttemptStatus.FAILED
    ]
    return ex if len(failed) >= failures else None


async def test_step_failing_every_attempt_fails_the_execution_after_max_attempts(
    client_and_clock: tuple[str, ManualClock],
) -> None:
    address, clock = client_and_clock
    seen: list[int] = []
    policy = RetryPolicy(
        max_attempts=2, backoff="fixed", initial_delay=timedelta(seconds=3), jitter=0.0
    )
    wf = flaky_workflow(policy, fail_times=99, seen=seen)
    async with Worker(address, [wf], poll_wait=timedelta(seconds=1)), Client(address) as client:
        execution_id = await client.start(wf, {"n": 1})
        ex = await wait_until(lambda: _failed_count(client, execution_id, 1), timeout=10)
        clock.advance(timedelta(seconds=3))
        await client.wait(execution_id, timeout=10)
        ex = await client.get_execution(execution_id, include_steps=True)

    assert ex.status == ExecutionStatus.FAILED
    assert seen == [1, 2]
    assert ex.error is not None
    assert ex.error.type == "Flaky"
    last = [a for a in ex.steps if a.step_name == "call_service"][-1]
    assert last.attempt == 2
    assert last.retry_at is None


async def test_non_retryable_error_fails_at_once(
    client_and_clock: tuple[str, ManualClock],
) -> None:
    address, _ = client_and_clock
    seen: list[int] = []
    policy = RetryPolicy(max_attempts=5, non_retryable_errors=["Flaky"])
    wf = flaky_workflow(policy, fail_times=99, seen=seen)
    async with Worker(address, [wf], poll_wait=timedelta(seconds=1)), Client(address) as client:
        execution_id = await client.start(wf, {"n": 1})
        await client.wait(execution_id, timeout=10)
        ex = await client.get_execution(execution_id, include_steps=True)

    assert ex.status == ExecutionStatus.FAILED
    assert seen == [1]


async def test_a_retry_runs_when_due_while_the_worker_long_polls(
    client_and_clock: tuple[str, ManualClock],
) -> None:
    # The worker's poll is parked for a minute; the backoff is 5 s: the retry must not
    # wait for the poll's deadline.
    address, clock = client_and_clock
    seen: list[int] = []
    policy = RetryPolicy(
        max_attempts=2, backoff="fixed", initial_delay=timedelta(seconds=5), jitter=0.0
    )
    wf = flaky_workflow(policy, fail_times=1, seen=seen)
    async with Worker(address, [wf], poll_wait=timedelta(seconds=60)), Client(address) as client:
        execution_id = await client.start(wf, {"n": 2})
        await wait_until(lambda: _failed_count(client, execution_id, 1), timeout=10)
        clock.advance(timedelta(seconds=5))
        done = await client.wait(execution_id, timeout=10)

    assert done.status == ExecutionStatus.COMPLETED
    assert seen == [1, 2]
