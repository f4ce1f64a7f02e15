"""Workflows whose steps end their attempt with sys.exit() or KeyboardInterrupt (e2e tests)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

from durable import RetryPolicy, Workflow

QUICK_RETRY = RetryPolicy(
    max_attempts=2,
    backoff="fixed",
    initial_delay=timedelta(milliseconds=50),
    max_delay=timedelta(milliseconds=50),
    jitter=0,
)

leaving = Workflow("exit_sync")


@leaving.step(retry=QUICK_RETRY)
def leave(data: Any) -> None:
    sys.exit(3)


interrupted = Workflow("exit_async")


@interrupted.step(retry=QUICK_RETRY)
async def interrupt(data: Any) -> None:
    raise KeyboardInterrupt("the step's own")


ordinary = Workflow("exit_after")


@ordinary.step
def echo(data: Any) -> Any:
    return data
