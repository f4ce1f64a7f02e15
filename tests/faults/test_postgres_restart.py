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
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest

from durable_server.errors import UnavailableError
from durable_server.store.db import translate_errors
from tests.faults.mixed_flows import Driver
from tests.faults.procs import free_port, orchestrator_process
from tests.faults.workload import Workload
from tests.helpers.db import BASE_URL
from tests.helpers.wait import wait_until

READY_TIMEOUT = 60.0


def _cluster(port: int) -> tuple[str, str]:
    """(version, name) of the local cluster to restart."""
    explicit = os.environ.get("DURABLE_TEST_PG_CLUSTER", "")
    if explicit:
        version, _, name = explicit.partition("/")
        return version, name
    listed = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    for line in listed.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    pytest.fail(
        f"no local PostgreSQL cluster listens on port {port} (DURABLE_TEST_PG={BASE_URL}), "
        f"so the test cannot restart it; clusters:\n{listed}\nSet DURABLE_TEST_PG_CLUSTER="
        "VERSION/NAME, or DURABLE_TEST_SKIP_PG_RESTART=1 to skip this test"
    )


async def _accepting(host: str, port: int) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "pg_isready", "-q", "-h", host, "-p", str(port), stdout=subprocess.DEVNULL
    )
    return await proc.wait() == 0


class Cluster:
    """The PostgreSQL cluster behind ``DURABLE_TEST_PG``."""

    def __init__(self) -> None:
        url = urlparse(BASE_URL)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 5432
        self.version, self.name = _cluster(self.port)

    async def restart(self) -> float:
        """Restart it (fast mode); returns how long the command took, in seconds."""
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            "--mode",
            "fast",
            self.version,
            self.name,
            "restart",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, f"pg_ctlcluster restart failed: {out.decode()}"
        return time.monotonic() - started

    async def wait_ready(self) -> None:
        """Wait until it accepts connections (pg_isready)."""

        async def ready() -> bool:
            return await _accepting(self.host, self.port)

        await wait_until(ready, timeout=READY_TIMEOUT, interval=0.1)


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
            return not await _accepting(cluster.host, cluster.port) or restarting.done()

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
    assert "database is unavailable" in orch_log or "LISTEN connection failed" in orch_log, (
        f"restart took {took:.1f}s but the orchestrator noticed nothing:\n{orch_log}"
    )
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
