"""Retention: finished executions, with their history, are deleted after a configured age.

The hot tables hold only unfinished work (finished tasks, timers and waits go with the
step or execution that ends them); this keeps the history tables from growing forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from durable_server.clock import Clock
from durable_server.store import executions as ex_store
from durable_server.store import schedules as schedule_store
from durable_server.store.db import Database

__all__ = ["RECHECK_RETENTION", "Retention"]

BATCH = 500
# How often the retention loop asks again what is due (ages are in days: no hurry), so
# that an idle orchestrator does not query for it every loop interval.
RECHECK_RETENTION = timedelta(minutes=1)


class Retention:
    """Deletes what finished more than ``days`` ago; driven by a DueLoop."""

    def __init__(self, db: Database, clock: Clock, days: float) -> None:
        self.db = db
        self.clock = clock
        self.age = timedelta(days=days)

    async def delete_due(self) -> int:
        """Delete up to one batch of executions past the age; returns how many."""
        cutoff = self.clock.now() - self.age
        async with self.db.connection() as conn:
            deleted = await ex_store.execution_delete_finished_before(
                conn, before=cutoff, limit=BATCH
            )
            if deleted < BATCH:  # the last batch: old schedule firings go too
                await schedule_store.schedule_fire_delete_before(conn, before=cutoff)
        return deleted

    async def next_due(self) -> datetime | None:
        """When the longest-finished execution reaches the age."""
        async with self.db.connection() as conn:
            oldest = await ex_store.execution_oldest_finished(conn)
        return None if oldest is None else oldest + self.age
