"""PostgreSQL restarts in the middle of the mixed workload: everything recovers by itself.

An orchestrator process and two workers run the mixed workload; the test restarts the
PostgreSQL cluster (``pg_ctlcluster ... restart``, fast mode: every session is cut,
transactions in flight roll back) and, while it is down, starts more executions and sends
events (answered UNAVAILABLE, sent again). Nobody restarts the orchestrator or the
workers: its pool, its LISTEN connection and its loops reconnect, and the workers resend
what failed. Every execution completes with its result, the database passes every
invariant, and each result is recorded once.

The cluster restarted is the local one serving ``DURABLE_TEST_PG`` (found with
``pg_lsclusters`` by port), or ``DURABLE_TEST_PG_CLUSTER`` (``VERSION/NAME``). The test is
skipped when ``pg_ctlcluster`` is not installed, or when ``DURABLE_TEST_SKIP_PG_RESTART`` is
set (e.g. when other users share the server). It waits for PostgreSQL to accept
connections again before it ends, whatever happened, so the tests after it find it up.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from durable_server.errors import UnavailableError
from durable_server.store.db import translate_errors
from tests.faults.mixed_flows import Driver
from tests.faults.pg_cluster import Cluster, accepting
from tests.faults.procs import free_port, orchestrator_process
from tests.faults.workload import Workload
from tests.helpers.wait import wait_until


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    if os.environ.get("DURABLE_TEST_SKIP_PG_RESTART"):
        pytest.skip("DURABLE_TEST_SKIP_PG_RESTART is set: PostgreSQL is not to be restarted")
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        pytest.skip(
            "pg_ctlcluster is not installed (Debian's postgresql-common): this test restarts "
            "the PostgreSQL cluster serving DURABLE_TEST_PG with it"
        )
    found = Cluster()
    try:
        yield found
    finally:
        await found.wait_ready()  # the tests after this one need it, whatever happened


async def test_a_postgres_restart_mid_workload_loses_nothing(
    cluster: Cluster, database_url: str, tmp_path: Path
) -> None:
    workload = Workload(tmp_path)
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {"DURABLE_LEASE_SECONDS": "3", "DURABLE_HEALTH_CHECK_SECONDS": "0.5"}
    async with (
        orchestrator_process(database_url, port, tmp_path, "orch", env=env) as orch,
        workload.worker(address, "pg-a"),
        workload.worker(address, "pg-b"),
        Driver(address, database_url) as driver,
    ):
        await driver.start(12, tag="before")

        async def busy() -> bool:
            return sum(1 for x in workload.ledger() if x["ev"] == "done") >= 15

        await wait_until(busy, timeout=30)
        restarting = asyncio.create_task(cluster.restart())

        async def down() -> bool:
            return not await accepting(cluster.host, cluster.port) or restarting.done()

        await wait_until(down, timeout=30, interval=0.01)
        # While PostgreSQL is down (or just back), more work arrives: the calls are
        # answered UNAVAILABLE and sent again until they go through.
        await driver.start(6, tag="during")
        took = await restarting
        await cluster.wait_ready()
        await driver.start(6, tag="after")
        await driver.wait_finished(timeout=60)
        orch_log = orch.stderr()

    assert await driver.check_results() == []
    assert await workload.check(database_url, overdue_after=timedelta(seconds=5)) == []
    # The outage was real: the orchestrator lost its connections and said so.
    noticed = f"restart took {took:.1f}s but the orchestrator noticed nothing:\n{orch_log}"
    assert "database unreachable" in orch_log, noticed
    assert "database reachable again" in orch_log, noticed
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        started = await pool.fetchval("SELECT count(*) FROM durable.executions")
    assert started == len(driver.started) + driver.count("fx_child")  # each started once


def test_a_connection_the_server_cut_while_idle_reads_as_unavailable() -> None:
    # What asyncpg raises for a pooled connection whose "terminating connection due to
    # administrator command" arrived while it was idle (seen during the restart above):
    # UNAVAILABLE (try again), not INTERNAL, which workers do not retry and drop reports on.
    cut = asyncpg.exceptions.InternalClientError(
        "cannot switch to state 11; another operation (2) is in progress"
    )
    with pytest.raises(UnavailableError), translate_errors():
        raise cut
