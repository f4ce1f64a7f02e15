"""The test side of the mixed workload: its ledger, its workers, and the full check.

A :class:`Workload` owns the ledger file and the side-effect markers of one test (under
``tmp_path``), starts worker processes that run :mod:`tests.faults.mixed_flows` with them,
and checks the database against both (:func:`tests.helpers.invariants.check_invariants`
and :func:`~tests.helpers.invariants.check_effects`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from tests.faults import mixed_flows
from tests.faults.procs import WorkerProcess, worker_process
from tests.helpers.invariants import check_effects, check_invariants

LEDGERED = (*mixed_flows.SHAPES, "fx_child_work", "fx_slow")
STEP_SECONDS = "0.02,0.12"  # long enough for a kill or a cut to find steps mid-run


class Workload:
    """The ledger and markers of one test, and workers that write them."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.ledger_path = tmp_path / "ledger.jsonl"
        self.markers = tmp_path / "markers"
        self.markers.mkdir(exist_ok=True)

    def env(self, step_seconds: str | None = STEP_SECONDS) -> dict[str, str]:
        """The environment a mixed-workload worker needs."""
        return {
            mixed_flows.LEDGER_ENV: str(self.ledger_path),
            mixed_flows.MARKERS_ENV: str(self.markers),
            mixed_flows.STEP_SECONDS_ENV: step_seconds or "",
            # FAULT_WORKER_LOG_LEVEL=DEBUG shows every call the workers make, to debug a test.
            "DURABLE_LOG_LEVEL": os.environ.get("FAULT_WORKER_LOG_LEVEL", "INFO"),
        }

    @contextlib.asynccontextmanager
    async def worker(
        self,
        address: str,
        worker_id: str,
        *,
        concurrency: int = 4,
        block_steps: Sequence[str] = (),
        queues: Sequence[str] = (),
        step_seconds: str | None = STEP_SECONDS,
        wait_ready: bool = True,
    ) -> AsyncIterator[WorkerProcess]:
        """A worker process running the mixed workload (see :func:`worker_process`)."""
        args = [arg for queue in queues for arg in ("--queue", queue)]
        async with worker_process(
            address,
            worker_id,
            self.tmp_path,
            step_log=self.tmp_path / "steps.log",
            block_steps=block_steps,
            args=args,
            module=mixed_flows.__name__,
            concurrency=concurrency,
            wait_ready=wait_ready,
            env=self.env(step_seconds),  # block_steps: the same $FAULT_BLOCK_STEPS
        ) as worker:
            yield worker

    def ledger(self) -> list[dict[str, Any]]:
        """Every ledger line so far."""
        return mixed_flows.read_ledger(self.ledger_path)

    def runs_by(self, pid: int) -> list[dict[str, Any]]:
        """The ``start`` lines of the runs process ``pid`` began."""
        return [line for line in self.ledger() if line["ev"] == "start" and line["pid"] == pid]

    async def check(
        self, database_url: str, *, overdue_after: timedelta | None = None
    ) -> list[str]:
        """Every invariant violation and every ledger mismatch (empty: all is well)."""
        problems = await check_invariants(database_url, overdue_after=overdue_after)
        problems += await check_effects(
            database_url,
            self.ledger(),
            effects=mixed_flows.read_effects(self.markers),
            workflows=LEDGERED,
        )
        return problems


async def lost_attempts(database_url: str, *, worker_id: str | None = None) -> int:
    """How many attempts were recorded lost (a dead or cut-off worker's lease expired)."""
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM durable.step_attempts WHERE status = 'lost'"
            " AND ($1::text IS NULL OR worker_id = $1)",
            worker_id,
        )
    finally:
        await conn.close()
    return count
