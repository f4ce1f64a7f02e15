"""A foreach over 10,000 items with concurrency 50: wall time and the server's peak memory.

Starts a fresh database, an orchestrator process and one worker process, runs one execution
of ``bench/foreach_flows.py`` and prints the figures and a JSON summary (also written to
bench/results/foreach.json). Peak memory is the orchestrator process's high-water RSS.

    python bench/foreach.py [--items 10000] [--worker-concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from durable import Client, ExecutionStatus

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("DURABLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


async def _read_line(proc: asyncio.subprocess.Process, prefix: bytes) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"process exited before printing {prefix!r}")
            if line.startswith(prefix):
                return line.decode().strip()


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stdout is not None
    while await proc.stdout.readline():
        pass


def _rss_kib(pid: int, field: str) -> int:
    """VmHWM (peak) or VmRSS (now) of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def run(args: argparse.Namespace) -> dict[str, object]:
    db_name = f"durable_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{BASE_URL}/postgres")
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    url = f"{BASE_URL}/{db_name}"
    env = {
        **os.environ,
        "DURABLE_DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "DURABLE_LOG_LEVEL": "WARNING",
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "durable_server",
        "serve",
        "--listen",
        "127.0.0.1:0",
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    worker = None
    try:
        address = (await _read_line(server, b"durable server ready")).split("address=")[1]
        drain_server = asyncio.create_task(_drain(server))
        idle_rss = _rss_kib(server.pid, "VmRSS")
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "durable_worker",
            "bench.foreach_flows",
            "--server",
            address,
            "--concurrency",
            str(args.worker_concurrency),
            "--log-level",
            "WARNING",
            stdout=subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        await _read_line(worker, b"durable-worker ready")
        drain_worker = asyncio.create_task(_drain(worker))
        async with Client(address) as client:
            t0 = time.perf_counter()
            execution_id = await client.start("bench_foreach", {"count": args.items})
            done = await client.wait(execution_id, timeout=1800, poll_interval=0.05)
            wall = time.perf_counter() - t0
        assert done.status == ExecutionStatus.COMPLETED, done
        assert done.result == {
            "count": args.items,
            "sum": args.items * (args.items - 1),
            "in_order": True,
        }, done.result
        summary: dict[str, object] = {
            "benchmark": "foreach_items",
            "items": args.items,
            "foreach_concurrency": 50,
            "worker_concurrency": args.worker_concurrency,
            "wall_seconds": round(wall, 2),
            "items_per_sec": round(args.items / wall, 1),
            "server_rss_idle_mib": round(idle_rss / 1024, 1),
            "server_rss_peak_mib": round(_rss_kib(server.pid, "VmHWM") / 1024, 1),
            "cpus": os.cpu_count(),
        }
        drain_server.cancel()
        drain_worker.cancel()
        return summary
    finally:
        for proc in (worker, server):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()


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
