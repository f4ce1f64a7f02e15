"""End-to-end throughput and latency of the README example (2 steps) with one worker.

Starts a fresh database, an orchestrator process and one worker process, then measures:
  * the p50/p90/p99 latency of a single execution (start -> completed, one at a time);
  * executions per second for N executions started at once and run to completion;
  * for scale, how many single-row commits per second PostgreSQL itself does here.
Prints the figures and a JSON summary (also written to bench/results/throughput.json).

    python -m bench.throughput [--executions 1000] [--latency-runs 100] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import asyncpg

from bench.harness import ROOT, running_stack
from durable import Client, ExecutionStatus


async def postgres_commit_rate(url: str, seconds: float = 2.0) -> float:
    """Single-row INSERT transactions per second on one connection (the commit ceiling)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE bench_commit (id bigserial, v int)")
        n = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            async with conn.transaction():
                await conn.execute("INSERT INTO bench_commit (v) VALUES (1)")
            n += 1
        return n / seconds
    finally:
        await conn.close()


async def measure_latency(client: Client, runs: int) -> list[float]:
    """Start-to-completed seconds of ``runs`` executions, one at a time."""
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        execution_id = await client.start("process_order", {"id": i, "items": [1]})
        done = await client.wait(execution_id, timeout=30, poll_interval=0.001)
        out.append(time.perf_counter() - t0)
        assert done.status == ExecutionStatus.COMPLETED, done
    return out


async def measure_throughput(client: Client, n: int, concurrency: int) -> tuple[float, float]:
    """Seconds to start ``n`` executions and to see all of them completed."""
    sem = asyncio.Semaphore(concurrency)

    async def start(i: int) -> str:
        async with sem:
            return await client.start("process_order", {"id": i, "items": [i]})

    t0 = time.perf_counter()
    await asyncio.gather(*(start(i) for i in range(n)))
    started = time.perf_counter() - t0
    while True:
        page = await client.list_executions(
            workflow="process_order", statuses=[ExecutionStatus.COMPLETED], page_size=1
        )
        if page.total_count >= n:
            break
        await asyncio.sleep(0.01)
    return started, time.perf_counter() - t0


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with running_stack() as stack:
        await stack.start_worker("examples.order", args.worker_concurrency)
        async with Client(stack.address) as client:
            await measure_latency(client, 10)  # warm up
            latencies = await measure_latency(client, args.latency_runs)
            started_s, total_s = await measure_throughput(client, args.executions, args.concurrency)
        commits = await postgres_commit_rate(stack.url)
    q = statistics.quantiles(latencies, n=100)
    return {
        "benchmark": "e2e_process_order_2_steps",
        "executions": args.executions,
        "workers": 1,
        "worker_concurrency": args.worker_concurrency,
        "start_concurrency": args.concurrency,
        "executions_per_sec": round(args.executions / total_s, 1),
        "start_calls_per_sec": round(args.executions / started_s, 1),
        "latency_runs": args.latency_runs,
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "latency_p90_ms": round(q[89] * 1000, 2),
        "latency_p99_ms": round(q[98] * 1000, 2),
        "postgres_single_commits_per_sec": round(commits, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100, help="concurrent start calls")
    parser.add_argument("--worker-concurrency", type=int, default=50)
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(
        f"executions/s (1 worker, {summary['executions']} executions): "
        f"{summary['executions_per_sec']}"
    )
    print(
        f"single execution latency p50/p90/p99 ms: {summary['latency_p50_ms']} / "
        f"{summary['latency_p90_ms']} / {summary['latency_p99_ms']}"
    )
    print(
        f"PostgreSQL single-row commits/s on one connection: "
        f"{summary['postgres_single_commits_per_sec']}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
