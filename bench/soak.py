"""Soak test: the mixed fault workload for a long time, with a fault every minute.

Run by hand (it is not part of the test suite)::

    python -m bench.soak [--executions 100000] [--minutes 30] [--fault-every 60]
                         [--workers 4] [--orchestrators 2] [--seed N]

What it does:

1. Creates a fresh database (as :mod:`bench.harness` does) and starts ``--orchestrators``
   orchestrator processes on it (short leases), then ``--workers`` worker processes running
   the mixed workload of :mod:`tests.faults.mixed_flows` with its side-effect ledger
   (:class:`tests.faults.workload.Workload`). Each worker is given every orchestrator
   (``ipv4:a,b``: gRPC moves to the next when one is gone), in a rotated order so that
   they spread; worker slot 0 reaches them through TCP proxies (for the network faults).
2. A :class:`~tests.faults.mixed_flows.Driver` (its channel and its retrying calls) starts
   ``--executions`` executions of the six shapes at a steady rate over ``--minutes``, from
   ``--starters`` concurrent tasks (held back while more than ``--max-backlog`` are
   unfinished), sends the ``go`` events the waiting shapes need (half at once, half once
   they wait; every SendEvent RPC attempt is counted), and samples the hot tables.
3. Every ``--fault-every`` seconds a fault, in turn: SIGKILL a random worker and start a
   replacement; SIGKILL an orchestrator and start it again on its port a moment later
   (workers and the driver fail over to the other one meanwhile); a network fault on
   worker slot 0's paths (alternately: every connection reset and new ones refused for a
   few seconds; or every byte stalled for longer than a lease, so its leases expire and
   its late reports must be refused). PostgreSQL is never restarted (it is shared).
4. Once every execution is started: waits for the queue to drain, then runs
   :meth:`Workload.check` (the invariant checker and the side-effect ledger check), and
   counts executions by status, lost ones (started by the driver but missing or never
   finished), wrong ones (ended otherwise than ``completed`` with the expected result),
   and duplicated work (a result recorded twice, a side effect applied twice, a lease
   held twice: what the ledger check reports as E3, E6 and E4). Rows left in the hot
   tables are listed; an event left behind names how many RPC attempts its send took
   (each send carries an event id, so one retried after an orchestrator died having
   committed it is answered as a duplicate and stores nothing; none should be left).
5. Retention: the soak's orchestrators keep history (30 days, the default). A last
   orchestrator is started with ``DURABLE_RETENTION_DAYS`` set to ``--retention-age``
   seconds (default: half the run); the script waits until no execution older than that
   is left, and reports what was deleted, what was kept (the younger ones), and the
   history tables after, then checks the invariants once more.

The hot tables are designed to be kept small by autovacuum (migration 0010). Where the
server runs with ``autovacuum = off`` (as a shared test cluster may), the soak stands in
for it: it VACUUMs the hot tables every 30 s (``--vacuum-every``), and says so.

It prints a human summary and a final line ``SOAK {json}``. The run's files (ledger,
markers, process logs) are in a temporary folder, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from bench.harness import BASE_URL, ROOT
from durable.v1 import workflow_service_pb2 as pb
from tests.faults import mixed_flows
from tests.faults.mixed_flows import SHAPES, TERMINAL, WAITING_SHAPES, Driver, Started
from tests.faults.procs import READY_LINE, SERVER_READY_LINE, WorkerProcess, free_port
from tests.faults.tcp_proxy import TcpProxy
from tests.faults.workload import Workload
from tests.helpers.invariants import check_invariants

HOT_TABLES = ("tasks", "timers", "waits", "groups", "lanes", "events")
HISTORY_TABLES = ("executions", "step_attempts", "step_logs", "schedule_fires")
OTHER_TABLES = ("workers", "workflow_versions")
SETTINGS = (
    "minutes", "fault_every", "workers", "orchestrators", "concurrency",
    "lease", "step_seconds", "max_backlog", "seed", "starters",
)  # fmt: skip
FAULT_KINDS = ("worker_kill", "orchestrator_kill", "network")
DUPLICATE_TAGS = ("(E3)", "(E4)")  # E6 only when two runs applied the effect (see below)


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- processes -------------------------------------------------------------------------------


class Cluster:
    """The orchestrator and worker processes of the soak, and the proxies of worker slot 0."""

    def __init__(self, args: argparse.Namespace, url: str, folder: Path, workload: Workload):
        self.args = args
        self.url = url
        self.folder = folder
        self.workload = workload
        self.ports = [free_port() for _ in range(args.orchestrators)]
        self.orchestrators: list[WorkerProcess | None] = [None] * args.orchestrators
        self.workers: list[WorkerProcess | None] = [None] * args.workers
        self.proxies: list[TcpProxy] = []
        self.spawned = 0
        self.retired: list[WorkerProcess] = []

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.ports[i]}"

    def target(self, slot: int) -> str:
        """Every orchestrator, starting with a different one per slot (proxied for slot 0)."""
        n = len(self.ports)
        order = [(slot + k) % n for k in range(n)]
        if slot == 0 and self.proxies:
            return "ipv4:" + ",".join(self.proxies[i].address for i in order)
        return "ipv4:" + ",".join(self.address(i) for i in order)

    def orchestrator_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "DURABLE_DATABASE_URL": self.url,
            "DURABLE_LEASE_SECONDS": str(self.args.lease),
            "DURABLE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **(extra or {}),
        }

    async def _spawn(self, argv: Sequence[str], name: str, env: dict[str, str]) -> WorkerProcess:
        self.spawned += 1
        out = self.folder / f"{name}.out"
        err = self.folder / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        return WorkerProcess(proc, name, out, err)

    async def start_orchestrator(
        self, i: int, port: int | None = None, env: dict[str, str] | None = None
    ) -> WorkerProcess:
        port = self.ports[i] if port is None else port
        argv = [sys.executable, "-m", "durable_server", "serve", "--listen", f"127.0.0.1:{port}"]
        proc = await self._spawn(argv, f"orch-{i}-{self.spawned}", self.orchestrator_env(env))
        await proc.wait_ready(timeout=60, ready_line=SERVER_READY_LINE)
        if i < len(self.orchestrators):
            self.orchestrators[i] = proc
        return proc

    async def start_worker(self, slot: int) -> WorkerProcess:
        env = {
            **os.environ,
            "DURABLE_SERVER_ADDRESS": self.target(slot),
            "PYTHONUNBUFFERED": "1",
            **self.workload.env(self.args.step_seconds),
            "DURABLE_LOG_LEVEL": "WARNING",
        }
        name = f"worker-{slot}-{self.spawned}"
        argv = [
            sys.executable, "-m", "durable_worker", mixed_flows.__name__,
            "--worker-id", name, "--concurrency", str(self.args.concurrency),
        ]  # fmt: skip
        proc = await self._spawn(argv, name, env)
        await proc.wait_ready(timeout=60, ready_line=READY_LINE)
        self.workers[slot] = proc
        return proc

    async def start(self) -> None:
        for i in range(len(self.ports)):  # one after the other: the first one migrates
            await self.start_orchestrator(i)
        if self.args.network_faults:
            for i in range(len(self.ports)):
                proxy = TcpProxy(self.address(i))
                await proxy.start()
                self.proxies.append(proxy)
        await asyncio.gather(*(self.start_worker(s) for s in range(len(self.workers))))

    async def stop(self) -> None:
        """Everything down: workers first (SIGTERM, then SIGKILL), then the orchestrators."""
        for group in (self.workers, self.orchestrators):
            live = [p for p in group if p is not None and p.running]
            for p in live:
                with contextlib.suppress(ProcessLookupError):
                    p.signal(signal.SIGTERM)
            for p in live:
                try:
                    await asyncio.wait_for(p.proc.wait(), 15)
                except TimeoutError:
                    await p.kill()
        for proxy in self.proxies:
            await proxy.close()

    async def kill_all(self) -> None:
        for p in [*self.workers, *self.orchestrators]:
            if p is not None:
                with contextlib.suppress(Exception):
                    await p.kill()
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                await proxy.close()


# -- faults ----------------------------------------------------------------------------------


class Faults:
    """Injects the faults in turn; remembers what it did."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.rng = rng
        self.kinds = [k for k in FAULT_KINDS if k != "network" or cluster.proxies]
        self.done: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        self._turn = 0
        self._network_turn = 0

    async def inject(self, elapsed: float) -> None:
        kind = self.kinds[self._turn % len(self.kinds)]
        self._turn += 1
        t0 = time.monotonic()
        detail = await getattr(self, kind)()
        kind = detail.pop("kind", kind)  # the network fault says which one it was
        self.done[kind] += 1
        entry = {"at_s": round(elapsed, 1), "kind": kind, **detail}
        entry["took_s"] = round(time.monotonic() - t0, 1)
        self.log.append(entry)
        log(f"fault: {entry}")

    async def worker_kill(self) -> dict[str, Any]:
        c = self.cluster
        slot = self.rng.randrange(len(c.workers))
        victim = c.workers[slot]
        assert victim is not None
        victim.signal(signal.SIGKILL)
        code = await victim.wait_exit(timeout=10)
        c.retired.append(victim)
        fresh = await c.start_worker(slot)
        return {"slot": slot, "killed": victim.worker_id, "exit": code, "new": fresh.worker_id}

    async def orchestrator_kill(self) -> dict[str, Any]:
        c = self.cluster
        i = self._turn // len(self.kinds) % len(c.orchestrators)  # alternate between them
        victim = c.orchestrators[i]
        assert victim is not None
        victim.signal(signal.SIGKILL)
        code = await victim.wait_exit(timeout=10)
        down = self.rng.uniform(1.0, 5.0)
        await asyncio.sleep(down)  # long enough for its clients to move to another one
        fresh = await c.start_orchestrator(i)
        return {"index": i, "exit": code, "down_s": round(down, 1), "new": fresh.worker_id}

    async def network(self) -> dict[str, Any]:
        """Worker slot 0's paths: reset and refused for a while, or stalled past a lease."""
        proxies = self.cluster.proxies
        self._network_turn += 1
        if self._network_turn % 2:
            for p in proxies:
                p.refuse()
            dropped = sum(p.drop() for p in proxies)
            down = self.rng.uniform(2.0, 6.0)
            await asyncio.sleep(down)
            for p in proxies:
                p.accept()
            return {"kind": "network_drop", "dropped": dropped, "down_s": round(down, 1)}
        for p in proxies:
            p.stall()
        stalled = self.cluster.args.lease * 1.5 + 1
        await asyncio.sleep(stalled)
        for p in proxies:
            p.resume()
        return {"kind": "network_stall", "stalled_s": round(stalled, 1)}


# -- the database ----------------------------------------------------------------------------


async def table_rows(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM durable.{t}") for t in tables}


async def table_bytes(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, int]:
    return {
        t: await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", f"durable.{t}")
        for t in tables
    }


def vacuum_sql(tables: Sequence[str]) -> str:
    return "VACUUM " + ", ".join(f"durable.{t}" for t in tables)


async def unfinished(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM durable.executions WHERE NOT status = ANY($1::text[])",
        list(TERMINAL),
    )
    return count


# -- the run ---------------------------------------------------------------------------------


class Soak:
    """One soak run; :meth:`run` returns the summary."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.pending_events: dict[str, Started] = {}
        self.unfinished = 0
        self.peak_hot: dict[str, int] = dict.fromkeys(HOT_TABLES, 0)
        self.peak_unfinished = 0
        self.throttled_s = 0.0
        self.start_errors: list[str] = []
        self.event_errors = 0
        self.vacuum_every = 0.0
        self.events_sent = 0  # SendEvent calls that succeeded
        self.events_duplicate = 0  # of which a retry found its event id already received
        self.events_kept = 0  # of which no wait took the event at once (kept for later)
        self.event_rpcs: Counter[str] = Counter()  # RPC attempts per execution
        self.event_rpc_errors: Counter[str] = Counter()  # failed attempts by gRPC code
        self.manual_vacuums = 0

    async def _monitor(self, pool: asyncpg.Pool) -> None:
        """Count the unfinished executions every second, sample the hot tables every 5 s."""
        last_sample = 0.0
        while True:
            try:
                async with pool.acquire() as conn:
                    self.unfinished = await unfinished(conn)
                    self.peak_unfinished = max(self.peak_unfinished, self.unfinished)
                    if time.monotonic() - last_sample > 5:
                        last_sample = time.monotonic()
                        rows = await table_rows(conn, HOT_TABLES)
                        for t, n in rows.items():
                            self.peak_hot[t] = max(self.peak_hot[t], n)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log(f"monitor: {exc!r}")
            await asyncio.sleep(1)

    async def _signal(self, driver: Driver, item: Started) -> None:
        """Send ``go`` to ``item`` (as :meth:`Driver._signal`), noting every RPC attempt.

        The driver retries a call that failed with UNAVAILABLE, DEADLINE_EXCEEDED or
        ABORTED; the event id makes a retry of a call that took effect a no-op (counted
        as a duplicate send).
        """
        request = mixed_flows.signal_request(item)

        async def send(req: pb.SendEventRequest, **call: Any) -> pb.SendEventResponse:
            self.event_rpcs[item.execution_id] += 1
            try:
                return await driver.stub.SendEvent(req, **call)
            except grpc.aio.AioRpcError as exc:
                self.event_rpc_errors[exc.code().name] += 1
                raise

        reply = await driver._call(send, request)
        self.events_sent += 1
        self.events_duplicate += reply.duplicate
        self.events_kept += not reply.delivered
        item.signalled = True

    async def _pump(self, driver: Driver, pool: asyncpg.Pool) -> None:
        """Send ``go`` to each waiting shape (not signalled at start) once it waits."""
        while True:
            ids = list(self.pending_events)
            if ids:
                try:
                    async with pool.acquire() as conn:
                        rows = await conn.fetch(
                            "SELECT DISTINCT execution_id::text AS id FROM durable.waits"
                            " WHERE kind = 'event' AND execution_id = ANY($1::uuid[])",
                            ids,
                        )
                    for r in rows:
                        item = self.pending_events[r["id"]]
                        await self._signal(driver, item)
                        del self.pending_events[r["id"]]
                except Exception as exc:  # keep pumping whatever happened
                    self.event_errors += 1
                    log(f"event pump: {exc!r}")
            await asyncio.sleep(0.1)

    async def _start_one(self, driver: Driver, k: int) -> None:
        """Start execution ``k`` (as :meth:`Driver.start` does, numbered ``k + 1``)."""
        shape = SHAPES[k % len(SHAPES)]
        n = k + 1
        reply = await driver._call(
            driver.stub.StartWorkflow,
            pb.StartWorkflowRequest(
                workflow_name=shape,
                input_json=json.dumps(mixed_flows.input_for(shape, n)),
                idempotency_key=f"soak-{n}-{uuid.uuid4().hex}",  # a retried start: one run
            ),
        )
        item = Started(shape, n, reply.execution_id, early_event=driver.rng.random() < 0.5)
        driver.started.append(item)
        if shape not in WAITING_SHAPES:
            return
        if item.early_event:  # sent at once: kept until the wait begins
            try:
                await self._signal(driver, item)
                return
            except Exception as exc:
                log(f"early event failed (the pump sends it): {exc!r}")
        self.pending_events[item.execution_id] = item

    async def _start_all(self, driver: Driver) -> None:
        """Start the executions at a steady rate (held back while the backlog is full).

        ``--starters`` tasks share the schedule, so that one slow start (an orchestrator
        gone: the call is retried) does not hold the others up.
        """
        args = self.args
        interval = args.minutes * 60 / args.executions
        every = max(1, args.executions // 20)
        t0 = time.monotonic()
        schedule = iter(range(args.executions))
        done = 0

        async def starter() -> None:
            nonlocal done
            for k in schedule:
                while self.unfinished > args.max_backlog:
                    await asyncio.sleep(0.2)
                    self.throttled_s += 0.2
                delay = t0 + k * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    await self._start_one(driver, k)
                except Exception as exc:
                    self.start_errors.append(repr(exc))
                    log(f"start failed: {exc!r}")
                done += 1
                if done % every == 0:
                    log(
                        f"started {done}/{args.executions}; unfinished {self.unfinished}; "
                        f"behind schedule {max(0.0, -delay):.1f}s"
                    )

        await asyncio.gather(*(starter() for _ in range(args.starters)))

    async def _vacuum(self, pool: asyncpg.Pool) -> None:
        """VACUUM the hot tables every ``--vacuum-every`` s (what autovacuum would do)."""
        while True:
            await asyncio.sleep(self.vacuum_every)
            try:
                async with pool.acquire() as conn:
                    await conn.execute(vacuum_sql(HOT_TABLES))
                self.manual_vacuums += 1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log(f"vacuum: {exc!r}")

    async def _drain(self, pool: asyncpg.Pool) -> float:
        """Wait until every execution ended and every event was sent; seconds it took."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < self.args.drain_timeout:
            async with pool.acquire() as conn:
                left = await unfinished(conn)
            if left == 0 and not self.pending_events:
                break
            await asyncio.sleep(0.5)
        return time.monotonic() - t0

    async def _faults(self, faults: Faults, t0: float, stop: asyncio.Event) -> None:
        """A fault at every multiple of ``--fault-every`` (a fixed grid, however long each
        takes), until ``stop``."""
        for k in itertools.count(1):
            wait = t0 + k * self.args.fault_every - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wait))
            if stop.is_set():
                return
            try:
                await faults.inject(time.monotonic() - t0)
            except Exception as exc:
                log(f"fault failed: {exc!r}")
                faults.done["failed_to_inject"] += 1

    async def _outcome(self, driver: Driver, conn: asyncpg.Connection) -> dict[str, Any]:
        """Each started execution's fate: lost, wrong, or right."""
        rows = await conn.fetch(
            "SELECT id::text AS id, status, result::text AS result FROM durable.executions"
            " WHERE id = ANY($1::uuid[])",
            [s.execution_id for s in driver.started],
        )
        by_id = {r["id"]: r for r in rows}
        statuses: Counter[str] = Counter()
        missing, still_running, not_completed, wrong, examples = 0, 0, 0, 0, []
        for item in driver.started:
            row = by_id.get(item.execution_id)
            if row is None:
                missing += 1
                examples.append(f"{item.shape} #{item.n} {item.execution_id}: missing")
                continue
            statuses[row["status"]] += 1
            if row["status"] not in TERMINAL:
                still_running += 1
                examples.append(f"{item.shape} #{item.n} {item.execution_id}: {row['status']}")
            elif row["status"] != "completed":
                not_completed += 1
                examples.append(f"{item.shape} #{item.n} {item.execution_id}: {row['status']}")
            elif mixed_flows._plain(json.loads(row["result"])) != mixed_flows.expected_result(
                item.shape, item.n
            ):
                wrong += 1
                examples.append(f"{item.shape} #{item.n} {item.execution_id}: wrong result")
        return {
            "by_status": dict(statuses),
            "lost": missing + still_running,
            "missing": missing,
            "unfinished": still_running,
            "ended_not_completed": not_completed,
            "wrong_result": wrong,
            "examples": examples[:5],
        }

    async def _retention(self, cluster: Cluster, pool: asyncpg.Pool, ran_s: float) -> dict:
        """A last orchestrator with a short retention age: what it deletes and keeps."""
        age = self.args.retention_age or max(10.0, ran_s / 2)
        async with pool.acquire() as conn:
            before = await table_rows(conn, HISTORY_TABLES)
            due = await conn.fetchval(
                "SELECT count(*) FROM durable.executions"
                " WHERE finished_at < now() - make_interval(secs => $1)",
                age,
            )
        log(f"retention: age {age:.0f}s; {due} of {before['executions']} executions older")
        env = {"DURABLE_RETENTION_DAYS": repr(age / 86400)}
        t0 = time.monotonic()
        proc = await cluster.start_orchestrator(len(cluster.ports), port=free_port(), env=env)
        try:
            overdue = -1
            while time.monotonic() - t0 < 300:
                async with pool.acquire() as conn:
                    overdue = await conn.fetchval(
                        "SELECT count(*) FROM durable.executions"
                        " WHERE finished_at < now() - make_interval(secs => $1 + 5)",
                        age,
                    )
                if overdue == 0:
                    break
                await asyncio.sleep(1)
            took = time.monotonic() - t0
        finally:
            proc.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.proc.wait(), 15)
            except TimeoutError:
                await proc.kill()
        async with pool.acquire() as conn:
            after = await table_rows(conn, HISTORY_TABLES)
            oldest_age = await conn.fetchval(
                "SELECT extract(epoch FROM now() - min(finished_at))::float FROM durable.executions"
            )
            orphans = await conn.fetchval(
                "SELECT count(*) FROM durable.step_attempts a WHERE NOT EXISTS"
                " (SELECT 1 FROM durable.executions e WHERE e.id = a.execution_id)"
            )
        problems = await check_invariants(self.url)
        return {
            "age_s": round(age, 1),
            "older_than_age_before": due,
            "deleted_executions": before["executions"] - after["executions"],
            "kept_executions": after["executions"],
            "left_older_than_age_plus_5s": overdue,
            "oldest_kept_age_s": None if oldest_age is None else round(oldest_age, 1),
            "orphan_attempts": orphans,
            "took_s": round(took, 1),
            "history_before": before,
            "history_after": after,
            "invariant_violations_after": len(problems),
        }

    async def run(self) -> dict[str, Any]:
        args = self.args
        db_name = f"durable_soak_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(f"{BASE_URL}/postgres")
        await admin.execute(f'CREATE DATABASE "{db_name}"')
        self.url = f"{BASE_URL}/{db_name}"
        folder = Path(tempfile.mkdtemp(prefix="durable-soak-"))
        log(f"database {db_name}; files in {folder}; seed {args.seed}")
        workload = Workload(folder)
        cluster = Cluster(args, self.url, folder, workload)
        tasks: list[asyncio.Task[None]] = []
        pool: asyncpg.Pool | None = None
        try:
            await cluster.start()
            pool = await asyncpg.create_pool(self.url, min_size=1, max_size=3)
            assert pool is not None
            async with pool.acquire() as conn:
                hot_start = await table_rows(conn, HOT_TABLES)
                hot_bytes_start = await table_bytes(conn, HOT_TABLES)
                autovacuum = await conn.fetchval("SHOW autovacuum")
            self.vacuum_every = args.vacuum_every
            if self.vacuum_every < 0:  # auto: stand in for autovacuum only where it is off
                self.vacuum_every = 30.0 if autovacuum == "off" else 0.0
            if self.vacuum_every:
                log(f"autovacuum is {autovacuum}: VACUUM hot tables every {self.vacuum_every}s")
            log(
                f"{len(cluster.ports)} orchestrators {cluster.ports}, {args.workers} workers "
                f"(x{args.concurrency}); hot tables at start {hot_start}"
            )
            faults = Faults(cluster, self.rng)
            stop = asyncio.Event()
            t0 = time.monotonic()
            driver_target = "ipv4:" + ",".join(
                cluster.address(i) for i in range(len(cluster.ports))
            )
            async with Driver(driver_target, self.url) as driver:
                driver.rng = random.Random(self.rng.random())
                tasks = [
                    asyncio.create_task(self._monitor(pool)),
                    asyncio.create_task(self._pump(driver, pool)),
                    asyncio.create_task(self._faults(faults, t0, stop)),
                ]
                if self.vacuum_every:
                    tasks.append(asyncio.create_task(self._vacuum(pool)))
                await self._start_all(driver)
                start_s = time.monotonic() - t0
                log(f"all {len(driver.started)} started in {start_s:.0f}s; faults stop; draining")
                stop.set()
                await tasks[2]
                drain_s = await self._drain(pool)
                total_s = time.monotonic() - t0
                log(f"drained in {drain_s:.0f}s (run {total_s:.0f}s); checking")
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                async with pool.acquire() as conn:
                    outcome = await self._outcome(driver, conn)
                    hot_end = await table_rows(conn, HOT_TABLES)
                    hot_bytes_end = await table_bytes(conn, HOT_TABLES)
                    await conn.execute(vacuum_sql(HOT_TABLES))
                    hot_bytes_vacuumed = await table_bytes(conn, HOT_TABLES)
                    history_end = await table_rows(conn, HISTORY_TABLES)
                    other_end = await table_rows(conn, OTHER_TABLES)
                    all_statuses = {
                        r["status"]: r["n"]
                        for r in await conn.fetch(
                            "SELECT status, count(*) AS n FROM durable.executions GROUP BY 1"
                        )
                    }
                    leftover_events = [
                        {**dict(r), "send_rpcs": self.event_rpcs.get(r["id"], 0)}
                        for r in await conn.fetch(
                            "SELECT ev.execution_id::text AS id, e.workflow_name, e.status,"
                            " ev.sent_at::text AS sent_at FROM durable.events ev"
                            " JOIN durable.executions e ON e.id = ev.execution_id ORDER BY ev.id"
                        )
                    ]
                    deadlocks = await conn.fetchval(
                        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
                    )
                    attempts = {
                        r["status"]: r["n"]
                        for r in await conn.fetch(
                            "SELECT status, count(*) AS n FROM durable.step_attempts GROUP BY 1"
                        )
                    }
                check_t0 = time.monotonic()
                problems = await workload.check(self.url, overdue_after=timedelta(seconds=30))
                check_s = time.monotonic() - check_t0
                ledger_runs = sum(1 for line in workload.ledger() if line["ev"] == "start")
            await cluster.stop()
            retention = await self._retention(cluster, pool, total_s)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await cluster.kill_all()
            if pool is not None:
                await pool.close()
            if not args.keep:
                await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                shutil.rmtree(folder, ignore_errors=True)
            await admin.close()

        effect_tag = re.compile(r"\((E\d)\)$")
        tags = Counter(m.group(1) if (m := effect_tag.search(p)) else "invariant" for p in problems)
        invariant = [p for p in problems if not effect_tag.search(p)]
        effects = [p for p in problems if effect_tag.search(p)]
        duplicated = [
            p for p in effects if p.endswith(DUPLICATE_TAGS) or "runs applied its side effect" in p
        ]
        completed = outcome["by_status"].get("completed", 0)
        resent = [e for e, n in self.event_rpcs.items() if n > 1]
        return {
            "executions_target": args.executions,
            "executions_started": len(driver.started),
            "start_errors": len(self.start_errors),
            "completed_by_status": outcome["by_status"],
            "all_executions_by_status": all_statuses,
            "faults": dict(faults.done),
            "lost": outcome["lost"],
            "lost_detail": {k: outcome[k] for k in ("missing", "unfinished")},
            "ended_not_completed": outcome["ended_not_completed"],
            "wrong_result": outcome["wrong_result"],
            "outcome_examples": outcome["examples"],
            "duplicated": len(duplicated),
            "invariant_violations": {"count": len(invariant), "first": invariant[:5]},
            "effect_violations": {
                "count": len(effects),
                "by_rule": dict(tags),
                "first": effects[:5],
            },
            "hot_tables": {"start": hot_start, "peak": self.peak_hot, "end": hot_end},
            "hot_table_bytes": {
                "start": hot_bytes_start,
                "end": hot_bytes_end,
                "end_after_vacuum": hot_bytes_vacuumed,
            },
            "autovacuum": autovacuum,
            "manual_vacuums": self.manual_vacuums,
            "history_tables": {"end": history_end, "after_retention": retention["history_after"]},
            "other_tables_end": other_end,
            "retention": {k: v for k, v in retention.items() if not k.startswith("history")},
            "step_attempts_by_status": attempts,
            "step_runs_in_ledger": ledger_runs,
            "peak_unfinished": self.peak_unfinished,
            "throttled_s": round(self.throttled_s, 1),
            "event_pump_errors": self.event_errors,
            "events": {
                "sent": self.events_sent,
                "kept_at_send": self.events_kept,
                "duplicate_sends": self.events_duplicate,
                "rpc_attempts": sum(self.event_rpcs.values()),
                "rpc_errors": dict(self.event_rpc_errors),
                "executions_sent_more_than_once": resent[:5],
                "left_in_events_table": leftover_events[:5],
            },
            "postgres_deadlocks": deadlocks,
            "start_phase_s": round(start_s, 1),
            "drain_s": round(drain_s, 1),
            "duration_s": round(total_s, 1),
            "check_s": round(check_s, 1),
            "executions_per_s": round(completed / total_s, 2),
            "step_attempts_per_s": round(sum(attempts.values()) / total_s, 1),
            "fault_log": faults.log,
            "settings": {
                **{k: getattr(args, k) for k in SETTINGS},
                "vacuum_every": self.vacuum_every,
            },
        }


def summary(r: dict[str, Any]) -> str:
    ok = (
        r["lost"] == 0
        and r["duplicated"] == 0
        and r["invariant_violations"]["count"] == 0
        and r["effect_violations"]["count"] == 0
        and r["ended_not_completed"] == 0
        and r["wrong_result"] == 0
        and all(n == 0 for n in r["hot_tables"]["end"].values())
    )
    lines = [
        "",
        f"== soak {'PASSED' if ok else 'FAILED'} ==",
        f"executions: {r['executions_started']} started of {r['executions_target']}"
        f" ({r['start_errors']} start errors); by status {r['completed_by_status']}",
        f"  all executions (children too): {r['all_executions_by_status']}",
        f"  lost {r['lost']} {r['lost_detail']}; ended not completed"
        f" {r['ended_not_completed']}; wrong result {r['wrong_result']}",
        f"faults: {r['faults']}",
        f"duplicated work: {r['duplicated']}",
        f"invariant violations: {r['invariant_violations']['count']}",
        *(f"  - {p}" for p in r["invariant_violations"]["first"]),
        f"ledger violations: {r['effect_violations']['count']} {r['effect_violations']['by_rule']}",
        *(f"  - {p}" for p in r["effect_violations"]["first"]),
        f"hot table rows: start {r['hot_tables']['start']}",
        f"                peak  {r['hot_tables']['peak']}",
        f"                end   {r['hot_tables']['end']}",
        f"hot table bytes: start {r['hot_table_bytes']['start']}",
        f"                 end   {r['hot_table_bytes']['end']}",
        f"                 end, after a VACUUM {r['hot_table_bytes']['end_after_vacuum']}",
        f"  (server autovacuum {r['autovacuum']}; the soak ran VACUUM {r['manual_vacuums']} times)",
        f"history rows: end {r['history_tables']['end']}",
        f"              after retention {r['history_tables']['after_retention']}",
        f"retention: {r['retention']}",
        f"step attempts: {r['step_attempts_by_status']}; ledger runs {r['step_runs_in_ledger']};"
        f" PostgreSQL deadlocks (retried) {r['postgres_deadlocks']}",
        f"events: {r['events']['sent']} sent ({r['events']['rpc_attempts']} RPC attempts,"
        f" failed {r['events']['rpc_errors']}; retries found already received"
        f" {r['events']['duplicate_sends']}); left in the events table:"
        f" {r['events']['left_in_events_table']}",
        f"time: {r['duration_s']}s (starting {r['start_phase_s']}s, draining {r['drain_s']}s;"
        f" held back {r['throttled_s']}s; peak backlog {r['peak_unfinished']});"
        f" {r['executions_per_s']} executions/s, {r['step_attempts_per_s']} attempts/s",
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--executions", type=int, default=100_000)
    p.add_argument("--minutes", type=float, default=30.0, help="time to start them all")
    p.add_argument("--fault-every", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--orchestrators", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=8, help="steps at once per worker")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--starters", type=int, default=4, help="driver tasks starting executions")
    p.add_argument("--lease", type=float, default=5.0, help="DURABLE_LEASE_SECONDS")
    p.add_argument("--step-seconds", default="0.002,0.02", help="each step sleeps lo,hi s")
    p.add_argument("--max-backlog", type=int, default=3000, help="unfinished before holding")
    p.add_argument(
        "--vacuum-every",
        type=float,
        default=-1.0,
        metavar="SECONDS",
        help="VACUUM the hot tables this often (0: never; default: 30 if autovacuum is off)",
    )
    p.add_argument("--drain-timeout", type=float, default=600.0)
    p.add_argument("--retention-age", type=float, default=None, help="seconds (default: half)")
    p.add_argument("--no-network-faults", dest="network_faults", action="store_false")
    p.add_argument("--keep", action="store_true", help="keep the database and the files")
    args = p.parse_args(argv)
    if args.seed is None:
        args.seed = time.time_ns() % 1_000_000
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    result = asyncio.run(Soak(args).run())
    print(summary(result))
    print("SOAK " + json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
