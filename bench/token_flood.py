"""What made-up tokens cost a legitimate caller.

Starts an orchestrator process with tokens required (``DURABLE_AUTH=on``), issues a client
token, and has one caller make ``ListExecutions`` calls one after another: first alone, then
while ``--ids`` calls with well-formed tokens of random ids (``--concurrency`` at a time) hit
the orchestrator. Reports the legitimate caller's p50/p99 latency in both phases, how the
made-up calls were answered, and what each cost: database queries (from
``pg_stat_database``) and the orchestrator's CPU time. Prints the figures, then one JSON line:
``{"token_flood": {"alone": {"p50_ms": ..., "p99_ms": ...}, "flood": {...}, ...}}``.

    python -m bench.token_flood [--ids 5000] [--concurrency 500] [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc

from bench.harness import ROOT, running_stack
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc
from durable_server.auth.tokens import Role, issue_token

STATS_SECS = 11  # PostgreSQL 15+ reports a backend's counts within 10 s of its last query


def _metadata(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def _issue(url: str) -> str:
    conn = await asyncpg.connect(url, server_settings={"search_path": "durable"})
    try:
        issued = await issue_token(conn, role=Role.CLIENT, name="bench", now=datetime.now(UTC))
    finally:
        await conn.close()
    return issued.token


async def _latencies(
    stub: pbgrpc.WorkflowServiceStub, token: str, calls: int, failed: collections.Counter[str]
) -> list[float]:
    """Milliseconds of the ``calls`` ListExecutions (one after another) that succeeded."""
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        try:
            await stub.ListExecutions(
                pb.ListExecutionsRequest(page_size=10), metadata=_metadata(token)
            )
        except grpc.aio.AioRpcError as exc:
            failed[exc.code().name] += 1
            continue
        took.append((time.perf_counter() - started) * 1000)
    return took


async def _made_up(address: str, ids: int, concurrency: int) -> collections.Counter[str]:
    """Calls with well-formed tokens of random ids; how each was answered."""
    codes: collections.Counter[str] = collections.Counter()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pbgrpc.WorkflowServiceStub(channel)

        async def one() -> None:
            token = f"dur_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
            try:
                await stub.ListExecutions(pb.ListExecutionsRequest(), metadata=_metadata(token))
                codes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1

        for start in range(0, ids, concurrency):
            await asyncio.gather(*(one() for _ in range(min(concurrency, ids - start))))
    return codes


def _cpu_secs(pid: int) -> float:
    """User + system CPU time a process has used (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _transactions(url: str) -> int:
    """Transactions the database has counted (each of the orchestrator's queries is one)."""
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return count


def _summary(took: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(took, n=100)
    return {"calls": len(took), "p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2)}


async def run(ids: int, concurrency: int, calls: int) -> dict[str, object]:
    """The legitimate caller's latency alone and under the flood of made-up tokens."""
    async with running_stack({"DURABLE_AUTH": "on"}) as stack:
        token = await _issue(stack.url)
        async with grpc.aio.insecure_channel(stack.address) as channel:
            stub = pbgrpc.WorkflowServiceStub(channel)
            failed: collections.Counter[str] = collections.Counter()
            await _latencies(stub, token, 20, failed)  # warm up
            await asyncio.sleep(STATS_SECS)
            xacts = await _transactions(stack.url)
            alone = await _latencies(stub, token, calls, failed)
            await asyncio.sleep(STATS_SECS)
            xacts_after = await _transactions(stack.url)
            per_call = (xacts_after - xacts - 1) / (calls + len(failed))  # one is the stats query
            xacts, cpu = xacts_after, _cpu_secs(stack.server.pid)
            flood = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.token_flood", "--flood", stack.address,
                "--ids", str(ids), "--concurrency", str(concurrency),
                stdout=subprocess.PIPE, cwd=ROOT,
            )  # fmt: skip
            assert flood.stdout is not None
            output = asyncio.create_task(flood.stdout.read())
            during: list[float] = []
            started = time.monotonic()
            while not output.done():
                during += await _latencies(stub, token, 1, failed)
            flood_secs = time.monotonic() - started
            await flood.wait()
            codes = json.loads(await output)
            cpu = _cpu_secs(stack.server.pid) - cpu
            await asyncio.sleep(STATS_SECS)
            xacts = await _transactions(stack.url) - xacts - 1 - round(len(during) * per_call)
    return {
        "ids": ids,
        "concurrency": concurrency,
        "flood_seconds": round(flood_secs, 2),
        "made_up_codes": dict(codes),
        "legitimate_failures": dict(failed),
        "server_cpu_ms_per_made_up_call": round(cpu / ids * 1000, 3),
        "queries_per_made_up_call": round(max(xacts, 0) / ids, 3),
        "alone": _summary(alone),
        "flood": _summary(during),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--flood", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:  # the made-up calls, from a process of their own
        print(json.dumps(asyncio.run(_made_up(args.flood, args.ids, args.concurrency))))
        return
    result = asyncio.run(run(args.ids, args.concurrency, args.calls))
    alone, flood = result["alone"], result["flood"]
    assert isinstance(alone, dict)
    assert isinstance(flood, dict)
    print(
        f"legitimate caller alone: p50 {alone['p50_ms']} ms, p99 {alone['p99_ms']} ms "
        f"({alone['calls']} calls)"
    )
    print(
        f"under {result['ids']} made-up token ids ({result['concurrency']} at a time, "
        f"{result['flood_seconds']} s, {result['made_up_codes']}): p50 {flood['p50_ms']} ms, "
        f"p99 {flood['p99_ms']} ms ({flood['calls']} calls); "
        f"legitimate calls failed: {result['legitimate_failures']}"
    )
    print(
        f"per made-up call: {result['queries_per_made_up_call']} database queries, "
        f"{result['server_cpu_ms_per_made_up_call']} ms of orchestrator CPU "
        f"(the legitimate caller's calls and the stats query subtracted)"
    )
    print(json.dumps({"token_flood": result}))


if __name__ == "__main__":
    main()
