"""A foreach over 10,000 items with concurrency 50: wall time and the server's peak memory.

Starts a fresh database, an orchestrator process and one worker process, runs one execution
of ``bench/foreach_flows.py`` and prints the figures and a JSON summary (also written to
bench/results/foreach.json). Peak memory is the orchestrator process's high-water RSS.

    python -m bench.foreach [--items 10000] [--worker-concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from bench.harness import ROOT, rss_kib, running_stack
from durable import Client, ExecutionStatus


async def run(args: argparse.Namespace) -> dict[str, object]:
    async with running_stack() as stack:
        idle_rss = rss_kib(stack.server.pid, "VmRSS")
        await stack.start_worker("bench.foreach_flows", args.worker_concurrency)
        async with Client(stack.address) as client:
            t0 = time.perf_counter()
            execution_id = await client.start("bench_foreach", {"count": args.items})
            done = await client.wait(execution_id, timeout=1800, poll_interval=0.05)
            wall = time.perf_counter() - t0
        peak_rss = rss_kib(stack.server.pid, "VmHWM")
    assert done.status == ExecutionStatus.COMPLETED, done
    expected = {"count": args.items, "sum": args.items * (args.items - 1), "in_order": True}
    assert done.result == expected, done.result
    return {
        "benchmark": "foreach_items",
        "items": args.items,
        "foreach_concurrency": 50,
        "worker_concurrency": args.worker_concurrency,
        "wall_seconds": round(wall, 2),
        "items_per_sec": round(args.items / wall, 1),
        "server_rss_idle_mib": round(idle_rss / 1024, 1),
        "server_rss_peak_mib": round(peak_rss / 1024, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--worker-concurrency", type=int, default=50)
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(
        f"foreach over {summary['items']} items: {summary['wall_seconds']} s "
        f"({summary['items_per_sec']} items/s)"
    )
    print(
        f"orchestrator RSS idle / peak MiB: {summary['server_rss_idle_mib']} / "
        f"{summary['server_rss_peak_mib']}"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "foreach.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
