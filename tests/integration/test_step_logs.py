"""Step logs and error detail end to end: captured by the worker, stored, read back.

A real orchestrator on the manual clock and an in-process worker: a step logs and
prints, fails once with a marked secret in its error, then succeeds; another logs
around a sleep. GetExecution(include_logs) shows each attempt's own lines, the
failure's type, message and traceback, and never the secret. The orchestrator's own
cap is checked at the protocol level, with a worker that sends too much.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from durable import Client, RetryPolicy, StepContext, Workflow
from durable._models import Execution, ExecutionStatus, StepAttemptStatus
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
from durable_worker import Worker
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

log = logging.getLogger("tests.integration.steps")
log.setLevel(logging.INFO)

SECRET = "sk_live_51HxQ-do-not-leak"

logged = Workflow("logged")


@logged.step(retry=RetryPolicy(max_attempts=2, initial_delay=timedelta(seconds=5), jitter=0.0))
def fetch(data: Any, ctx: StepContext) -> Any:
    log.info("fetching, attempt %d", ctx.attempt)
    print(f"printed on attempt {ctx.attempt}")
    if ctx.attempt == 1:
        key = ctx.secret(SECRET)
        log.warning("calling the API with key %s", key)
        raise ConnectionError(f"the API refused key {key}")
    return {"n": data["n"]}


@logged.step
def nap(data: Any, ctx: StepContext) -> Any:
    log.info("before the sleep")
    ctx.sleep(timedelta(minutes=1))
    print("after the sleep")
    return data


def messages(execution: Execution, step: str, attempt: int) -> list[tuple[str, str]]:
    [found] = [a for a in execution.steps if a.step_name == step and a.attempt == attempt]
    return [(line.level, line.message) for line in found.logs]


@pytest.fixture
async def address_and_clock(
    database_url: str, manual_clock: ManualClock
) -> AsyncIterator[tuple[str, ManualClock]]:
    async with running_orchestrator(database_url, clock=manual_clock) as orch:
        yield orch.address, manual_clock


async def test_each_attempt_shows_its_own_lines_and_the_failure_without_the_secret(
    address_and_clock: tuple[str, ManualClock],
) -> None:
    address, clock = address_and_clock
    async with (
        Worker(address, [logged], poll_wait=timedelta(seconds=1)),
        Client(address) as client,
    ):
        execution_id = await client.start(logged, {"n": 3})

        async def step_status(step: str, attempt: int, status: StepAttemptStatus) -> Any:
            ex = await client.get_execution(execution_id, include_logs=True)
            return any(
                a.step_name == step and a.attempt == attempt and a.status == status
                for a in ex.steps
            )

        await wait_until(lambda: step_status("fetch", 1, StepAttemptStatus.FAILED))
        clock.advance(timedelta(seconds=5))  # the retry is due
        await wait_until(lambda: step_status("nap", 1, StepAttemptStatus.WAITING))
        waiting = await client.get_execution(execution_id, include_logs=True)
        assert messages(waiting, "nap", 1) == [("INFO", "before the sleep")]

        clock.advance(timedelta(minutes=1))  # the sleep is over: nap runs again
        await client.wait(execution_id, timeout=10)
        ex = await client.get_execution(execution_id, include_logs=True)
        without_logs = await client.get_execution(execution_id, include_steps=True)

    assert ex.status == ExecutionStatus.COMPLETED
    assert messages(ex, "fetch", 1) == [
        ("INFO", "fetching, attempt 1"),
        ("PRINT", "printed on attempt 1"),
        ("WARNING", "calling the API with key ***"),
    ]
    assert messages(ex, "fetch", 2) == [
        ("INFO", "fetching, attempt 2"),
        ("PRINT", "printed on attempt 2"),
    ]
    assert messages(ex, "nap", 1) == [  # two runs of the attempt, appended in order
        ("INFO", "before the sleep"),
        ("INFO", "before the sleep"),
        ("PRINT", "after the sleep"),
    ]
    [failed] = [a for a in ex.steps if a.status == StepAttemptStatus.FAILED]
    assert failed.error is not None
    assert failed.error.type == "ConnectionError"
    assert failed.error.message == "the API refused key ***"
    assert failed.error.traceback.startswith("Traceback (most recent call last):")
    assert ", in fetch\n" in failed.error.traceback
    assert failed.error.traceback.rstrip().endswith("ConnectionError: the API refused key ***")
    assert SECRET not in repr(ex)
    line = ex.steps[0].logs[0]
    assert line.logger == "tests.integration.steps"
    assert line.time is not None
    assert all(not a.logs for a in without_logs.steps)


# -- the orchestrator's cap, at the protocol level --------------------------------------

raw_flow = Workflow("raw_logs")


@raw_flow.step
def only(data: object) -> object:
    return data


def _lines(*messages: str, timed: bool = True) -> list[common_pb2.LogLine]:
    out = []
    for message in messages:
        line = common_pb2.LogLine(level="INFO", logger="app", message=message)
        if timed:
            line.time.FromSeconds(1_700_000_000)
        out.append(line)
    return out


async def _get_logs(raw: RawClient, execution_id: str) -> list[list[tuple[str, str, str]]]:
    reply = await raw.flows.GetExecution(
        pb.GetExecutionRequest(execution_id=execution_id, include_logs=True)
    )
    return [[(x.level, x.logger, x.message) for x in a.logs] for a in reply.execution.steps]


@pytest.fixture
async def capped(
    database_url: str, manual_clock: ManualClock
) -> AsyncIterator[tuple[RawClient, ManualClock]]:
    async with (
        running_orchestrator(database_url, clock=manual_clock, max_log_bytes=100) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        raw = RawClient(channel)
        await raw.register(raw_flow)
        yield raw, manual_clock


async def test_the_orchestrator_caps_each_attempt_across_its_runs(
    capped: tuple[RawClient, ManualClock],
) -> None:
    raw, clock = capped
    execution_id = await raw.start("raw_logs", "{}")
    [task] = await raw.poll(wait=2)
    lease = wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)
    first = [f"run 1 line {i} " + "x" * 17 for i in range(2)] + ["nul \x00"]  # 30+30+5 bytes
    sleep = wpb.SleepWait(index=0)
    sleep.duration.FromTimedelta(timedelta(seconds=1))
    await raw.workers.SuspendTasks(
        wpb.SuspendTasksRequest(
            worker_id=raw.worker_id,
            suspensions=[wpb.TaskSuspension(lease=lease, sleep=sleep, logs=_lines(*first))],
        )
    )
    shown = [("INFO", "app", m.replace("\x00", "\ufffd")) for m in first]
    assert await _get_logs(raw, execution_id) == [shown]

    clock.advance(timedelta(seconds=1))

    async def woken() -> wpb.Task | None:
        tasks = await raw.poll()
        return tasks[0] if tasks else None

    again = await wait_until(woken)
    assert again is not None
    second = [f"run 2 line {i} " + "x" * 17 for i in range(3)]
    await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id=raw.worker_id,
            completions=[
                wpb.TaskCompletion(
                    lease=wpb.TaskLease(task_id=again.task_id, lease_token=again.lease_token),
                    result_json="{}",
                    logs=_lines(*second, timed=False),
                )
            ],
        )
    )

    [logs] = await _get_logs(raw, execution_id)
    assert logs == [
        *shown,
        ("INFO", "app", second[0]),
        (
            "WARNING",
            "durable",
            "… 2 log line(s) (60 bytes) dropped: over the per-step cap of 100 bytes",
        ),
    ]


async def test_a_report_refused_for_a_stale_lease_stores_no_lines(
    capped: tuple[RawClient, ManualClock],
) -> None:
    raw, _ = capped
    execution_id = await raw.start("raw_logs", "{}")
    [task] = await raw.poll(wait=2)
    await raw.complete(task)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw.workers.FailTasks(
            wpb.FailTasksRequest(
                worker_id=raw.worker_id,
                failures=[
                    wpb.TaskFailure(
                        lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
                        error=common_pb2.ErrorInfo(type="Late", message="too late"),
                        logs=_lines("from a lost lease"),
                    )
                ],
            )
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await _get_logs(raw, execution_id) == [[]]


async def test_log_levels_are_stored_in_one_vocabulary_whatever_the_language(
    capped: tuple[RawClient, ManualClock],
) -> None:
    raw, _ = capped
    execution_id = await raw.start("raw_logs", "{}")
    [task] = await raw.poll(wait=2)
    sent = ["warn", "Trace", "fatal", "info", "PRINT", "notice", "audit"]
    lines = [common_pb2.LogLine(level=level, logger="app", message="m") for level in sent]
    await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(
            worker_id=raw.worker_id,
            completions=[
                wpb.TaskCompletion(
                    lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
                    result_json="{}",
                    logs=lines,
                )
            ],
        )
    )
    [stored] = await _get_logs(raw, execution_id)
    assert [level for level, _, _ in stored] == [
        "WARNING",
        "DEBUG",
        "CRITICAL",
        "INFO",
        "PRINT",
        "INFO",
        "AUDIT",  # outside the vocabulary: kept, upper-cased
    ]
