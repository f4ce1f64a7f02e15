"""When each worker was last seen: kept in memory, written to the database in batches.

Polls and heartbeats only note the time here; the ``workers`` rows are updated by one
statement for all the workers seen, at most every ``flush_secs`` (and before a read of
them), so an idle worker costs the database nothing per poll.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from durable_server.clock import Clock
from durable_server.errors import DurableError, UnavailableError
from durable_server.store import workers as worker_store
from durable_server.store.db import Database

__all__ = ["WorkerPresence"]

log = logging.getLogger(__name__)


class WorkerPresence:
    """Last-seen times of workers, written behind."""

    def __init__(self, db: Database, clock: Clock, flush_secs: float = 5.0) -> None:
        self.db = db
        self.clock = clock
        self.flush_secs = flush_secs
        self._seen: dict[str, datetime] = {}
        self._next_flush = 0.0
        self._flushing: asyncio.Task[None] | None = None

    def seen(self, worker_id: str) -> None:
        """Note that ``worker_id`` called now; writes the notes when they are due."""
        self._seen[worker_id] = self.clock.now()
        if time.monotonic() >= self._next_flush and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush_behind())

    async def _flush_behind(self) -> None:
        try:
            await self.flush()
        except DurableError as exc:  # kept for the next flush
            log.log(  # an unreachable database is logged where it is watched
                logging.DEBUG if isinstance(exc, UnavailableError) else logging.WARNING,
                "could not record when workers were last seen: %s",
                exc,
            )
        finally:
            self._flushing = None

    async def flush(self) -> None:
        """Write every last-seen time noted so far."""
        self._next_flush = time.monotonic() + self.flush_secs
        if not self._seen:
            return
        seen, self._seen = self._seen, {}
        try:
            async with self.db.connection() as conn:
                await worker_store.worker_touch_many(
                    conn, worker_ids=list(seen), times=list(seen.values())
                )
        except BaseException:
            for worker_id, at in seen.items():  # keep what is newer
                self._seen.setdefault(worker_id, at)
            raise
