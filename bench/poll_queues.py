"""PollTasks naming many queues at once: what it costs, and what other clients wait meanwhile.

Starts a fresh database and an orchestrator process, registers a worker and starts a few
executions (so ListExecutions has a page to read), then sends ``--calls`` concurrent
PollTasks calls (no wait), each naming ``--queues`` empty queues, ``--rounds`` times over,
while a client calls ListExecutions in a loop. Prints the total time of the polls, the
p50/max latency of the concurrent ListExecutions calls, and a JSON summary line (also
bench/results/poll_queues.json).

    python -m bench.poll_queues [--queues 100] [--calls 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time

import grpc
from google.protobuf.duration_pb2 import Duration

from bench.harness import ROOT, running_stack
from durable import Workflow
from durable._definition import to_definition
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import worker_service_pb2_grpc as wgrpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc

flow = Workflow("bench_poll_queues")


@flow.step
def only(data: object) -> object:
    return data


async def _polls(
    workers: wgrpc.WorkerServiceStub, queues: list[str], calls: int
) -> tuple[float, str]:
    """Seconds for ``calls`` concurrent polls; the status code of the first refused one."""
    request = wpb.PollTasksRequest(
        worker_id="bench", queues=queues, max_tasks=10, wait_timeout=Duration()
    )
    t0 = time.perf_counter()
    outcomes = await asyncio.gather(
        *(workers.PollTasks(request, timeout=600) for _ in range(calls)), return_exceptions=True
    )
    elapsed = time.perf_counter() - t0
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    others = [o for o in outcomes if isinstance(o, BaseException) and o not in refused]
    if others:
        raise others[0]
    return elapsed, refused[0].code().name if refused else "OK"


async def _list_loop(flows: pbgrpc.WorkflowServiceStub, stop: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    while not stop.is_set():
        t0 = time.perf_counter()
        await flows.ListExecutions(pb.ListExecutionsRequest(page_size=50), timeout=600)
        latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.01)
    return latencies


async def run(args: argparse.Namespace) -> dict[str, object]:
    queues = [f"bench-queue-{i:05d}" for i in range(args.queues)]
    async with running_stack() as stack, grpc.aio.insecure_channel(stack.address) as channel:
        workers = wgrpc.WorkerServiceStub(channel)
        flows = pbgrpc.WorkflowServiceStub(channel)
        await workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="bench", workflows=[to_definition(flow)])
        )
        for i in range(args.executions):
            await flows.StartWorkflow(
                pb.StartWorkflowRequest(workflow_name=flow.name, input_json=str(i))
            )
        idle = await _list_loop_once(flows)
        stop = asyncio.Event()
        lister = asyncio.create_task(_list_loop(flows, stop))
        poll_secs: list[float] = []
        status = "OK"
        for _ in range(args.rounds):
            elapsed, status = await _polls(workers, queues, args.calls)
            poll_secs.append(elapsed)
        stop.set()
        latencies = await lister
    return {
        "benchmark": "poll_queues",
        "queues_per_call": args.queues,
        "concurrent_calls": args.calls,
        "rounds": args.rounds,
        "poll_status": status,
        "seconds_per_round": [round(s, 3) for s in poll_secs],
        "seconds_total": round(sum(poll_secs), 3),
        "list_executions_idle_ms": round(idle, 2),
        "list_executions_calls": len(latencies),
        "list_executions_p50_ms": round(statistics.median(latencies), 2),
        "list_executions_max_ms": round(max(latencies), 2),
        "cpus": os.cpu_count(),
    }


async def _list_loop_once(flows: pbgrpc.WorkflowServiceStub) -> float:
    """The median of a few ListExecutions calls with nothing else running, in ms."""
    samples = []
    for _ in range(20):
        t0 = time.perf_counter()
        await flows.ListExecutions(pb.ListExecutionsRequest(page_size=50))
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=100, help="queues named by each poll")
    parser.add_argument("--calls", type=int, default=30, help="concurrent polls per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--executions", type=int, default=200)
    args = parser.parse_args()
    summary = asyncio.run(run(args))
    print(
        f"{summary['concurrent_calls']} concurrent PollTasks x {summary['queues_per_call']} "
        f"queues, {summary['rounds']} rounds: {summary['seconds_total']} s in all "
        f"({summary['seconds_per_round']}; status {summary['poll_status']})"
    )
    print(
        f"ListExecutions meanwhile: p50 {summary['list_executions_p50_ms']} ms, max "
        f"{summary['list_executions_max_ms']} ms over {summary['list_executions_calls']} calls "
        f"(idle p50 {summary['list_executions_idle_ms']} ms)"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "poll_queues.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
