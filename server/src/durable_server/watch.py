"""Parked WaitExecution calls, woken when the executions they wait for finish.

An execution finished by this orchestrator wakes its waiters once the transaction
commits; one finished by another orchestrator wakes them through PostgreSQL NOTIFY (the
finish statement notifies, see ``execution_finish_many``; ``dispatcher.Listener``
hears it; when that connection comes back after a drop, every waiter reads again). A
waiter holds no database connection while parked, and re-reads its execution every
``RECHECK_SECS`` only as a last guard against a lost notification: rarely, so that
thousands of parked waits cost the database next to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator

__all__ = ["RECHECK_SECS", "FinishWatch"]

RECHECK_SECS = 60.0


class FinishWatch:
    """Parked waits for executions to finish, by execution id."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.closed = False

    @contextlib.contextmanager
    def watching(self, execution_id: str) -> Iterator[asyncio.Event]:
        """An event set when ``execution_id`` finishes (or at shutdown), while in the block.

        Enter it before reading the execution: a finish after the read then sets it.
        """
        event = asyncio.Event()
        if self.closed:
            event.set()
        waiters = self._waiters[execution_id]
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(execution_id, None)

    def finished(self, execution_ids: Iterable[str]) -> None:
        """Wake the waits for any of ``execution_ids``."""
        for execution_id in execution_ids:
            for event in self._waiters.get(execution_id, ()):
                event.set()

    def notified(self, payload: str) -> None:
        """Wake the waits named by a NOTIFY payload (comma-separated execution ids)."""
        self.finished(payload.split(","))

    def wake_all(self) -> None:
        """Make every waiter read its execution again (a reconnected LISTEN)."""
        for events in self._waiters.values():
            for event in events:
                event.set()

    def close(self) -> None:
        """Return every parked wait now (with the execution as it is), and later ones at once."""
        self.closed = True
        self.wake_all()

    def __len__(self) -> int:
        return sum(len(w) for w in self._waiters.values())
