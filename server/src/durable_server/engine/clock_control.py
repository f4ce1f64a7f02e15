"""A manual clock moved on request, firing what each move makes due (test mode).

The one place that says what "the next timer" is (``clock_next_due`` in
``store/sql/clock.sql``): a timer (a sleep's end, a wait's or a workflow's timeout), a
task that becomes ready later (a retry's backoff, a scheduled start) or an enabled
schedule's next slot. TestingService and ``durable.testing`` both use it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from durable_server.clock import ManualClock
from durable_server.errors import InvalidArgumentError, UnavailableError
from durable_server.store import clock as clock_store
from durable_server.store.db import Database

__all__ = ["ClockControl"]

FIRE_TIMEOUT_SECS = 30.0
"""How long a move waits for what it made due to fire (another loop may hold the rows)."""

_RECHECK_SECS = 0.01


class ClockControl:
    """Moves a manual clock forward and fires the timers and schedule slots it reaches.

    Args:
        db: The orchestrator's database.
        clock: The manual clock the orchestrator runs on.
        fire: Each fires what is due now and returns how many it fired: the timers, the
            schedules' slots.
    """

    def __init__(
        self,
        db: Database,
        clock: ManualClock,
        fire: Sequence[Callable[[], Awaitable[int]]],
        fire_timeout: float = FIRE_TIMEOUT_SECS,
    ) -> None:
        self.db = db
        self.clock = clock
        self._fire = tuple(fire)
        self._fire_timeout = fire_timeout

    def now(self) -> datetime:
        """The clock's time."""
        return self.clock.now()

    async def next_due(self, execution_id: str | None = None) -> datetime | None:
        """When something is next due: of ``execution_id`` and its children, or of anything."""
        async with self.db.connection() as conn:
            return await clock_store.clock_next_due(
                conn, execution_id=execution_id, now=self.clock.now()
            )

    async def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and fire what is due; return the new time."""
        if delta < timedelta(0):
            raise InvalidArgumentError(f"by must not be negative (got {delta}): time goes forward")
        return await self.advance_to(self.clock.now() + delta)

    async def advance_to(self, when: datetime) -> datetime:
        """Move the clock to ``when`` and fire what is due; return the new time."""
        now = self.clock.now()
        if when < now:
            raise InvalidArgumentError(
                f"to ({when.isoformat()}) is before the clock's time ({now.isoformat()}): "
                "the clock does not go backwards"
            )
        now = self.clock.set(when)
        await self.fire_due()
        return now

    async def skip_to_next_timer(self) -> datetime | None:
        """Move the clock to the next timer and fire it; None (unmoved) when nothing is due."""
        due = await self.next_due()
        if due is None:
            return None
        return await self.advance_to(max(due, self.clock.now()))

    async def fire_due(self) -> None:
        """Fire every timer and schedule slot due now; return once all have fired.

        The background loops, woken by the move, may be firing some of them: their rows
        are locked (and skipped here) until their transaction commits, so wait for that.
        """
        deadline = time.monotonic() + self._fire_timeout
        while True:
            fired = 0
            for fire in self._fire:
                fired += await fire()
            if not fired:
                async with self.db.connection() as conn:
                    if not await clock_store.clock_due_exists(conn, now=self.clock.now()):
                        return
            if time.monotonic() >= deadline:
                raise UnavailableError(
                    f"timers due at {self.clock.now().isoformat()} did not fire within "
                    f"{self._fire_timeout:g}s"
                )
            if not fired:
                await asyncio.sleep(_RECHECK_SECS)
