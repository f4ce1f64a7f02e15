"""10,000 executions waiting for an event at once: their cost, and delivering one event.

Starts a fresh database, an orchestrator process and one worker process; starts N
executions of ``bench/waiting_flows.py`` and lets each one park on ``wait_for_event``.
Then it measures the database size per waiting execution, the orchestrator's memory,
and, for a sample of them, how long SendEvent takes and how long until the execution
has completed. Prints the figures and a JSON summary (also bench/results/waiting.json).

    python -m bench.waiting [--executions 10000] [--sample 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time

import asyncpg

from bench.harness import ROOT, rss_kib, running_stack
from durable import Client, ExecutionStatus

SIZE_SQL = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'durable' AND c.relkind IN ('r', 'm')
"""


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def _wait_for(conn: asyncpg.Connection, sql: str, target: int) -> None:
    while await conn.fetchval(sql) < target:  # noqa: ASYNC110 - another process's rows
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with running_stack() as stack:
        conn = await asyncpg.connect(stack.url)
        try:
            await conn.execute("VACUUM ANALYZE")
            empty_bytes = int(await conn.fetchval(SIZE_SQL))
            await stack.start_worker("bench.waiting_flows", args.worker_concurrency)
            async with Client(stack.address) as client:
                sem = asyncio.Semaphore(100)

                async def start(i: int) -> str:
                    async with sem:
                        return await client.start("bench_wait_event", {"n": i})

                t0 = time.perf_counter()
                ids = await asyncio.gather(*(start(i) for i in range(args.executions)))
                async with asyncio.timeout(1800):
                    await _wait_for(conn, "SELECT count(*) FROM durable.waits", args.executions)
                parked_s = time.perf_counter() - t0
                await conn.execute("VACUUM ANALYZE")
                waiting_bytes = int(await conn.fetchval(SIZE_SQL))
                rss_now = rss_kib(stack.server.pid, "VmRSS")
                rss_peak = rss_kib(stack.server.pid, "VmHWM")

                send_ms: list[float] = []
                resume_ms: list[float] = []
                for execution_id in random.sample(ids, args.sample):
                    t1 = time.perf_counter()
                    delivered = await client.send_event(execution_id, "go", {"ok": True})
                    send_ms.append((time.perf_counter() - t1) * 1000)
                    assert delivered, execution_id
                    done = await client.wait(execution_id, timeout=60, poll_interval=0.001)
                    resume_ms.append((time.perf_counter() - t1) * 1000)
                    assert done.status == ExecutionStatus.COMPLETED, done
        finally:
            await conn.close()
    per_execution = (waiting_bytes - empty_bytes) / args.executions
    return {
        "benchmark": "waiting_for_events",
        "executions": args.executions,
        "seconds_to_park_all": round(parked_s, 1),
        "db_bytes_per_waiting_execution": round(per_execution),
        "db_mib_total_waiting": round(waiting_bytes / 2**20, 1),
        "server_rss_mib": round(rss_now / 1024, 1),
        "server_rss_peak_mib": round(rss_peak / 1024, 1),
        "sample": args.sample,
        "send_event_p50_ms": round(statistics.median(send_ms), 2),
        "send_event_p99_ms": round(_pct(send_ms, 99), 2),
        "event_to_completed_p50_ms": round(statistics.median(resume_ms), 2),
        "event_to_completed_p99_ms": round(_pct(resume_ms, 99), 2),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--worker-concurrency", type=int, default=50)
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(
        f"{summary['executions']} executions parked in {summary['seconds_to_park_all']} s; "
        f"{summary['db_bytes_per_waiting_execution']} bytes of database each "
        f"({summary['db_mib_total_waiting']} MiB in all)"
    )
    print(
        f"orchestrator RSS now / peak MiB: {summary['server_rss_mib']} / "
        f"{summary['server_rss_peak_mib']}"
    )
    print(
        f"SendEvent p50/p99 ms: {summary['send_event_p50_ms']} / {summary['send_event_p99_ms']}; "
        f"event to completed p50/p99 ms: {summary['event_to_completed_p50_ms']} / "
        f"{summary['event_to_completed_p99_ms']}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "waiting.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
