"""A transaction that loses to a concurrent one (deadlock, conflict) runs again, a few times."""

from __future__ import annotations

from typing import Any

import pytest

from durable_server.clock import ManualClock
from durable_server.config import Settings
from durable_server.engine.context import RETRIES, EngineContext
from durable_server.errors import AbortedError


def _context() -> EngineContext:
    settings = Settings(database_url="postgresql://unused")
    return EngineContext(None, ManualClock(), settings, None, rand=lambda: 0.0)  # type: ignore[arg-type]


async def test_an_aborted_transaction_runs_again_until_it_commits() -> None:
    calls: list[int] = []

    async def once(value: int) -> int:
        calls.append(value)
        if len(calls) < RETRIES:
            raise AbortedError("deadlock detected")
        return value * 2

    assert await _context().retrying(once, 21) == 42
    assert calls == [21] * RETRIES


async def test_it_gives_up_after_the_last_try() -> None:
    calls: list[Any] = []

    async def once() -> None:
        calls.append(1)
        raise AbortedError("deadlock detected")

    with pytest.raises(AbortedError):
        await _context().retrying(once)
    assert len(calls) == RETRIES
