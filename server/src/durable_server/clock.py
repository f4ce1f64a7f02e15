"""Time, injected: every service gets a Clock from ``app.py``.

``SystemClock`` is production: ``db_now()`` is None so SQL uses the database's
``now()`` (one clock for all replicas). ``ManualClock`` is for tests: time moves only
when ``advance``/``set`` is called, which also wakes the loops waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """The source of time for the orchestrator."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...

    def db_now(self) -> datetime | None:
        """The time to pass to SQL as ``now``; None means the database's own clock."""
        ...

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Return at ``when`` or as soon as ``wake`` is set, whichever is first."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return datetime.now(UTC)

    def db_now(self) -> datetime | None:
        """None: SQL uses the database clock."""
        return None

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Sleep until ``when`` or until ``wake`` is set."""
        delay = max((when - self.now()).total_seconds(), 0.0)
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


class ManualClock:
    """Time that moves only when told to (tests, ``--manual-clock``)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2030, 1, 1, tzinfo=UTC)
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        """The current manual time."""
        return self._now

    def db_now(self) -> datetime | None:
        """The manual time: SQL uses it instead of the database clock."""
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` and wake every sleeper; returns the new time."""
        return self.set(self._now + delta)

    def set(self, when: datetime) -> datetime:
        """Move time to ``when`` (never backwards) and wake every sleeper."""
        if when.tzinfo is None:
            raise ValueError("ManualClock.set needs an aware datetime")
        self._now = max(self._now, when)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return self._now

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
        """Wait until manual time reaches ``when`` or ``wake`` is set."""
        while self._now < when:
            if wake is not None and wake.is_set():
                return
            waiters = [asyncio.ensure_future(self._moved.wait())]
            if wake is not None:
                waiters.append(asyncio.ensure_future(wake.wait()))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
