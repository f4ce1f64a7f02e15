"""The engine's benchmark workloads on DBOS Transact, on the same PostgreSQL.

Creates a database ``bench_dbos_<pid>`` for DBOS's system tables and launches DBOS in this
process. DBOS has no separate worker: workflows run inside the application process that
starts or dequeues them, so this one process is client and worker (async workflows and
steps, on one event loop plus DBOS's thread pool for database calls). Each ``--runs``
times:

  W1        2,000 workflows of 3 (then 10) sequential no-op steps started with
            ``DBOS.start_workflow_async`` (100 calls in flight), from the first start to
            the last completion (``updated_at`` of the last SUCCESS row);
  W1_queue  the same, enqueued on a DBOS queue (``W1_3_queue``, ``W1_10_queue``);
  W2        200 workflows of 5 sequential steps, one at a time: end-to-end latency, and the
            hand-off between a step returning and the next one starting;
  W3        one workflow that enqueues 500 no-op steps on a queue and awaits them all;
  W4        N workflows parked on ``DBOS.recv_async("go")``, then ``DBOS.send_async`` to
            each: from the first send to the last completion. ``--w4-count`` sets N.

The queue's polling interval and the in-workflow ``get_result`` polling interval are
``--poll-interval`` (0.1 s; DBOS's defaults are 1 s). Prints a table, then one JSON line.
Run it in .venv-peers (``make bench-peers``):

    .venv-peers/bin/python -m bench.peers.dbos_bench [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from typing import Any

import psycopg
from dbos import DBOS, DBOSConfig, Queue, SetWorkflowID

from bench.peers import FULL, QUICK, W2_STEPS, W2_WARMUP, Runs, poll_until, table

BASE_URL = os.environ.get("DURABLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
QUEUE_NAME = "bench"
START_CONCURRENCY = 100
POLL = {"interval": 0.1}  # set from --poll-interval before launch
QUEUES: dict[str, Queue] = {}  # the registered queue, once launched
PARKED = {"count": 0}  # W4 workflows that reached their recv

# ---------------------------------------------------------------- workflows and steps


@DBOS.step()
async def noop_step(i: int) -> int:
    return i


@DBOS.step()
async def timed_step(i: int) -> list[float]:
    """A no-op that reports when it started and when it returned (wall clock, seconds)."""
    started = time.time()
    return [started, time.time()]


@DBOS.workflow()
async def sequence(steps: int) -> int:
    for i in range(steps):
        await noop_step(i)
    return steps


@DBOS.workflow()
async def timed_sequence(steps: int) -> list[list[float]]:
    return [await timed_step(i) for i in range(steps)]


@DBOS.workflow()
async def fan_out(count: int) -> int:
    handles = [await QUEUES[QUEUE_NAME].enqueue_async(noop_step, i) for i in range(count)]
    results = [await h.get_result(polling_interval_sec=POLL["interval"]) for h in handles]
    return len(results)


@DBOS.workflow()
async def wait_for_event(n: int) -> dict[str, Any]:
    PARKED["count"] += 1
    payload = await DBOS.recv_async("go", timeout_seconds=3600)
    return {"n": n, "got": payload}


# ---------------------------------------------------------------- workloads


async def gather_bounded(calls: list[Any]) -> None:
    sem = asyncio.Semaphore(START_CONCURRENCY)

    async def one(call: Any) -> None:
        async with sem:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


class Completions:
    """Reads DBOS's workflow_status table to see when workflows of a prefix are done."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def last(self, prefix: str, count: int) -> float:
        """Wait until ``count`` workflows of ``prefix`` succeeded; the last one's time (s)."""
        sql = (
            "SELECT count(*) FILTER (WHERE status = 'SUCCESS'),"
            " count(*) FILTER (WHERE status NOT IN ('SUCCESS', 'PENDING', 'ENQUEUED')),"
            " max(updated_at) FROM dbos.workflow_status WHERE workflow_uuid LIKE %s"
        )  # fmt: skip
        latest = 0.0

        async def done() -> bool:
            nonlocal latest
            cur = await self.conn.execute(sql, (prefix + "%",))
            ok, failed, last_ms = await cur.fetchone() or (0, 0, 0)
            if failed:
                raise RuntimeError(f"{failed} workflows of {prefix} failed")
            latest = (last_ms or 0) / 1000
            return bool(ok >= count)

        await poll_until(done, limit_s=3600, interval=0.25, what=f"{count} x {prefix}")
        return latest


async def w1(done: Completions, steps: int, count: int, tag: str, queued: bool) -> float:
    prefix = f"w1{'q' if queued else ''}-{steps}-{tag}-"
    queue = QUEUES[QUEUE_NAME] if queued else None

    def call(i: int) -> Any:
        async def go() -> None:
            with SetWorkflowID(f"{prefix}{i}"):
                if queue is not None:
                    await queue.enqueue_async(sequence, steps)
                else:
                    await DBOS.start_workflow_async(sequence, steps)

        return go

    t0 = time.time()
    await gather_bounded([call(i) for i in range(count)])
    return await done.last(prefix, count) - t0


async def w2(count: int, tag: str) -> tuple[list[float], list[float]]:
    e2e: list[float] = []
    handoff: list[float] = []
    for i in range(W2_WARMUP + count):
        t0 = time.perf_counter()
        with SetWorkflowID(f"w2-{tag}-{i}"):
            handle = await DBOS.start_workflow_async(timed_sequence, W2_STEPS)
        stamps = await handle.get_result()
        elapsed = time.perf_counter() - t0
        if i < W2_WARMUP:
            continue
        e2e.append(elapsed)
        handoff.extend(nxt[0] - prev[1] for prev, nxt in itertools.pairwise(stamps))
    return e2e, handoff


async def w3(count: int, tag: str) -> float:
    t0 = time.perf_counter()
    with SetWorkflowID(f"w3-{tag}"):
        handle = await DBOS.start_workflow_async(fan_out, count)
    assert await handle.get_result() == count
    return time.perf_counter() - t0


async def w4(done: Completions, count: int, tag: str) -> tuple[float, float]:
    prefix = f"w4-{tag}-"
    PARKED["count"] = 0

    def start(i: int) -> Any:
        async def go() -> None:
            with SetWorkflowID(f"{prefix}{i}"):
                await DBOS.start_workflow_async(wait_for_event, i)

        return go

    def send(i: int) -> Any:
        async def go() -> None:
            await DBOS.send_async(f"{prefix}{i}", {"ok": True}, topic="go")

        return go

    t0 = time.perf_counter()
    await gather_bounded([start(i) for i in range(count)])

    async def all_parked() -> bool:
        return PARKED["count"] >= count

    await poll_until(all_parked, limit_s=3600, interval=0.05, what=f"{count} parked")
    park_s = time.perf_counter() - t0
    t1 = time.time()
    await gather_bounded([send(i) for i in range(count)])
    return park_s, await done.last(prefix, count) - t1


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    w1_count = args.w1_count or sizes["w1"]
    w2_count = args.w2_count or sizes["w2"]
    w4_count = args.w4_count or sizes["w4"]
    runs = Runs()
    QUEUES[QUEUE_NAME] = await DBOS.register_queue_async(
        QUEUE_NAME, polling_interval_sec=args.poll_interval
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        done = Completions(conn)
        await w1(done, 3, 50, "warmup", queued=False)
        await w1(done, 3, 50, "warmup", queued=True)
        for r in range(args.runs):
            tag = f"r{r}"
            for steps in (3, 10):
                for queued in (False, True):
                    key = f"W1_{steps}{'_queue' if queued else ''}"
                    wall = await w1(done, steps, w1_count, tag, queued)
                    runs.add_w1(key, steps, w1_count, wall)
                    print(f"  run {r}: {key} {w1_count / wall:.1f} wf/s", flush=True)
            runs.add_w2(*await w2(w2_count, tag))
            runs.w3.append(await w3(sizes["w3"], tag))
            park_s, wall = await w4(done, w4_count, tag)
            runs.w4_park.append(park_s)
            runs.w4.append(wall)
            print(f"  run {r}: W2 W3 W4 done (W4 {wall:.2f} s)", flush=True)
    config = {
        "worker": "in-process: the one DBOS process starts and runs the workflows",
        "steps": "async @DBOS.step no-ops in async @DBOS.workflow",
        "w3": "queue fan-out: enqueue_async of 500 steps, then get_result of each",
        "w4": "DBOS.recv_async / DBOS.send_async",
        "poll_interval_s": args.poll_interval,
        "w1_count": w1_count,
        "w2_count": w2_count,
        "w3_count": sizes["w3"],
        "start_concurrency": START_CONCURRENCY,
        "quick": args.quick,
    }
    return runs.summary("dbos", args.runs, w4_count, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="3, or 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--w1-count", type=int, default=None, help="W1 workflows (2,000)")
    parser.add_argument("--w2-count", type=int, default=None, help="W2 workflows (200)")
    parser.add_argument("--w4-count", type=int, default=None, help="W4 executions (10,000)")
    parser.add_argument("--poll-interval", type=float, default=0.1, help="queue/result polling")
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    POLL["interval"] = args.poll_interval
    db_name = f"bench_dbos_{os.getpid()}"
    url = f"{BASE_URL.rstrip('/')}/{db_name}"
    with psycopg.connect(f"{BASE_URL.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        config: DBOSConfig = {
            "name": "bench-dbos",
            "system_database_url": url,
            "log_level": "WARNING",
        }
        DBOS(config=config)
        DBOS.launch()
        try:
            summary = asyncio.run(run(args, url))
        finally:
            DBOS.destroy()
    finally:
        with psycopg.connect(f"{BASE_URL.rstrip('/')}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    print(table(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
