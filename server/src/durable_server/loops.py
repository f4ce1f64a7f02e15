"""Background loops: fire due timers, and reclaim expired leases.

Each loop computes when it next has work, then waits for that time on the injected clock
(or for a wake-up), so tests drive it by moving the clock. ``tick`` runs one pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from durable_server.clock import Clock
from durable_server.errors import UnavailableError

__all__ = ["DueLoop"]

log = logging.getLogger(__name__)


class DueLoop:
    """Run ``fire`` whenever ``next_due`` says work is due, re-checking every interval."""

    def __init__(
        self,
        name: str,
        clock: Clock,
        fire: Callable[[], Awaitable[int]],
        next_due: Callable[[], Awaitable[datetime | None]],
        interval: timedelta,
        wake: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self._fire = fire
        self._next_due = next_due
        self.interval = interval
        self.wake = wake or asyncio.Event()  # set: fire now (new rows were committed)
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> int:
        """Fire everything due now (repeating while full batches come back)."""
        total = 0
        while True:
            fired = await self._fire()
            total += fired
            if fired < 500:
                return total

    def start(self) -> None:
        """Run in the background."""
        self._task = asyncio.create_task(self._run(), name=f"durable-{self.name}")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        work = True  # the first pass fires whatever is already due
        again = False
        while True:
            failed = False
            # Cleared before asking, not before sleeping: a wake-up that comes while the
            # query runs (a timer committed meanwhile) must cut the sleep short.
            self.wake.clear()
            try:
                if work:
                    await self.tick()
                due = await self._next_due()
            except UnavailableError as exc:
                # The outage is logged once, where the database is watched (Reachability).
                log.debug("%s: %s", self.name, exc)
                due, failed = None, True
            except Exception:
                log.exception("%s failed; retrying", self.name)
                due, failed = None, True
            now = self.clock.now()
            if due is not None and due <= now and not failed and (not work or not again):
                # Due already: a re-check found it, or time moved past it while this pass
                # ran (a manual clock jumps) — then once more now, not again and again.
                again = work
                work = True
                continue
            again = False
            # Re-check at least every interval: other replicas add rows we are not told of.
            until = now + self.interval
            if due is not None and due < until:
                # Never spin: a small skew between this clock and the database's is normal.
                until = max(due, now + timedelta(milliseconds=10))
            log.debug("%s: next due %s; sleeping until %s", self.name, due, until)
            await self.clock.sleep_until(until, wake=self.wake)
            # Woken, or at the due time: fire. At a plain re-check: only ask what is due.
            work = failed or self.wake.is_set() or (due is not None and self.clock.now() >= due)
