"""Workflows run by the worker subprocesses of the fault tests (``python -m durable_worker``).

Every step appends ``<step> <attempt> <pid>`` to the file named by ``$FAULT_STEP_LOG`` as
soon as it starts, so a test can see that a step is running, where, and how often it ran.
A step named in ``$FAULT_BLOCK_STEPS`` (comma-separated) then blocks until a line arrives
on the worker's stdin: the test decides when it ends, or kills the worker while it runs.

The definitions (names, steps, options) are what the workflow version is hashed from, so
every worker process loading this module registers the same versions, whatever the
environment says about blocking.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

from durable import StepContext, Workflow

LOG_ENV = "FAULT_STEP_LOG"
BLOCK_ENV = "FAULT_BLOCK_STEPS"


def _checkpoint(ctx: StepContext) -> None:
    """Record that this step attempt started; block on stdin if the test asked for it."""
    line = f"{ctx.step_name} {ctx.attempt} {os.getpid()}\n"
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)
    blocks = ctx.step_name in os.environ.get(BLOCK_ENV, "").split(",")
    if blocks and not sys.stdin.readline():
        raise RuntimeError(f"step {ctx.step_name!r}: stdin closed while blocked")


# Three steps; the test kills the worker while the middle one runs.
fault_crash = Workflow("fault_crash")


@fault_crash.step
def prepare(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _checkpoint(ctx)
    return {"n": data["n"]}


@fault_crash.step
def crunch(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _checkpoint(ctx)
    return {"n": data["n"], "squared": data["n"] ** 2}


@fault_crash.step
def summarize(data: dict[str, Any], ctx: StepContext) -> str:
    _checkpoint(ctx)
    return f"{data['n']}^2 = {data['squared']}"


# One step; the test drains the worker while it runs.
fault_drain = Workflow("fault_drain")


@fault_drain.step
def settle(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _checkpoint(ctx)
    return {"settled": data["amount"] * 100}


# Groups: the test kills the worker while half the branches / items run.
fault_parallel = Workflow("fault_parallel")


def _branch_step(name: str) -> Any:
    def run(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        _checkpoint(ctx)
        return {"branch": name, "n": data["n"]}

    run.__name__ = name
    return run


fault_parallel.parallel(
    "fan_out", {f"b{i}": [_branch_step(f"work_{i}")] for i in range(4)}, on_error="collect"
)

fault_foreach = Workflow("fault_foreach")


def square(item: int, ctx: StepContext) -> int:
    _checkpoint(ctx)
    return item * item


fault_foreach.foreach("squares", items=lambda d: d["items"], steps=[square], concurrency=8)


# Sleeps a day (on the orchestrator's clock); the test restarts the orchestrator meanwhile.
fault_sleep = Workflow("fault_sleep")


@fault_sleep.step
def nap(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    ctx.sleep(timedelta(days=1))
    return {"n": data["n"], "doubled": data["n"] * 2}
