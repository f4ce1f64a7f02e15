"""The engine's benchmark workloads on Temporal (``temporal server start-dev``, Python SDK).

Starts ``temporal server start-dev`` (headless, on free loopback ports; ``--store file``
adds ``--db-filename`` in a temporary directory, ``--store memory`` keeps its in-memory
SQLite), waits until its frontend answers, and starts ONE worker process (a
``temporalio.worker.Worker`` with the SDK's default sandbox and slot limits) for the
workflows and regular (not local) activities below. Then, each ``--runs`` times:

  W1  2,000 workflows of 3 (then 10) sequential no-op activities, started as fast as the
      client can (100 start calls in flight); from the first start to the last close time.
  W2  200 workflows of 5 sequential activities, one at a time: end-to-end latency, and the
      hand-off between an activity returning on the worker and the next one starting there.
  W3  one workflow running 500 no-op activities in parallel (asyncio.gather): wall time.
  W4  N workflows parked on a signal wait (``workflow.wait_condition``), then one signal to
      each: from the first signal sent to the last close time. ``--w4-count`` sets N.

Prints a table, then one JSON line. Run it in .venv-peers (``make bench-peers``):

    .venv-peers/bin/python -m bench.peers.temporal_bench --store memory|file [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench.peers import FULL, QUICK, W2_STEPS, W2_WARMUP, Runs, free_port, poll_until, table

ROOT = Path(__file__).resolve().parents[2]
TASK_QUEUE = "bench"
STEP_TIMEOUT = timedelta(minutes=5)
START_CONCURRENCY = 100
# Set by a W4 workflow once it waits, so the runner can count parked workflows in one query.
PARKED = SearchAttributeKey.for_bool("BenchParked")

# ---------------------------------------------------------------- workflows and activities


@activity.defn
async def noop(i: int) -> int:
    return i


@activity.defn
async def timed(i: int) -> list[float]:
    """A no-op that reports when it started and when it returned (wall clock, seconds)."""
    started = time.time()
    return [started, time.time()]


@workflow.defn
class Sequence:
    @workflow.run
    async def run(self, steps: int) -> int:
        for i in range(steps):
            await workflow.execute_activity(noop, i, start_to_close_timeout=STEP_TIMEOUT)
        return steps


@workflow.defn
class TimedSequence:
    @workflow.run
    async def run(self, steps: int) -> list[list[float]]:
        return [
            await workflow.execute_activity(timed, i, start_to_close_timeout=STEP_TIMEOUT)
            for i in range(steps)
        ]


@workflow.defn
class FanOut:
    @workflow.run
    async def run(self, count: int) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_activity(noop, i, start_to_close_timeout=STEP_TIMEOUT)
                for i in range(count)
            )
        )
        return len(results)


@workflow.defn
class WaitForEvent:
    def __init__(self) -> None:
        self.payload: dict[str, Any] | None = None

    @workflow.signal
    def go(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        workflow.upsert_search_attributes([PARKED.value_set(True)])
        await workflow.wait_condition(lambda: self.payload is not None)
        return {"n": n, "got": self.payload}


async def serve_worker(address: str) -> None:
    """The worker process: register everything above on TASK_QUEUE until stdin closes."""
    client = await Client.connect(address)
    # This module is imported once and passed through the sandbox rather than re-imported
    # for every workflow run (it also holds the runner, which a workflow file would not).
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("bench")
    )
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[Sequence, TimedSequence, FanOut, WaitForEvent],
        activities=[noop, timed],
        workflow_runner=runner,
    ):
        print("temporal-worker ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# ---------------------------------------------------------------- server and worker processes


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the temporal CLI is not installed: run `make bench-peers`")
    return found


@contextlib.asynccontextmanager
async def temporal_server(
    store: str, tmp: Path, pragmas: list[str] | None = None
) -> AsyncIterator[tuple[str, Client]]:
    """``temporal server start-dev`` on free ports; its address and a connected client."""
    port = free_port()
    args = [
        temporal_binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
        "--port", str(port), "--http-port", str(free_port()),
        "--metrics-port", str(free_port()), "--log-level", "error",
        "--search-attribute", f"{PARKED.name}=Bool",
    ]  # fmt: skip
    if store == "file":
        args += ["--db-filename", str(tmp / "temporal.db")]
    for pragma in pragmas or []:
        args += ["--sqlite-pragma", pragma]
    log = (tmp / "server.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        *args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    address = f"127.0.0.1:{port}"
    try:
        client: Client | None = None

        async def ready() -> bool:
            nonlocal client
            if server.returncode is not None:
                raise RuntimeError(f"temporal server exited: {(tmp / 'server.log').read_text()}")
            try:
                if client is None:
                    client = await Client.connect(address)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default"), timeout=timedelta(seconds=2)
                )
            except Exception:
                return False
            return True

        await poll_until(ready, limit_s=120, interval=0.1, what="temporal server")
        assert client is not None
        yield address, client
    finally:
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), timeout=30)
            except TimeoutError:
                server.kill()
                await server.wait()
        log.close()


@contextlib.asynccontextmanager
async def worker_process(address: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.peers.temporal_bench", "--serve-worker", address,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        async with asyncio.timeout(120):
            while True:
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError("temporal worker exited before it was ready")
                if line.startswith(b"temporal-worker ready"):
                    break
        yield proc
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# ---------------------------------------------------------------- workloads


async def start_many(client: Client, wf: Any, arg: int, ids: list[str]) -> None:
    sem = asyncio.Semaphore(START_CONCURRENCY)

    async def one(wid: str) -> None:
        async with sem:
            await client.start_workflow(wf, arg, id=wid, task_queue=TASK_QUEUE)

    await asyncio.gather(*(one(wid) for wid in ids))


async def last_close(client: Client, wf_type: str, prefix: str, count: int) -> float:
    """Wait until ``count`` workflows of ``prefix`` are closed; the latest close time (epoch s)."""
    query = f"WorkflowType = '{wf_type}' AND WorkflowId STARTS_WITH '{prefix}'"

    async def all_closed() -> bool:
        # Closed first, then completed: more closed than completed means some failed.
        closed = await client.count_workflows(query + " AND ExecutionStatus != 'Running'")
        done = await client.count_workflows(query + " AND ExecutionStatus = 'Completed'")
        if closed.count > done.count:
            raise RuntimeError(f"{closed.count - done.count} of {prefix} did not complete")
        return done.count >= count

    await poll_until(all_closed, limit_s=3600, interval=0.25, what=f"{count} x {prefix}")
    latest = 0.0
    async for wf in client.list_workflows(query):
        assert wf.close_time is not None
        latest = max(latest, wf.close_time.timestamp())
    return latest


async def w1(client: Client, steps: int, count: int, tag: str) -> float:
    """Wall seconds from the first start to the last completion of ``count`` workflows."""
    prefix = f"w1-{steps}-{tag}-"
    t0 = time.time()
    await start_many(client, Sequence.run, steps, [f"{prefix}{i}" for i in range(count)])
    return await last_close(client, "Sequence", prefix, count) - t0


async def w2(client: Client, count: int, tag: str) -> tuple[list[float], list[float]]:
    e2e: list[float] = []
    handoff: list[float] = []
    for i in range(W2_WARMUP + count):
        t0 = time.perf_counter()
        stamps = await client.execute_workflow(
            TimedSequence.run, W2_STEPS, id=f"w2-{tag}-{i}", task_queue=TASK_QUEUE
        )
        elapsed = time.perf_counter() - t0
        if i < W2_WARMUP:
            continue
        e2e.append(elapsed)
        handoff.extend(nxt[0] - prev[1] for prev, nxt in itertools.pairwise(stamps))
    return e2e, handoff


async def w3(client: Client, count: int, tag: str) -> float:
    t0 = time.perf_counter()
    done = await client.execute_workflow(FanOut.run, count, id=f"w3-{tag}", task_queue=TASK_QUEUE)
    assert done == count
    return time.perf_counter() - t0


async def w4(client: Client, count: int, tag: str) -> tuple[float, float]:
    """Seconds to park ``count`` workflows (not timed), then from signalling to last close."""
    prefix = f"w4-{tag}-"
    ids = [f"{prefix}{i}" for i in range(count)]
    t0 = time.perf_counter()
    await start_many(client, WaitForEvent.run, 0, ids)
    query = f"{PARKED.name} = true AND WorkflowId STARTS_WITH '{prefix}'"

    async def all_parked() -> bool:
        return (await client.count_workflows(query)).count >= count

    await poll_until(all_parked, limit_s=3600, interval=0.25, what=f"{count} parked")
    park_s = time.perf_counter() - t0
    sem = asyncio.Semaphore(START_CONCURRENCY)

    async def signal(wid: str) -> None:
        async with sem:
            await client.get_workflow_handle(wid).signal(WaitForEvent.go, {"ok": True})

    t1 = time.time()
    await asyncio.gather(*(signal(wid) for wid in ids))
    return park_s, await last_close(client, "WaitForEvent", prefix, count) - t1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    w1_count = args.w1_count or sizes["w1"]
    w2_count = args.w2_count or sizes["w2"]
    w4_count = args.w4_count or sizes["w4"]
    runs = Runs()
    with tempfile.TemporaryDirectory(prefix="bench-temporal-") as tmp:
        server = temporal_server(args.store, Path(tmp), args.sqlite_pragma)
        async with server as (address, client), worker_process(address):
            await w1(client, 3, 50, "warmup")
            for r in range(args.runs):
                tag = f"r{r}"
                for steps in (3, 10):
                    wall = await w1(client, steps, w1_count, tag)
                    runs.add_w1(f"W1_{steps}", steps, w1_count, wall)
                    print(f"  run {r}: W1_{steps} {w1_count / wall:.1f} wf/s", flush=True)
                runs.add_w2(*await w2(client, w2_count, tag))
                runs.w3.append(await w3(client, sizes["w3"], tag))
                park_s, wall = await w4(client, w4_count, tag)
                runs.w4_park.append(park_s)
                runs.w4.append(wall)
                print(f"  run {r}: W2 W3 W4 done (W4 {wall:.2f} s)", flush=True)
    config = {
        "store": args.store,
        "sqlite_pragmas": args.sqlite_pragma or [],
        "worker": "1 worker process (temporalio Worker, default sandbox and slot limits)",
        "activities": "regular activities (not local), async no-ops",
        "w1_count": w1_count,
        "w2_count": w2_count,
        "w3_count": sizes["w3"],
        "start_concurrency": START_CONCURRENCY,
        "quick": args.quick,
    }
    return runs.summary(f"temporal-{args.store}", args.runs, w4_count, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["memory", "file"], default="memory")
    parser.add_argument("--runs", type=int, default=None, help="3, or 1 with --quick")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--w1-count", type=int, default=None, help="W1 workflows (2,000)")
    parser.add_argument("--w2-count", type=int, default=None, help="W2 workflows (200)")
    parser.add_argument("--w4-count", type=int, default=None, help="W4 executions (10,000)")
    parser.add_argument(
        "--sqlite-pragma", action="append", metavar="PRAGMA=VALUE",
        help="passed to start-dev (default: none, its own defaults)",
    )  # fmt: skip
    parser.add_argument("--serve-worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        # Import the workflows under their module's name, not as __main__, for the sandbox.
        from bench.peers import temporal_bench

        asyncio.run(temporal_bench.serve_worker(args.serve_worker))
        return
    args.runs = args.runs or (1 if args.quick else 3)
    summary = asyncio.run(run(args))
    print(table(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
