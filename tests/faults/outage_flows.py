"""The workflow of the database outage tests (``python -m durable_worker``).

``outage_gate`` has two steps: ``hold`` blocks on a shared lock of the file named by
``$FAULT_GATE`` while the test holds it exclusively (the test lets go while the database
is down, so the steps finish then), and
``tally`` runs at once. Every step run appends ``<event> <step> <execution> <attempt>
<pid>`` to the file named by ``$FAULT_RUNS`` (``start`` when it begins, ``done`` when it
returns), so a test can count how often each step ran.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, NamedTuple

from durable import StepContext, Workflow

GATE_ENV = "FAULT_GATE"
RUNS_ENV = "FAULT_RUNS"


class Run(NamedTuple):
    """One line of the runs file."""

    event: str
    step: str
    execution_id: str
    attempt: int
    pid: int


def _record(ctx: StepContext, event: str) -> None:
    line = f"{event} {ctx.step_name} {ctx.execution_id} {ctx.attempt} {os.getpid()}\n"
    fd = os.open(os.environ[RUNS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)


def read_runs(path: Path) -> list[Run]:
    """Every line of the runs file so far."""
    if not path.exists():
        return []
    return [
        Run(event, step, execution_id, int(attempt), int(pid))
        for event, step, execution_id, attempt, pid in (
            line.split() for line in path.read_text().splitlines()
        )
    ]


outage_gate = Workflow("outage_gate")


@outage_gate.step
def hold(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _record(ctx, "start")
    with Path(os.environ[GATE_ENV]).open("rb") as gate:
        fcntl.flock(gate, fcntl.LOCK_SH)  # blocks until the test releases its lock
    _record(ctx, "done")
    return {"n": data["n"]}


@outage_gate.step
def tally(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _record(ctx, "start")
    _record(ctx, "done")
    return {"n": data["n"], "tallied": True}
