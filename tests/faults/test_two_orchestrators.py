"""Two orchestrators share one database; one is SIGKILLed in the middle of a commit.

Both run as processes (1.5 s leases). Worker A prefers orchestrator 1, worker B
orchestrator 2 (each is given both addresses: ``ipv4:first,second``, so gRPC moves to the
second when the first is gone, as behind a load balancer). While the mixed workload runs,
the test takes a SHARE lock on ``step_attempts``: the next report transaction of
orchestrator 1 then holds its task locks and has written its logs, and waits before its
``INSERT INTO step_attempts`` can go through. The test finds that transaction (blocked by
the lock, with rows changed already, on a connection whose client port is one of
orchestrator 1's sockets), SIGKILLs orchestrator 1, and releases the lock. (Worker B may
take all the work of that moment first; then the test lets the lock go and tries again.)

PostgreSQL rolls the dead orchestrator's transaction back (``pg_xact_status`` says
``aborted``), so none of it happened; worker
A's report fails (UNAVAILABLE), and the worker sends it again, with the same lease token,
to orchestrator 2, which records it. Orchestrator 2 carries on alone: every execution
completes, the database passes every invariant, each result is recorded once, and
worker A keeps working after the kill.
"""

from __future__ import annotations

import contextlib
import signal
import time
from datetime import timedelta
from pathlib import Path

import asyncpg

from tests.faults.mixed_flows import Driver
from tests.faults.procs import free_port, orchestrator_process, tcp_ports
from tests.faults.workload import Workload
from tests.helpers.wait import wait_until

ORCHESTRATOR_ENV = {"DURABLE_LEASE_SECONDS": "1.5"}
TRIES = 3

# Backends blocked by this session's lock, inside a transaction that already changed rows
# (it has a transaction id), with that id as an xid8 (this epoch) to ask its fate later.
BLOCKED_WRITERS = """
SELECT a.pid, a.client_port, a.query,
       (((pg_current_xact_id()::text::bigint >> 32) << 32)
        + a.backend_xid::text::bigint)::text AS xid
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'
  AND a.backend_xid IS NOT NULL AND pg_backend_pid() = ANY(pg_blocking_pids(a.pid))
"""


async def test_killing_one_orchestrator_mid_commit_loses_nothing(
    database_url: str, tmp_path: Path
) -> None:
    workload = Workload(tmp_path)
    p1, p2 = free_port(), free_port()
    one, two = f"127.0.0.1:{p1}", f"127.0.0.1:{p2}"
    async with (
        orchestrator_process(database_url, p1, tmp_path, "orch-1", env=ORCHESTRATOR_ENV) as orch1,
        orchestrator_process(database_url, p2, tmp_path, "orch-2", env=ORCHESTRATOR_ENV),
        workload.worker(f"ipv4:{one},{two}", "prefers-1") as worker_a,
        workload.worker(f"ipv4:{two},{one}", "prefers-2"),
        Driver(f"ipv4:{two},{one}", database_url) as driver,
    ):
        await driver.start(12, tag="before")

        async def both_working() -> bool:
            done = [x["pid"] for x in workload.ledger() if x["ev"] == "done"]
            return done.count(worker_a.pid) >= 5 and len(done) >= 15

        await wait_until(both_working, timeout=30)

        caught, killed_at = None, 0.0
        for attempt in range(TRIES):
            locker = await asyncpg.connect(database_url)
            try:
                hold = locker.transaction()
                await hold.start()
                await locker.execute("LOCK TABLE durable.step_attempts IN SHARE MODE")
                # Work for worker A to report to orchestrator 1 (worker B may take it all
                # first: then the lock is let go, everything moves on, and the test tries
                # again).
                await driver.start(6, tag=f"locked-{attempt}")

                async def orchestrator_1_mid_commit(
                    locker: asyncpg.Connection = locker,
                ) -> asyncpg.Record | None:
                    ports = tcp_ports(orch1.pid)
                    blocked = await locker.fetch(BLOCKED_WRITERS)
                    return next((b for b in blocked if b["client_port"] in ports), None)

                with contextlib.suppress(AssertionError):
                    caught = await wait_until(orchestrator_1_mid_commit, timeout=10)
                if caught is not None:
                    orch1.signal(signal.SIGKILL)
                    assert await orch1.wait_exit() == -signal.SIGKILL
                    killed_at = time.time()
            finally:
                await locker.close()  # releases the lock (the transaction ends with the session)
            if caught is not None:
                break
        assert caught is not None, f"orchestrator 1 never blocked mid-commit in {TRIES} tries"

        # PostgreSQL rolled the dead orchestrator's transaction back: none of it happened.
        async def rolled_back() -> bool:
            conn = await asyncpg.connect(database_url)
            try:
                fate = await conn.fetchval("SELECT pg_xact_status($1::text::xid8)", caught["xid"])
            finally:
                await conn.close()
            return bool(fate == "aborted")

        await wait_until(rolled_back, timeout=20)

        await driver.start(6, tag="after")
        await driver.wait_finished(timeout=60)

        # Worker A lost its orchestrator, found the other one and went on working.
        assert any(
            x["pid"] == worker_a.pid and x["t"] > killed_at for x in workload.runs_by(worker_a.pid)
        ), worker_a.describe()
        assert "UNAVAILABLE" in worker_a.stderr()

    assert await driver.check_results() == []
    assert await workload.check(database_url, overdue_after=timedelta(seconds=5)) == []
