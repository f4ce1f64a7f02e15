"""The database is gone for longer than a lease while steps finish: no finished step runs again.

Two orchestrator processes (replicas of one database, 2 s leases) each serve a worker; 8
executions of :mod:`tests.faults.outage_flows` are started, and their first steps run and
hold. Then the database goes away, for 2.5 leases, and the steps finish meanwhile: their
workers cannot report (nor heartbeat) and keep trying. When the database is back, the
orchestrators must give those workers a full lease to get through before reclaiming
anything (the time the database was out of reach does not count against a lease), so:

- every step ran exactly once (none was reclaimed and run again), and no lost attempt
  was recorded (losses count toward ``DURABLE_MAX_LOST_ATTEMPTS``);
- every execution completes, and the database passes every invariant;
- each orchestrator logged the outage once when it began and once when it ended (with
  its length), without a traceback, and little else.

The database goes away in two ways: PostgreSQL is stopped and started again (the cluster
serving ``DURABLE_TEST_PG``, as in :mod:`tests.faults.test_postgres_restart`; skipped
when ``DURABLE_TEST_SKIP_PG_RESTART`` is set or ``pg_ctlcluster`` is missing), and the
network path to it is cut (a TCP proxy between the orchestrators and PostgreSQL resets
every connection, old and new), which leaves PostgreSQL itself running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import pytest

from durable import Client
from tests.faults import outage_flows
from tests.faults.outage_flows import read_runs
from tests.faults.pg_cluster import Cluster, accepting
from tests.faults.procs import WorkerProcess, free_port, orchestrator_process, worker_process
from tests.faults.tcp_proxy import TcpProxy
from tests.helpers.invariants import check_invariants
from tests.helpers.wait import wait_until

LEASE_SECS = 2.0
OUTAGE_SECS = 2.5 * LEASE_SECS
EXECUTIONS = 8
ORCHESTRATOR_ENV = {
    "DURABLE_LEASE_SECONDS": f"{LEASE_SECS:g}",
    "DURABLE_HEALTH_CHECK_SECONDS": "0.5",
    # The lease loop retries every 0.1 s through the outage, so it reaches the database
    # again before any worker does: the case where finished work was thrown away.
    "DURABLE_LOOP_INTERVAL_SECONDS": "0.1",
}
UNREACHABLE = "database unreachable"
REACHABLE = "database reachable again after"
MAX_OUTAGE_LINES = 6  # what an orchestrator may log from the outage's start to its end


@dataclass
class Figures:
    """What one run measured."""

    finished_during_outage: int
    reruns: int
    lost_attempts: int
    accepted_after: float  # seconds from the database's return to every report recorded


class Outage:
    """How the database goes away and comes back."""

    async def begin(self) -> None:
        raise NotImplementedError

    async def end(self) -> None:
        raise NotImplementedError


class Stop(Outage):
    """PostgreSQL stopped (fast mode) and started again."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def begin(self) -> None:
        await self.cluster.stop()
        assert not await accepting(self.cluster.host, self.cluster.port)

    async def end(self) -> None:
        await self.cluster.start()
        await self.cluster.wait_ready()


class Cut(Outage):
    """Every connection through the proxy reset, and new ones refused, until restored."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    async def begin(self) -> None:
        self.proxy.refuse()
        assert self.proxy.drop() > 0  # the pools and LISTEN connections went through it

    async def end(self) -> None:
        self.proxy.accept()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    if os.environ.get("DURABLE_TEST_SKIP_PG_RESTART"):
        pytest.skip("DURABLE_TEST_SKIP_PG_RESTART is set: PostgreSQL is not to be stopped")
    if shutil.which("pg_ctlcluster") is None or shutil.which("pg_lsclusters") is None:
        pytest.skip(
            "pg_ctlcluster is not installed (Debian's postgresql-common): this test stops "
            "the PostgreSQL cluster serving DURABLE_TEST_PG with it"
        )
    found = Cluster()
    try:
        yield found
    finally:  # the tests after this one need it, whatever happened
        await found.start()
        await found.wait_ready()


async def _count(database_url: str, query: str) -> int | None:
    """``query``'s single value, or None while the database cannot be reached."""
    try:
        conn = await asyncpg.connect(database_url, timeout=2)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    try:
        value: int = await conn.fetchval(query)
        return value
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None
    finally:
        await conn.close()


async def _finish_during_outage(
    tmp_path: Path,
    database_url: str,
    outage: Outage,
    orchestrator_url: str | None = None,
) -> Figures:
    """Run the scenario of the module docstring; returns its figures after checking it."""
    runs_path, gate = tmp_path / "runs.log", tmp_path / "gate"
    env = {outage_flows.RUNS_ENV: str(runs_path), outage_flows.GATE_ENV: str(gate)}
    ports = (free_port(), free_port())
    addresses = [f"127.0.0.1:{p}" for p in ports]
    url = orchestrator_url or database_url

    def runs(event: str, step: str) -> list[outage_flows.Run]:
        return [r for r in read_runs(runs_path) if r.event == event and r.step == step]

    async with contextlib.AsyncExitStack() as stack:
        closed = stack.enter_context(gate.open("wb"))  # the steps wait until it is unlocked
        fcntl.flock(closed, fcntl.LOCK_EX)
        orchestrators: list[WorkerProcess] = [
            await stack.enter_async_context(
                orchestrator_process(url, port, tmp_path, f"orch-{i}", env=ORCHESTRATOR_ENV)
            )
            for i, port in enumerate(ports)
        ]
        for i, address in enumerate(addresses):
            await stack.enter_async_context(
                worker_process(
                    address,
                    f"outage-{i}",
                    tmp_path,
                    step_log=tmp_path / "unused.log",
                    module=outage_flows.__name__,
                    concurrency=EXECUTIONS,
                    env=env,
                )
            )
        async with Client(addresses[0]) as client:
            for n in range(EXECUTIONS):
                await client.start("outage_gate", {"n": n})

        async def holding() -> bool:
            return len(runs("start", "hold")) == EXECUTIONS

        await wait_until(holding, timeout=30)
        logged = [len(o.stderr()) for o in orchestrators]

        await outage.begin()
        down_at = time.monotonic()
        fcntl.flock(closed, fcntl.LOCK_UN)  # the steps finish while the database is away

        async def finished_and_long_enough() -> bool:
            done = len(runs("done", "hold")) == EXECUTIONS
            return done and time.monotonic() - down_at >= OUTAGE_SECS

        await wait_until(finished_and_long_enough, timeout=OUTAGE_SECS + 30)
        finished_during_outage = len(runs("done", "hold"))
        await outage.end()
        up_at = time.monotonic()

        async def reports_recorded() -> bool:
            held = await _count(
                database_url,
                "SELECT count(*) FROM durable.step_attempts "
                "WHERE step_name = 'hold' AND status = 'completed'",
            )
            return held is not None and held >= EXECUTIONS

        await wait_until(reports_recorded, timeout=60, interval=0.05)
        accepted_after = time.monotonic() - up_at

        async def all_completed() -> bool:
            done = await _count(
                database_url,
                "SELECT count(*) FROM durable.executions WHERE status = 'completed'",
            )
            return done == EXECUTIONS

        await wait_until(all_completed, timeout=60, interval=0.05)
        outage_logs = [o.stderr()[at:] for o, at in zip(orchestrators, logged, strict=True)]

    starts = runs("start", "hold") + runs("start", "tally")
    reruns = len(starts) - len({(r.step, r.execution_id) for r in starts})
    lost = await _count(
        database_url, "SELECT count(*) FROM durable.step_attempts WHERE status = 'lost'"
    )
    figures = Figures(finished_during_outage, reruns, lost or 0, accepted_after)
    print(f"figures: {figures}")
    assert figures.finished_during_outage == EXECUTIONS
    assert reruns == 0, f"{reruns} finished step(s) ran again: {starts}"
    assert lost == 0, f"{lost} attempt(s) recorded as lost"
    assert all(r.attempt == 1 for r in starts), starts
    assert await check_invariants(database_url, overdue_after=timedelta(seconds=5)) == []
    for text in outage_logs:
        _check_outage_log(text)
    return figures


def _check_outage_log(text: str) -> None:
    """One warning when the database went away, one when it came back, and little else."""
    lines = text.splitlines()
    assert "Traceback" not in text, text
    assert sum(UNREACHABLE in line for line in lines) == 1, text
    assert sum(REACHABLE in line for line in lines) == 1, text
    assert len(lines) <= MAX_OUTAGE_LINES, text


async def test_finished_steps_are_kept_across_a_postgres_stop(
    cluster: Cluster, database_url: str, tmp_path: Path
) -> None:
    await _finish_during_outage(tmp_path, database_url, Stop(cluster))


async def test_finished_steps_are_kept_across_a_cut_to_the_database(
    database_url: str, tmp_path: Path
) -> None:
    url = urlparse(database_url)
    async with TcpProxy(f"{url.hostname}:{url.port or 5432}") as proxy:
        through = url._replace(netloc=f"{url.username}@{proxy.address}").geturl()
        await _finish_during_outage(tmp_path, database_url, Cut(proxy), orchestrator_url=through)
