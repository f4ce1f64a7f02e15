"""Stop the orchestrator while 100 executions sleep, start it again: all 100 complete once.

Sleeping executions are rows (a waiting task, a wait, a timer): nothing about them lives
in the orchestrator's memory. The clock is injected, so the one-day sleep ends when the
test moves it, after the restart.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import asyncpg
import grpc

from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
from tests.faults.procs import free_port, worker_process
from tests.helpers.invariants import check_invariants
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

COUNT = 100


async def _count(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def test_sleeping_executions_survive_an_orchestrator_restart(
    database_url: str, manual_clock: ManualClock, tmp_path: Path
) -> None:
    port = free_port()
    listen = f"127.0.0.1:{port}"
    async with worker_process(
        listen,
        "sleeper",
        tmp_path,
        step_log=tmp_path / "steps.log",
        concurrency=20,
        wait_ready=False,
    ) as worker:
        async with (
            running_orchestrator(database_url, clock=manual_clock, listen=listen),
            grpc.aio.insecure_channel(listen) as channel,
        ):
            await worker.wait_ready(timeout=30)
            raw = RawClient(channel)
            for n in range(COUNT):
                await raw.start("fault_sleep", json.dumps({"n": n}))

            async def all_asleep() -> bool:
                waits = "SELECT count(*) FROM durable.waits WHERE kind = 'sleep'"
                return await _count(database_url, waits) == COUNT

            await wait_until(all_asleep, timeout=60)
        # The orchestrator is stopped; the worker keeps trying to reach it.

        async with (
            running_orchestrator(database_url, clock=manual_clock, listen=listen),
            grpc.aio.insecure_channel(listen) as channel,
        ):
            manual_clock.advance(timedelta(days=1))
            raw = RawClient(channel)

            async def all_done() -> pb.ListExecutionsResponse | None:
                page = await raw.flows.ListExecutions(
                    pb.ListExecutionsRequest(
                        statuses=[S.EXECUTION_STATUS_COMPLETED], page_size=1000
                    )
                )
                # The page itself: total_count is counted in a statement of its own, which
                # may see executions that completed after the page was read.
                return page if len(page.executions) == COUNT else None

            page = await wait_until(all_done, timeout=60)

    results = sorted(json.loads(e.result_json)["doubled"] for e in page.executions)
    assert results == [2 * n for n in range(COUNT)]
    completed = "SELECT count(*) FROM durable.step_attempts WHERE status = 'completed'"
    assert await _count(database_url, completed) == COUNT  # each step recorded once
    assert await _count(database_url, "SELECT count(*) FROM durable.waits") == 0
    assert await check_invariants(database_url) == []
