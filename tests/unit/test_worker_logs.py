"""Log capture per step attempt: each report holds its own lines, capped, secrets masked."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from durable import StepContext, Workflow, mark_secret
from durable._definition import definition_hash, to_definition
from durable.secrets import redact
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb
from durable_worker import capture
from durable_worker.runner import Runner
from tests.unit.test_worker_runner import ListSink

log = logging.getLogger("tests.steps")
log.setLevel(logging.DEBUG)  # the root logger may be at WARNING: these records reach it
worker_log = logging.getLogger("durable_worker.tests")

SECRET = "tok-4f9a-SECRET-77"
sync_barrier = threading.Barrier(2, timeout=10)
async_barrier: asyncio.Barrier | None = None
release = threading.Event()
late_line_logged = threading.Event()  # set once "slow" has logged after its timeout

wf = Workflow("chatty")


@wf.step
def sync_chat(name: str) -> str:
    for i in range(3):
        sync_barrier.wait()  # both steps log line i before either prints it
        log.info("%s log %d", name, i)
        worker_log.warning("%s: the worker's own line, not the step's", name)
        sync_barrier.wait()
        print(f"{name} print {i}")
    return name


@wf.step
async def async_chat(name: str) -> str:
    assert async_barrier is not None
    for i in range(3):
        await async_barrier.wait()
        log.info("%s log %d", name, i)
        await async_barrier.wait()
        print(f"{name} print {i}")
    return name


@wf.step
async def with_subtask(name: str) -> str:
    async def helper() -> None:
        log.info("%s from a subtask", name)  # a task made here copies the step's context

    await asyncio.create_task(helper())
    outside = threading.Thread(target=lambda: log.info("%s from a bare thread", name))
    outside.start()  # a thread of its own: no step context, not captured
    outside.join()
    inside = threading.Thread(
        target=contextvars.copy_context().run,
        args=(lambda: log.info("%s from a thread in the step's context", name),),
    )
    inside.start()
    inside.join()
    return name


@wf.step
def verbose(count: int) -> int:
    for i in range(count):
        log.info("line %02d %s", i, "x" * 22)  # 30 bytes each
    return count


@wf.step
def partial_prints(data: Any) -> None:
    print("a", "b", end="")
    print("c")
    print("two\nlines")
    sys.stderr.write("to stderr\n")
    print("no newline at the end", end="")


@wf.step
def logs_exception(data: Any) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        log.exception("lookup failed")


@wf.step
def leaks(data: Any, ctx: StepContext) -> None:
    key = ctx.secret(SECRET)
    log.info("calling the bank with key %s", key)
    print(f"debug: Authorization: Bearer {key}")
    log.warning("connecting to postgres://app:pg-pass@db/orders with password=hunter2")
    raise PermissionError(f"the bank refused key {key}")


@wf.step
def marks_late(data: Any) -> None:
    log.info("key is %s", data)  # logged before it is marked: masked all the same
    mark_secret(data)
    raise ValueError(f"bad key {data}")


@wf.step
def logs_a_secret_unmarked(data: Any) -> str:
    log.info("value %s", SECRET)
    return "ok"


@wf.step
def says(data: Any) -> None:
    log.info("says %s", data)


@wf.step
def sleeps(data: Any, ctx: StepContext) -> None:
    log.info("before the sleep, run %s", ctx.memo.get("0") is not None)
    ctx.sleep(timedelta(minutes=5))
    log.info("after the sleep")


@wf.step
def slow(data: Any) -> None:
    log.info("started")
    release.wait(10)
    log.info("after the timeout: dropped")
    late_line_logged.set()


VERSION = definition_hash(to_definition(wf))


def task(step: str, data: Any = None, *, task_id: int = 1, **fields: Any) -> pb.Task:
    msg = pb.Task(
        task_id=task_id,
        lease_token=f"tok-{task_id}",
        execution_id="ex-1",
        workflow_name="chatty",
        workflow_version=VERSION,
        step_name=step,
        sequence=1,
        attempt=1,
        input_json=json.dumps(data),
        execution_input_json="{}",
    )
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def lines(report: Any) -> list[tuple[str, str, str]]:
    return [(x.level, x.logger, x.message) for x in report.logs]


@pytest.fixture
async def runner() -> AsyncIterator[tuple[Runner, ListSink]]:
    sink = ListSink()
    r = Runner([wf], {"chatty": VERSION}, sink, concurrency=4, max_payload_bytes=10_000)
    release.clear()
    late_line_logged.clear()
    try:
        yield r, sink
    finally:
        release.set()
        r.close()


async def run_all(runner: tuple[Runner, ListSink], *tasks: pb.Task) -> dict[int, Any]:
    r, sink = runner
    await asyncio.gather(*(r.run(t) for t in tasks))
    assert len(sink.reports) == len(tasks)
    return {report.lease.task_id: report for report in sink.reports}


# -- no bleeding between steps ---------------------------------------------------------


async def test_concurrent_sync_steps_capture_only_their_own_lines_in_order(
    runner: tuple[Runner, ListSink],
) -> None:
    reports = await run_all(
        runner, task("sync_chat", "a", task_id=1), task("sync_chat", "b", task_id=2)
    )

    for task_id, name in ((1, "a"), (2, "b")):
        assert isinstance(reports[task_id], pb.TaskCompletion)
        expected = []
        for i in range(3):
            expected += [
                ("INFO", "tests.steps", f"{name} log {i}"),
                ("PRINT", "stdout", f"{name} print {i}"),
            ]
        assert lines(reports[task_id]) == expected
        times = [x.time.ToNanoseconds() for x in reports[task_id].logs]
        assert times == sorted(times)
        assert times[0] > 0


async def test_concurrent_async_steps_capture_only_their_own_lines_in_order(
    runner: tuple[Runner, ListSink],
) -> None:
    global async_barrier
    async_barrier = asyncio.Barrier(2)
    log.info("logged by the test, outside any step")
    print("printed by the test, outside any step")

    reports = await run_all(
        runner, task("async_chat", "a", task_id=1), task("async_chat", "b", task_id=2)
    )

    for task_id, name in ((1, "a"), (2, "b")):
        expected = []
        for i in range(3):
            expected += [
                ("INFO", "tests.steps", f"{name} log {i}"),
                ("PRINT", "stdout", f"{name} print {i}"),
            ]
        assert lines(reports[task_id]) == expected


async def test_subtasks_and_context_copies_are_captured_bare_threads_are_not(
    runner: tuple[Runner, ListSink],
) -> None:
    reports = await run_all(runner, task("with_subtask", "s"))

    assert [m for _, _, m in lines(reports[1])] == [
        "s from a subtask",
        "s from a thread in the step's context",
    ]


async def test_nothing_is_captured_after_the_report_is_made(
    runner: tuple[Runner, ListSink],
) -> None:
    reports = await run_all(runner, task("slow", timeout=timedelta(seconds=0.2)))
    release.set()
    # The stuck thread logs its late line; only then is "it was not captured" a real check.
    assert await asyncio.to_thread(late_line_logged.wait, 10)

    failure = reports[1]
    assert isinstance(failure, pb.TaskFailure)
    assert failure.timed_out
    assert lines(failure) == [("INFO", "tests.steps", "started")]


# -- print, exceptions, suspensions ----------------------------------------------------


async def test_print_lines_are_joined_split_and_flushed_at_the_end(
    runner: tuple[Runner, ListSink],
) -> None:
    reports = await run_all(runner, task("partial_prints"))

    assert lines(reports[1]) == [
        ("PRINT", "stdout", "a bc"),
        ("PRINT", "stdout", "two"),
        ("PRINT", "stdout", "lines"),
        ("PRINT", "stderr", "to stderr"),
        ("PRINT", "stdout", "no newline at the end"),
    ]


async def test_a_logged_exception_keeps_its_traceback(runner: tuple[Runner, ListSink]) -> None:
    reports = await run_all(runner, task("logs_exception"))

    [(level, _, message)] = lines(reports[1])
    assert level == "ERROR"
    assert message.startswith("lookup failed\nTraceback (most recent call last):")
    assert "KeyError: 'missing'" in message


async def test_a_suspension_carries_what_its_run_logged(runner: tuple[Runner, ListSink]) -> None:
    reports = await run_all(runner, task("sleeps"))

    report = reports[1]
    assert isinstance(report, pb.TaskSuspension)
    assert lines(report) == [("INFO", "tests.steps", "before the sleep, run False")]


async def test_a_stream_handler_on_stdout_is_not_captured_twice(
    runner: tuple[Runner, ListSink],
) -> None:
    capture.install()
    handler = logging.StreamHandler(sys.stdout)  # the wrapped stdout
    log.addHandler(handler)
    try:
        reports = await run_all(runner, task("verbose", 1))
    finally:
        log.removeHandler(handler)

    assert lines(reports[1]) == [("INFO", "tests.steps", "line 00 " + "x" * 22)]


def test_records_no_other_handler_takes_still_reach_last_resort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capture.install()
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    resort = Collect(logging.WARNING)
    monkeypatch.setattr(logging, "lastResort", resort)
    monkeypatch.setattr(logging.root, "handlers", [capture._HANDLER])
    logging.getLogger("tests.unconfigured").warning("still shown")
    logging.getLogger("tests.unconfigured").info("below lastResort's level")

    assert seen == ["still shown"]


# -- the cap ---------------------------------------------------------------------------


async def test_past_the_byte_cap_lines_are_dropped_and_a_marker_says_so() -> None:
    sink = ListSink()
    r = Runner([wf], {"chatty": VERSION}, sink, max_log_bytes=100)
    try:
        await r.run(task("verbose", 10))
    finally:
        r.close()

    [report] = sink.reports
    assert isinstance(report, pb.TaskCompletion)
    got = lines(report)
    assert [m for _, _, m in got[:3]] == [f"line {i:02d} " + "x" * 22 for i in range(3)]
    assert got[3:] == [
        (
            "WARNING",
            "durable",
            "… 7 log line(s) (210 bytes) dropped: over the per-step cap of 100 bytes",
        )
    ]


def test_past_the_line_cap_lines_are_dropped_and_long_lines_are_cut() -> None:
    step_log = capture.StepLog(max_bytes=10**9, max_lines=2)
    step_log.add("INFO", "x", "y" * (capture.MAX_LINE_CHARS + 5))
    step_log.add("INFO", "x", "short")
    step_log.add("INFO", "x", "dropped")
    step_log.add("INFO", "x", "")

    out = step_log.close()
    assert [len(x.message) for x in out[:1]] == [capture.MAX_LINE_CHARS + len(" [... cut]")]
    assert out[1].message == "short"
    assert out[2].message == ("… 2 log line(s) (7 bytes) dropped: over the per-step cap of 2 lines")
    step_log.add("INFO", "x", "after close")
    assert len(step_log.close()) == 3


def test_lines_that_protobuf_cannot_send_are_cleaned() -> None:
    step_log = capture.StepLog()
    step_log.add("INFO", "x", b"caf\xe9".decode("utf-8", "surrogateescape"))

    [line] = step_log.close()
    assert line.message == "caf\ufffd"
    common_pb2.LogLine.FromString(line.SerializeToString())


# -- secrets ---------------------------------------------------------------------------


async def test_marked_secrets_are_masked_in_logs_and_in_the_error(
    runner: tuple[Runner, ListSink],
) -> None:
    reports = await run_all(runner, task("leaks"))

    failure = reports[1]
    assert isinstance(failure, pb.TaskFailure)
    assert failure.error.type == "PermissionError"
    assert failure.error.message == "the bank refused key ***"
    assert "PermissionError: the bank refused key ***" in failure.error.traceback
    assert SECRET not in str(failure)
    assert lines(failure) == [
        ("INFO", "tests.steps", "calling the bank with key ***"),
        ("PRINT", "stdout", "debug: Authorization: Bearer ***"),
        (
            "WARNING",
            "tests.steps",
            "connecting to postgres://app:***@db/orders with password=***",
        ),
    ]


async def test_a_secret_marked_late_masks_earlier_lines_and_only_its_own_attempt(
    runner: tuple[Runner, ListSink],
) -> None:
    reports = await run_all(
        runner,
        task("marks_late", SECRET, task_id=1),
        task("logs_a_secret_unmarked", task_id=2),
    )

    assert lines(reports[1]) == [("INFO", "tests.steps", "key is ***")]
    assert reports[1].error.message == "bad key ***"
    assert lines(reports[2]) == [("INFO", "tests.steps", f"value {SECRET}")]


@pytest.fixture
def global_secret() -> Iterator[str]:
    from durable import secrets

    value = "process-wide-secret-123"
    mark_secret(value)  # outside any step: every step
    try:
        yield value
    finally:
        secrets._GLOBAL.discard(value)


async def test_a_secret_marked_outside_steps_is_masked_in_every_step(
    runner: tuple[Runner, ListSink], global_secret: str
) -> None:
    reports = await run_all(runner, task("says", f"{global_secret}!"))

    assert lines(reports[1]) == [("INFO", "tests.steps", "says ***!")]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password=hunter2 and more", "password=*** and more"),
        ("{'db_password': 'hunter 2', 'user': 'bob'}", "{'db_password': '***', 'user': 'bob'}"),
        ('"client_secret": "abc"', '"client_secret": "***"'),
        ("API_KEY=abc123", "API_KEY=***"),
        ("X-Api-Key: abc123", "X-Api-Key: ***"),
        ("auth_token=abc", "auth_token=***"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("headers={'Authorization': 'Bearer abc.def'}", "headers={'Authorization': 'Bearer ***'}"),
        ("sent Bearer abc.def-ghi", "sent Bearer ***"),
        ("redis://:pw@cache:6379 and amqp://u:p@mq", "redis://:***@cache:6379 and amqp://u:***@mq"),
        ("max_tokens=100, tokens: 5", "max_tokens=100, tokens: 5"),
        ('File "/app/password_reset.py", line 3', 'File "/app/password_reset.py", line 3'),
    ],
)
def test_built_in_shapes_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_marked_values_are_masked_longest_first() -> None:
    assert redact("abcdef and abc", ["abc", "abcdef"]) == "*** and ***"
    assert redact("nothing here", ["", "zzz"]) == "nothing here"


def test_mark_secret_takes_strings_only() -> None:
    with pytest.raises(TypeError):
        mark_secret(1234)  # type: ignore[arg-type]
