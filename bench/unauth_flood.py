"""What a flood of large unauthenticated requests makes the orchestrator hold.

Starts an orchestrator process with tokens required (``DURABLE_AUTH=on``) and sends
``--rounds`` rounds of ``--concurrency`` concurrent ``StartWorkflow`` calls without a token,
each carrying ``--size-mb`` MB of input. Samples the orchestrator's resident set size
(``VmRSS``) before, throughout (the peak) and ``--settle`` seconds after the flood, and counts
the status codes the callers got (all should be UNAUTHENTICATED). Prints the figures, then
one JSON line: ``{"unauth_flood": {"rss_before_mb": ..., "rss_peak_mb": ..., ...}}``.

    python -m bench.unauth_flood [--concurrency 64] [--rounds 5] [--size-mb 5.9]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import time

import grpc

from bench.harness import rss_kib, running_stack
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc

SAMPLE_SECS = 0.02


async def _flood(
    address: str, concurrency: int, rounds: int, size: int
) -> collections.Counter[str]:
    """Send the unauthenticated calls; the status code of each."""
    payload = '"' + "x" * (size - 2) + '"'
    request = pb.StartWorkflowRequest(workflow_name="flood", input_json=payload)
    codes: collections.Counter[str] = collections.Counter()
    options = [("grpc.max_send_message_length", size + 1024 * 1024)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = pbgrpc.WorkflowServiceStub(channel)

        async def one() -> None:
            try:
                await stub.StartWorkflow(request, timeout=120)
                codes["OK"] += 1
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] += 1

        for _ in range(rounds):
            await asyncio.gather(*(one() for _ in range(concurrency)))
    return codes


async def _sample(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib(pid, "VmRSS"))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_SECS)


async def run(concurrency: int, rounds: int, size_mb: float, settle: float) -> dict[str, object]:
    """Flood an orchestrator; its RSS before, at the peak and after, in MB."""
    size = int(size_mb * 1_000_000)
    async with running_stack({"DURABLE_AUTH": "on"}) as stack:
        pid = stack.server.pid
        before = rss_kib(pid, "VmRSS")
        peak, stop = [before], asyncio.Event()
        sampler = asyncio.create_task(_sample(pid, peak, stop))
        started = time.monotonic()
        codes = await _flood(stack.address, concurrency, rounds, size)
        took = time.monotonic() - started
        await asyncio.sleep(settle)  # let the server release what it can
        stop.set()
        await sampler
        after = rss_kib(pid, "VmRSS")
    return {
        "requests": concurrency * rounds,
        "concurrency": concurrency,
        "request_mb": size / 1_000_000,
        "seconds": round(took, 2),
        "codes": dict(codes),
        "rss_before_mb": round(before / 1024, 1),
        "rss_peak_mb": round(peak[0] / 1024, 1),
        "rss_after_mb": round(after / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=float, default=5.9)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before 'after'")
    args = parser.parse_args()
    result = asyncio.run(run(args.concurrency, args.rounds, args.size_mb, args.settle))
    print(
        f"{result['requests']} unauthenticated requests of {result['request_mb']} MB "
        f"({result['concurrency']} at a time) in {result['seconds']} s: {result['codes']}"
    )
    print(
        f"orchestrator RSS: before {result['rss_before_mb']} MB, "
        f"peak {result['rss_peak_mb']} MB, after {result['rss_after_mb']} MB"
    )
    print(json.dumps({"unauth_flood": result}))


if __name__ == "__main__":
    main()
