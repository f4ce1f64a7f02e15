"""The performance suite (W1-W5), this engine beside its peers and the database ceiling.

Each workload runs on a fresh database with its own orchestrator process; each figure is
the median of ``--runs`` runs, with min and max. Prints a table, then one JSON line
(``SUMMARY {...}``), also written to ``bench/results/suite.json``.

- W1 throughput: ``--w1-count`` workflows of 3 (and of 10) sequential no-op steps,
  started as fast as the client can (``Client.start_many``; also once with one
  StartWorkflow call per workflow), one worker process; workflows/s and steps/s from
  the first start to the last completion.
- W2 latency: ``--w2-count`` workflows of 5 steps, one at a time: end to end p50/p90/p99,
  and the step-to-step hand-off (a step returned on the worker -> the next one started).
- W3 fan-out: one workflow with a foreach (and one with a parallel group) of 500 no-op
  steps; wall time from start to completion.
- W4 waiting: ``--w4-count`` executions parked on ``wait_for_event``, then the events
  sent; seconds from the first event sent to the last execution completed.
- W5 idle: the orchestrator with 8 idle workers long-polling; transactions per second it
  runs on PostgreSQL (``pg_stat_database``) and the CPU it uses.
- W1 (3 and 10 steps) and W2 again with the TypeScript worker (``bench/typescript``, the
  same workflows on its own queue, one Node.js process), under ``"typescript"`` in this
  engine's figures; skipped with ``--no-typescript``, or when Node.js or the SDK build
  is missing.
- Peak RSS of the orchestrator during W1 and W4; the database ceiling (``bench.ceiling``)
  and the peers (``bench/peers``, when ``make bench-peers`` installed them).

    python -m bench.suite [--runs 3] [--quick] [--only W1,W2] [--no-peers] [--no-ceiling]
                          [--no-typescript]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bench import ts_worker
from bench.harness import ROOT, Stack, rss_kib, running_stack
from durable import Client, ExecutionStatus

FLOWS = "bench.suite_flows"
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
Figure = dict[str, float]


def spread(values: Sequence[float], digits: int = 1) -> Figure:
    """Median, min and max of ``values``."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def pct(values: Sequence[float], p: int) -> float:
    """The ``p``-th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def _count(conn: asyncpg.Connection, workflow: str, status: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM durable.executions WHERE workflow_name = $1 AND status = $2",
            workflow,
            status,
        )
    )


async def _active(conn: asyncpg.Connection) -> dict[str, int]:
    """Unfinished executions by status, read through the index of unfinished ones (each
    workload runs alone on its database, so they are all ``workflow``'s)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM durable.executions"
        " WHERE status IN ('pending', 'running', 'waiting', 'compensating') GROUP BY status"
    )
    return {r["status"]: r["n"] for r in rows}


async def wait_settled(
    conn: asyncpg.Connection, workflow: str, *, waiting: int = 0, limit_s: float = 600
) -> None:
    """Poll until no execution of ``workflow`` is unfinished but ``waiting`` parked ones.

    Every 250 ms is enough: the figures come from the rows' own times. Then check that
    none failed.
    """
    deadline = time.monotonic() + limit_s
    while (active := await _active(conn)) != ({"waiting": waiting} if waiting else {}):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workflow}: still unfinished after {limit_s}s: {active}")
        await asyncio.sleep(0.25)
    failed = await _count(conn, workflow, "failed")
    if failed:
        raise RuntimeError(f"{workflow}: {failed} execution(s) failed")


async def start_many(client: Client, workflow: str, inputs: Sequence[Any]) -> list[str]:
    """Start one execution per input, as fast as the client can (200 calls in flight)."""
    sem = asyncio.Semaphore(200)

    async def one(data: Any) -> str:
        async with sem:
            return await client.start(workflow, data)

    return list(await asyncio.gather(*(one(d) for d in inputs)))


# -- workloads -----------------------------------------------------------------------------


async def w1(
    stack: Stack, conn: asyncpg.Connection, workflow: str, count: int, bulk: bool = True
) -> Figure:
    """One W1 run: workflows/s and steps/s from the first start to the last completion.

    ``bulk`` starts them with ``Client.start_many`` (StartWorkflows, 1,000 per call), else
    with one StartWorkflow call each (200 in flight).
    """
    steps = 10 if workflow.endswith("ten") else 3
    inputs = [{"i": i} for i in range(count)]
    async with Client(stack.address) as client:
        t0 = time.time()
        if bulk:
            await client.start_many(workflow, inputs)
        else:
            await start_many(client, workflow, inputs)
        await wait_settled(conn, workflow)
    last = await conn.fetchval(
        "SELECT max(finished_at) FROM durable.executions WHERE workflow_name = $1", workflow
    )
    wall = last.timestamp() - t0
    return {"workflows_per_s": count / wall, "steps_per_s": count * steps / wall}


async def w2(stack: Stack, count: int, workflow: str = "bench_w2_timed") -> dict[str, list[float]]:
    """One W2 run: end-to-end and hand-off milliseconds."""
    e2e: list[float] = []
    handoff: list[float] = []
    async with Client(stack.address) as client:
        for _ in range(count):
            t0 = time.perf_counter()
            execution_id = await client.start(workflow, {"starts": [], "ends": []})
            done = await client.wait(execution_id, timeout=30, poll_interval=0.002)
            e2e.append((time.perf_counter() - t0) * 1000)
            assert done.status == ExecutionStatus.COMPLETED, done
            starts, ends = done.result["starts"], done.result["ends"]
            handoff += [(s - e) * 1000 for s, e in zip(starts[1:], ends[:-1], strict=True)]
    return {"e2e": e2e, "handoff": handoff}


async def w3(stack: Stack, workflow: str, count: int) -> float:
    """One W3 run: seconds for one workflow fanning out to ``count`` no-op steps."""
    async with Client(stack.address) as client:
        t0 = time.perf_counter()
        # The foreach gets its items; each parallel branch gets the (small) group input.
        data = {"items": list(range(count))} if "foreach" in workflow else {"n": count}
        execution_id = await client.start(workflow, data)
        done = await client.wait(execution_id, timeout=120, poll_interval=0.002)
        assert done.status == ExecutionStatus.COMPLETED, done
        return time.perf_counter() - t0


async def w4(stack: Stack, conn: asyncpg.Connection, count: int) -> tuple[float, float]:
    """One W4 run: seconds to park ``count`` executions on an event, and from the first
    event sent to all of them completed."""
    workflow = "bench_w4_wait"
    async with Client(stack.address) as client:
        t0 = time.time()
        ids = await client.start_many(workflow, [{"n": i} for i in range(count)])
        await wait_settled(conn, workflow, waiting=count)
        parked = time.time() - t0
        sem = asyncio.Semaphore(200)

        async def send(execution_id: str) -> None:
            async with sem:
                await client.send_event(execution_id, "go", {"ok": True})

        t0 = time.time()
        await asyncio.gather(*(send(e) for e in ids))
        await wait_settled(conn, workflow)
    last = await conn.fetchval(
        "SELECT max(finished_at) FROM durable.executions WHERE workflow_name = $1", workflow
    )
    return parked, float(last.timestamp() - t0)


def _cpu_secs(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def w5(stack: Stack, conn: asyncpg.Connection, seconds: float) -> Figure:
    """One W5 run: the orchestrator's transactions/s and CPU share with idle workers parked."""
    db = stack.url.rsplit("/", 1)[1]
    sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    x0, c0, t0 = await conn.fetchval(sql, db), _cpu_secs(stack.server.pid), time.monotonic()
    await asyncio.sleep(seconds)  # the measurement window itself: nothing to poll for
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    x1, c1, t1 = await conn.fetchval(sql, db), _cpu_secs(stack.server.pid), time.monotonic()
    # This connection's own two reads are transactions too.
    return {"xacts_per_s": (x1 - x0 - 2) / (t1 - t0), "cpu_percent": 100 * (c1 - c0) / (t1 - t0)}


# -- running -------------------------------------------------------------------------------


async def repeat(runs: int, once: Callable[[], Awaitable[Any]]) -> list[Any]:
    """``once()`` ``runs`` times, after one warm-up run that is not counted."""
    await once()
    return [await once() for _ in range(runs)]


def w1_figures(count: int, results: Sequence[Figure], peak_kib: int) -> dict[str, Any]:
    """The W1 figures of ``results`` (one ``w1`` each) and the orchestrator's peak RSS."""
    return {
        "count": count,
        "workflows_per_s": spread([r["workflows_per_s"] for r in results]),
        "steps_per_s": spread([r["steps_per_s"] for r in results]),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def w2_figures(count: int, results: Sequence[dict[str, list[float]]]) -> dict[str, Any]:
    """The W2 percentiles of ``results`` (one ``w2`` each)."""
    return {
        "count": count,
        "e2e_ms": {f"p{p}": spread([pct(r["e2e"], p) for r in results], 2) for p in (50, 90, 99)},
        "handoff_ms": {
            f"p{p}": spread([pct(r["handoff"], p) for r in results], 2) for p in (50, 99)
        },
    }


async def run_engine(args: argparse.Namespace) -> dict[str, Any]:
    """Every selected workload against this engine."""
    out: dict[str, Any] = {"peer": "durable"}
    runs = args.runs

    if "W1" in args.only:
        for key, workflow, bulk in (
            ("W1_3", "bench_w1_three", True),
            ("W1_10", "bench_w1_ten", True),
            ("W1_3_single_starts", "bench_w1_three", False),
        ):
            count = args.w1_count if key != "W1_10" else max(args.w1_count // 4, 100)
            async with running_stack() as stack:
                await stack.start_worker(FLOWS, args.worker_concurrency)
                conn = await asyncpg.connect(stack.url)
                try:
                    results = await repeat(
                        runs, functools.partial(w1, stack, conn, workflow, count, bulk)
                    )
                finally:
                    await conn.close()
                peak = rss_kib(stack.server.pid, "VmHWM")
            out[key] = w1_figures(count, results, peak)
    if "W2" in args.only:
        async with running_stack() as stack:
            await stack.start_worker(FLOWS, args.worker_concurrency)
            results = await repeat(runs, lambda: w2(stack, args.w2_count))
        out["W2"] = w2_figures(args.w2_count, results)
    if "W3" in args.only:
        async with running_stack() as stack:
            await stack.start_worker(FLOWS, args.worker_concurrency)
            for key, workflow in (("W3", "bench_w3_foreach"), ("W3_parallel", "bench_w3_parallel")):
                walls = await repeat(runs, functools.partial(w3, stack, workflow, 500))
                out[key] = {"count": 500, "wall_s": spread(walls, 3)}
    if "W4" in args.only:
        async with running_stack() as stack:
            await stack.start_worker(FLOWS, args.worker_concurrency)
            conn = await asyncpg.connect(stack.url)
            try:
                results = [await w4(stack, conn, args.w4_count) for _ in range(runs)]
            finally:
                await conn.close()
            peak = rss_kib(stack.server.pid, "VmHWM")
        out["W4"] = {
            "count": args.w4_count,
            "wall_s": spread([wall for _, wall in results], 2),
            "park_s": spread([park for park, _ in results], 2),
            "peak_rss_mib": round(peak / 1024, 1),
        }
    if "W5" in args.only:
        async with running_stack() as stack:
            for _ in range(8):
                await stack.start_worker(FLOWS, 10)
            conn = await asyncpg.connect(stack.url)
            try:
                results = [await w5(stack, conn, args.w5_seconds) for _ in range(runs)]
            finally:
                await conn.close()
        out["W5"] = {
            "workers": 8,
            "seconds": args.w5_seconds,
            "xacts_per_s": spread([r["xacts_per_s"] for r in results], 2),
            "cpu_percent": spread([r["cpu_percent"] for r in results], 2),
        }
    if not args.no_typescript and args.only & {"W1", "W2"}:
        script, why = ts_worker.build()
        if script is None:
            print(f"skipping the TypeScript worker's W1/W2: {why}", flush=True)
        else:
            out["typescript"] = await run_typescript(args, script)
    return out


async def run_typescript(args: argparse.Namespace, script: Path) -> dict[str, Any]:
    """W1 (3 and 10 steps, bulk starts) and W2 with the TypeScript worker process."""
    out: dict[str, Any] = {"worker": "typescript"}
    if "W1" in args.only:
        for key, workflow, count in (
            ("W1_3", "bench_ts_w1_three", args.w1_count),
            ("W1_10", "bench_ts_w1_ten", max(args.w1_count // 4, 100)),
        ):
            async with running_stack() as stack:
                await stack.start_node_worker(script, args.worker_concurrency)
                conn = await asyncpg.connect(stack.url)
                try:
                    results = await repeat(
                        args.runs, functools.partial(w1, stack, conn, workflow, count)
                    )
                finally:
                    await conn.close()
                peak = rss_kib(stack.server.pid, "VmHWM")
            out[key] = w1_figures(count, results, peak)
    if "W2" in args.only:
        async with running_stack() as stack:
            await stack.start_node_worker(script, args.worker_concurrency)
            results = await repeat(args.runs, lambda: w2(stack, args.w2_count, "bench_ts_w2_timed"))
        out["W2"] = w2_figures(args.w2_count, results)
    return out


def run_peer(module: str, extra: Sequence[str], args: argparse.Namespace) -> dict[str, Any] | None:
    """Run a peer's benchmark in the peers' virtualenv; its last stdout line is its JSON."""
    if not PEERS_PYTHON.exists():
        return None
    cmd = [str(PEERS_PYTHON), "-m", module, *extra, "--runs", str(args.runs)]
    if args.quick:
        cmd.append("--quick")
    print(f"running {' '.join(cmd[1:])}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"{module} failed ({proc.returncode}): {proc.stderr[-2000:]}", file=sys.stderr)
        return None
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


# -- reporting -----------------------------------------------------------------------------


def _cell(doc: dict[str, Any], *path: str) -> str:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return "-"
        node = node[key]
    if isinstance(node, dict) and "median" in node:
        return f"{node['median']:g} [{node['min']:g}-{node['max']:g}]"
    return f"{node:g}" if isinstance(node, int | float) else str(node)


ROWS: list[tuple[str, tuple[str, ...]]] = [
    ("W1 3 steps: workflows/s", ("W1_3", "workflows_per_s")),
    ("W1 3 steps: steps/s", ("W1_3", "steps_per_s")),
    ("W1 3 steps, one call per start: steps/s", ("W1_3_single_starts", "steps_per_s")),
    ("W1 3 steps via a queue (DBOS): steps/s", ("W1_3_queue", "steps_per_s")),
    ("W1 10 steps: workflows/s", ("W1_10", "workflows_per_s")),
    ("W1 10 steps: steps/s", ("W1_10", "steps_per_s")),
    ("W1 10 steps via a queue (DBOS): steps/s", ("W1_10_queue", "steps_per_s")),
    ("W2 end to end p50 ms", ("W2", "e2e_ms", "p50")),
    ("W2 end to end p90 ms", ("W2", "e2e_ms", "p90")),
    ("W2 end to end p99 ms", ("W2", "e2e_ms", "p99")),
    ("W2 hand-off p50 ms", ("W2", "handoff_ms", "p50")),
    ("W2 hand-off p99 ms", ("W2", "handoff_ms", "p99")),
    ("W1 3 steps (TypeScript worker): steps/s", ("typescript", "W1_3", "steps_per_s")),
    ("W1 10 steps (TypeScript worker): steps/s", ("typescript", "W1_10", "steps_per_s")),
    ("W2 end to end p50 ms (TypeScript worker)", ("typescript", "W2", "e2e_ms", "p50")),
    ("W2 hand-off p50 ms (TypeScript worker)", ("typescript", "W2", "handoff_ms", "p50")),
    ("W2 hand-off p99 ms (TypeScript worker)", ("typescript", "W2", "handoff_ms", "p99")),
    ("W3 foreach 500: s", ("W3", "wall_s")),
    ("W3 parallel 500: s", ("W3_parallel", "wall_s")),
    ("W4 events: count", ("W4", "count")),
    ("W4 events: s", ("W4", "wall_s")),
    ("W4 parking them all: s", ("W4", "park_s")),
    ("W5 idle: xacts/s", ("W5", "xacts_per_s")),
    ("W5 idle: CPU %", ("W5", "cpu_percent")),
    ("peak RSS MiB (W1 / W4)", ("W1_3", "peak_rss_mib")),
    ("peak RSS MiB (W4)", ("W4", "peak_rss_mib")),
]


def table(engines: Sequence[dict[str, Any]], ceiling: dict[str, Any] | None) -> str:
    """The figures side by side: one column per engine, ``median [min-max]``."""
    head = ["figure", *(e["peer"] for e in engines)]
    rows = [[label, *(_cell(e, *path) for e in engines)] for label, path in ROWS]
    rows = [r for r in rows if any(c != "-" for c in r[1:])]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if ceiling:
        for name, by_clients in ceiling.items():
            cells = ", ".join(f"{c} clients {_cell(by_clients, c)}" for c in by_clients)
            lines.append(f"ceiling {name} tps: {cells}")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    engine = await run_engine(args)
    engines = [engine]
    if not args.no_peers:
        peer_args = args.peer_args
        for module, extra in (
            ("bench.peers.dbos_bench", []),
            ("bench.peers.temporal_bench", ["--store", "memory"]),
            ("bench.peers.temporal_bench", ["--store", "file"]),
        ):
            figures = run_peer(module, [*extra, *peer_args], args)
            if figures is not None:
                engines.append(figures)
    ceiling: dict[str, Any] | None = None
    if not args.no_ceiling:
        from bench import ceiling as ceiling_bench

        seconds = 3 if args.quick else 10
        measured = ceiling_bench.measure(seconds=seconds, runs=args.runs)
        ceiling = measured["ceiling"]  # type: ignore[assignment]  # a dict by its contract
    summary: dict[str, Any] = {
        "suite": "durable-bench",
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "engines": engines,
        "ceiling": ceiling,
    }
    print()
    print(table(engines, ceiling))
    return summary


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--only", default="W1,W2,W3,W4,W5", help="comma-separated workloads")
    parser.add_argument("--w1-count", type=int, default=2000)
    parser.add_argument("--w2-count", type=int, default=200)
    parser.add_argument("--w4-count", type=int, default=10_000)
    parser.add_argument("--w5-seconds", type=float, default=60.0)
    parser.add_argument("--worker-concurrency", type=int, default=100)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument(
        "--no-typescript",
        action="store_true",
        help="skip W1/W2 with the TypeScript worker (bench/typescript)",
    )
    parser.add_argument(
        "--peer-args",
        default="",
        help="extra arguments for the peers' benchmarks, e.g. --w4-count 2000",
    )
    args = parser.parse_args(argv)
    args.only = {w.strip().upper() for w in args.only.split(",")}
    args.peer_args = args.peer_args.split()
    if args.quick:
        args.w1_count, args.w2_count = min(args.w1_count, 300), min(args.w2_count, 30)
        args.w4_count, args.w5_seconds = min(args.w4_count, 500), min(args.w5_seconds, 5.0)
    return args


def main() -> None:
    args = parse_args()
    summary = asyncio.run(main_async(args))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
