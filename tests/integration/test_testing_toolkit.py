"""durable.testing: workflows on a real orchestrator and worker, on a clock the test moves."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from durable import (
    Cron,
    ExecutionStatus,
    NotFoundError,
    RetryPolicy,
    StepAttemptStatus,
    StepContext,
    Workflow,
    days,
    hours,
)
from durable.testing import (
    NotSettledError,
    PendingWait,
    WorkflowSuspendedError,
    WorkflowTestEnv,
)
from tests.helpers import db

START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
# Each environment works in a schema of its own: one shared database is enough.
DATABASE_URL = db.url_for("postgres")

reminder = Workflow("reminder")


@reminder.step
def remind_tomorrow(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    ctx.sleep(timedelta(days=1))
    return {**data, "reminded": True}


payment = Workflow("payment")


@payment.step
def await_payment(order: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    paid = ctx.wait_for_event("paid")
    return {**order, "paid": paid}


@payment.step
def ship(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "shipped": True}


approval = Workflow("approval")


@approval.step
def ask_manager(claim: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    approved = ctx.wait_for_input(
        "manager_approval",
        kind="approval",
        prompt=f"Refund {claim['amount']} EUR?",
        timeout=days(3),
        timeout_value=False,
    )
    return {**claim, "approved": approved}


flaky = Workflow("flaky")


@flaky.step(
    retry=RetryPolicy(
        max_attempts=3, backoff="fixed", initial_delay=hours(1), max_delay=hours(1), jitter=0
    )
)
def call_partner(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    if ctx.attempt == 1:
        raise ConnectionError("partner unreachable")
    return {**data, "attempts": ctx.attempt}


ALL = [reminder, payment, approval, flaky]


@pytest.fixture
async def env() -> AsyncIterator[WorkflowTestEnv]:
    async with WorkflowTestEnv(ALL, database_url=DATABASE_URL, start=START) as e:
        yield e


# -- time -----------------------------------------------------------------------------------


async def test_a_one_day_sleep_ends_when_the_clock_is_advanced_a_day(env: WorkflowTestEnv) -> None:
    began = time.monotonic()
    run = await env.start(reminder, {"user": 7})
    parked = await run.until_suspended()
    assert parked.status is ExecutionStatus.WAITING
    assert await run.waits() == [
        PendingWait(run.id, "remind_tomorrow", "sleep", due_at=START + timedelta(days=1))
    ]

    assert await env.advance(timedelta(hours=23)) == START + timedelta(hours=23)
    assert (await run.until_suspended()).status is ExecutionStatus.WAITING  # not yet

    assert await env.advance(timedelta(hours=1)) == START + timedelta(days=1)
    done = await run.result()
    assert (done.status, done.result) == (ExecutionStatus.COMPLETED, {"user": 7, "reminded": True})
    assert env.now == START + timedelta(days=1)
    assert time.monotonic() - began < 10  # a day of workflow time, no day of test time


async def test_skip_to_next_timer_jumps_to_the_end_of_the_sleep(env: WorkflowTestEnv) -> None:
    run = await env.start(reminder, {"user": 7})
    # No until_suspended needed: moving the clock first lets running steps settle.
    assert await env.skip_to_next_timer() == START + timedelta(days=1)
    done = await run.result()
    assert done.status is ExecutionStatus.COMPLETED
    assert await env.skip_to_next_timer() is None  # nothing left to wait for
    assert env.now == START + timedelta(days=1)


async def test_execute_skips_every_timer_on_the_way(env: WorkflowTestEnv) -> None:
    done = await env.execute(reminder, {"user": 1})
    assert done.result == {"user": 1, "reminded": True}
    assert env.now == START + timedelta(days=1)


async def test_result_without_skipping_says_the_execution_sleeps(env: WorkflowTestEnv) -> None:
    run = await env.start(reminder, {"user": 7})
    with pytest.raises(WorkflowSuspendedError) as err:
        await run.result()
    message = str(err.value)
    assert "step 'remind_tomorrow' sleeps until 2030-01-02T09:00:00+00:00" in message
    assert "skip_to_next_timer" in message
    assert err.value.execution.status is ExecutionStatus.WAITING
    assert [w.kind for w in err.value.waits] == ["sleep"]
    assert (await run.result(skip_timers=True)).status is ExecutionStatus.COMPLETED


# -- events ---------------------------------------------------------------------------------


async def test_an_event_resumes_the_waiting_step(env: WorkflowTestEnv) -> None:
    run = await env.start(payment, {"order": 1})
    parked = await run.until_suspended()
    assert parked.status is ExecutionStatus.WAITING
    assert [(a.step_name, a.status) for a in parked.steps] == [
        ("await_payment", StepAttemptStatus.WAITING)
    ]
    [wait] = await run.waits()
    assert (wait.kind, wait.names, wait.mode, wait.due_at) == ("event", ("paid",), "one", None)

    # Waiting for an event that nobody sends is an error that says so.
    with pytest.raises(WorkflowSuspendedError, match="waits for the event 'paid'"):
        await run.result(skip_timers=True)

    assert await env.send_event(run.id, "paid", {"amount": 5}) is True
    done = await run.result()
    assert done.status is ExecutionStatus.COMPLETED
    assert done.result == {"order": 1, "paid": {"amount": 5}, "shipped": True}


async def test_an_event_sent_before_the_wait_is_kept_for_it(env: WorkflowTestEnv) -> None:
    run = await env.start(payment, {"order": 2}, scheduled_at=START + timedelta(minutes=5))
    await run.until_suspended()  # scheduled: nothing runs before 09:05
    assert [w.kind for w in await run.waits()] == ["start"]
    assert await run.send_event("paid", 12) is False  # kept: no step waits yet
    done = await run.result(skip_timers=True)
    assert done.result == {"order": 2, "paid": 12, "shipped": True}
    assert env.now == START + timedelta(minutes=5)


# -- inputs ---------------------------------------------------------------------------------


async def test_an_answered_input_is_what_the_step_gets(env: WorkflowTestEnv) -> None:
    run = await env.start(approval, {"amount": 30})
    await run.until_suspended()
    [wait] = await run.waits()
    assert (wait.kind, wait.names) == ("input", ("manager_approval",))
    assert wait.due_at == START + timedelta(days=3)
    await env.provide_input(run, "manager_approval", True)
    done = await run.result()
    assert done.result == {"amount": 30, "approved": True}
    assert env.now == START  # the clock never moved


async def test_an_unanswered_input_times_out_to_its_timeout_value(env: WorkflowTestEnv) -> None:
    run = await env.start(approval, {"amount": 30})
    await run.until_suspended()
    assert await env.next_timer() == START + timedelta(days=3)
    assert await env.skip_to_next_timer() == START + timedelta(days=3)
    done = await run.result()
    assert (done.status, done.result) == (
        ExecutionStatus.COMPLETED,
        {"amount": 30, "approved": False},
    )


# -- history --------------------------------------------------------------------------------


async def test_history_shows_every_attempt_and_backoffs_are_skipped(env: WorkflowTestEnv) -> None:
    run = await env.start(flaky, {"id": 3})
    await run.until_suspended()  # the first attempt failed; the retry is due in an hour
    [wait] = await run.waits()
    assert (wait.kind, wait.step_name, wait.due_at) == (
        "retry",
        "call_partner",
        START + timedelta(hours=1),
    )
    done = await run.result(skip_timers=True)
    assert done.result == {"id": 3, "attempts": 2}
    history = await run.history()
    assert [(a.step_name, a.attempt, a.status) for a in history] == [
        ("call_partner", 1, StepAttemptStatus.FAILED),
        ("call_partner", 2, StepAttemptStatus.COMPLETED),
    ]
    assert history[0].error is not None
    assert history[0].error.type == "ConnectionError"
    assert history[0].retry_at == START + timedelta(hours=1)
    assert history[1].result == {"id": 3, "attempts": 2}


# -- a step that exits -----------------------------------------------------------------------

quitter = Workflow("quitter")


@quitter.step(retry=RetryPolicy(max_attempts=2, initial_delay=hours(1), jitter=0))
def give_up(data: Any) -> None:
    sys.exit(3)


async def test_a_step_calling_sys_exit_fails_its_attempts_not_the_test() -> None:
    async with WorkflowTestEnv([quitter, reminder], database_url=DATABASE_URL) as env:
        done = await env.execute(quitter, {})
        assert done.status is ExecutionStatus.FAILED
        assert done.error is not None
        assert done.error.type == "SystemExit"
        history = await env.run(done.id).history()
        assert [(a.attempt, a.status, a.error and a.error.type) for a in history] == [
            (1, StepAttemptStatus.FAILED, "SystemExit"),
            (2, StepAttemptStatus.FAILED, "SystemExit"),
        ]
        assert history[0].error is not None
        assert history[0].error.message == (
            "sys.exit(3) in user code: it fails this attempt, not the worker"
        )
        # The environment's worker goes on.
        assert (await env.execute(reminder, {"u": 1})).status is ExecutionStatus.COMPLETED


# -- cron schedules -------------------------------------------------------------------------

morning = Workflow("morning_report", schedule=Cron("0 9 * * *", input={"kind": "daily"}))


@morning.step
def write_report(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {**data, "written": True}


async def _scheduled_runs(env: WorkflowTestEnv) -> list[tuple[str, datetime | None, Any]]:
    page = await env.client.list_executions()
    runs = sorted(page.executions, key=lambda e: e.schedule_slot or START)
    return [(e.status.value, e.schedule_slot, e.result) for e in runs]


async def test_a_cron_schedule_fires_on_the_test_clock() -> None:
    eight = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)
    nine = eight + hours(1)
    async with WorkflowTestEnv([morning], database_url=DATABASE_URL, start=eight) as env:
        assert await env.next_timer() == nine
        assert await env.advance_to(nine - timedelta(seconds=1)) == nine - timedelta(seconds=1)
        assert await _scheduled_runs(env) == []

        # The run exists, and has run, when advance_to returns: no real-time tick needed.
        await env.advance_to(nine + timedelta(seconds=30))
        done = ("completed", nine, {"kind": "daily", "written": True})
        assert await _scheduled_runs(env) == [done]

        assert await env.next_timer() == nine + days(1)
        assert await env.skip_to_next_timer() == nine + days(1)
        assert await _scheduled_runs(env) == [done, ("completed", nine + days(1), done[2])]


async def test_a_schedule_created_during_the_test_fires_on_a_short_advance() -> None:
    # The orchestrator's schedule loop went to sleep for its interval (1 s) with nothing
    # due; the move of 0.6 s does not reach the end of that sleep.
    start = datetime(2030, 1, 1, 23, 29, 59, 500_000, tzinfo=UTC)
    slot = datetime(2030, 1, 1, 23, 30, tzinfo=UTC)
    async with WorkflowTestEnv(
        [reminder], database_url=DATABASE_URL, start=start, settle_timeout=3
    ) as env:
        assert await env.next_timer() is None
        await env.client.create_schedule("nightly", reminder, "30 23 * * *", input={"u": 1})
        assert await env.next_timer() == slot
        await env.advance(timedelta(milliseconds=600))
        [run] = (await env.client.list_executions()).executions
        assert (run.schedule_name, run.schedule_slot) == ("nightly", slot)
        # The run sleeps a day: its wake-up and the next slot are both tomorrow at 23:30.
        assert await env.next_timer() == slot + days(1)
        assert (await env.run(run.id).until_suspended()).status is ExecutionStatus.WAITING


# -- isolation and clean-up -----------------------------------------------------------------


async def test_two_environments_side_by_side_see_only_their_own_executions() -> None:
    async with (
        WorkflowTestEnv(ALL, database_url=DATABASE_URL, start=START) as one,
        WorkflowTestEnv(ALL, database_url=DATABASE_URL, start=START) as two,
    ):
        assert one.schema != two.schema
        run_one, run_two = await asyncio.gather(
            one.start(payment, {"order": "one"}), two.start(payment, {"order": "two"})
        )
        await asyncio.gather(run_one.until_suspended(), run_two.until_suspended())
        assert [e.id for e in (await one.client.list_executions()).executions] == [run_one.id]
        assert [e.id for e in (await two.client.list_executions()).executions] == [run_two.id]
        with pytest.raises(NotFoundError):
            await two.client.get_execution(run_one.id)

        # The clocks are separate too.
        await one.advance(days(2))
        assert (one.now, two.now) == (START + days(2), START)

        await one.send_event(run_one, "paid", 1)
        assert (await run_one.result()).status is ExecutionStatus.COMPLETED
        assert (await run_two.until_suspended()).status is ExecutionStatus.WAITING


async def test_the_schema_is_dropped_on_close() -> None:
    async with WorkflowTestEnv([reminder], database_url=DATABASE_URL) as env:
        await env.execute(reminder, {})
        schema = env.schema
    assert schema.startswith("durable_test_")
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        found = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)
    finally:
        await conn.close()
    assert found == 0


async def test_work_that_no_worker_takes_is_named_when_it_does_not_settle(
    env: WorkflowTestEnv,
) -> None:
    run = await env.start(reminder, {}, queue="nobody_polls_this")
    with pytest.raises(NotSettledError, match="ready on queue 'nobody_polls_this'"):
        await run.until_suspended(timeout=0.3)


async def test_the_env_must_be_open() -> None:
    env = WorkflowTestEnv([reminder], database_url=DATABASE_URL)
    with pytest.raises(RuntimeError, match="not open"):
        _ = env.client
    with pytest.raises(ValueError, match="timezone-aware"):
        WorkflowTestEnv([reminder], start=datetime(2030, 1, 1))
