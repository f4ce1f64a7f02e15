"""What the README tells a new user about defaults and error shapes holds, and is written there.

Each test runs the behaviour through the testing toolkit (a real orchestrator and worker)
and checks that the README still says it, so the two cannot drift apart silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from durable import ExecutionStatus, NonRetryableError, NotFoundError, StepContext, Workflow
from durable.testing import WorkflowTestEnv
from tests.helpers import db

README = (Path(__file__).parents[2] / "README.md").read_text()
DATABASE_URL = db.url_for("postgres")


def readme_says(*phrases: str) -> None:
    """Each phrase appears in the README (whitespace and line breaks ignored)."""
    flat = re.sub(r"\s+", " ", README)
    for phrase in phrases:
        assert phrase in flat, f"the README no longer says {phrase!r}"


once = Workflow("claims_once")
calls: list[int] = []


@once.step
def flaky(data: Any, ctx: StepContext) -> Any:
    calls.append(ctx.attempt)
    raise RuntimeError("down")


saga = Workflow("claims_saga")


def release(data: Any) -> None:
    return None


@saga.step(compensate=release)
def reserve(data: Any) -> Any:
    return data


@saga.step
def ship(data: Any) -> Any:
    raise NonRetryableError("no courier for this address")


group = Workflow("claims_group")


def good(data: Any) -> int:
    return 1


def broken(data: Any) -> int:
    raise ValueError("the service is gone")


group.parallel("sources", {"good": [good], "bad": [broken]})


async def test_a_step_without_retry_runs_once() -> None:
    readme_says("A step without `retry=` runs once")
    calls.clear()
    async with WorkflowTestEnv([once], database_url=DATABASE_URL) as env:
        execution = await env.execute(once, {})
    assert execution.status is ExecutionStatus.FAILED
    assert calls == [1]


def test_a_lambda_step_needs_a_name() -> None:
    readme_says('needs one: `wf.step(lambda d: d, name="noop")`')
    wf = Workflow("claims_lambda")
    with pytest.raises(ValueError, match=r"name=\.\.\."):
        wf.step(lambda d: d)
    wf.step(lambda d: d, name="noop")  # accepted


async def test_attempts_come_only_with_include_steps() -> None:
    readme_says("its `steps` (every attempt", "come only with `include_steps=True`")
    async with WorkflowTestEnv([saga], database_url=DATABASE_URL) as env:
        execution = await env.execute(saga, {"id": 1})
        plain = await env.client.get_execution(execution.id)
        full = await env.client.get_execution(execution.id, include_steps=True)
    assert plain.steps == ()
    assert [a.step_name for a in full.steps] == ["reserve", "ship", "release"]


async def test_after_compensation_the_error_is_the_original_failure() -> None:
    readme_says(
        "`error` keeps the original failure: the failed step's exception type",
        "`step 'ship' failed on attempt 1 and has no attempts left: no courier for this address`",
    )
    async with WorkflowTestEnv([saga], database_url=DATABASE_URL) as env:
        execution = await env.execute(saga, {"id": 1})
    assert execution.status is ExecutionStatus.COMPENSATED
    assert execution.error is not None
    assert execution.error.type == "NonRetryableError"
    assert execution.error.message == (
        "step 'ship' failed on attempt 1 and has no attempts left: no courier for this address"
    )
    assert "no courier" in execution.error.traceback


async def test_a_fail_fast_group_fails_with_the_lane_error_as_its_cause() -> None:
    readme_says(
        "fails with `ParallelFailed` (`branch 'bad' of parallel 'sources' failed`)",
        "`error.cause` is the failing lane's own error",
    )
    async with WorkflowTestEnv([group], database_url=DATABASE_URL) as env:
        execution = await env.execute(group, {})
    assert execution.status is ExecutionStatus.FAILED
    error = execution.error
    assert error is not None
    assert (error.type, error.message) == (
        "ParallelFailed",
        "branch 'bad' of parallel 'sources' failed",
    )
    assert error.cause is not None
    assert error.cause.type == "ValueError"
    assert "the service is gone" in error.cause.message
    assert "broken" in error.cause.traceback


async def test_a_schedule_for_an_unknown_workflow_is_refused() -> None:
    readme_says("creating or updating a schedule for a workflow that is not registered is refused")
    async with WorkflowTestEnv([once], database_url=DATABASE_URL) as env:
        with pytest.raises(NotFoundError, match="workflow 'nowhere' is not registered"):
            await env.client.create_schedule("nightly", "nowhere", "0 3 * * *")
        assert (await env.client.list_schedules()).schedules == ()
