"""``durable demo``: an orchestrator, a worker process and the README's example, end to end.

Runs the orchestrator in this process (on an embedded PostgreSQL unless a database URL
is configured), starts ``durable-worker examples.order`` as a separate process, starts
one ``process_order`` execution, prints its result, status and steps, and shuts down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

from durable import Client
from durable_server.app import Orchestrator
from durable_server.config import Settings
from durable_server.embedded import resolve_database_url

__all__ = ["run_demo"]

EXAMPLE_MODULE = "examples.order"
EXAMPLE_INPUT = {"id": 1, "items": [{"sku": "book", "qty": 2}]}


async def _wait_ready(worker: asyncio.subprocess.Process, limit: float) -> None:
    assert worker.stdout is not None
    async with asyncio.timeout(limit):
        while True:
            line = await worker.stdout.readline()
            if not line:
                raise RuntimeError("the worker exited before it was ready")
            if line.startswith(b"durable-worker ready"):
                return


WORKER_STOP_SECONDS = 5.0
STOP_SECONDS = 10.0


async def _demo(settings: Settings) -> int:
    # SIGTERM would kill the process outright, skipping the cleanup below and the exit
    # handler that stops the embedded PostgreSQL: cancel the demo instead, as Ctrl-C does.
    main = asyncio.current_task()
    assert main is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    orchestrator = Orchestrator(
        replace(settings, listen="127.0.0.1:0"), resolve_database_url(settings)
    )
    await orchestrator.start()
    worker: asyncio.subprocess.Process | None = None
    try:
        print(f"orchestrator listening on {orchestrator.address}", flush=True)
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "durable_worker",
                EXAMPLE_MODULE,
                "--server",
                orchestrator.address,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
        try:
            worker = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # A SIGTERM while the worker is being spawned: get hold of it, so that the
            # cleanup below stops it instead of leaving it behind.
            worker = await spawn
            raise
        await _wait_ready(worker, limit=30)
        print(f"worker started (pid {worker.pid}) on {EXAMPLE_MODULE}", flush=True)
        async with Client(orchestrator.address) as client:
            execution_id = await client.start("process_order", EXAMPLE_INPUT)
            print(f"started process_order execution {execution_id}", flush=True)
            await client.wait(execution_id, timeout=60)
            execution = await client.get_execution(execution_id, include_steps=True)
        print(f"status: {execution.status.value}")
        print(f"result: {json.dumps(execution.result)}")
        for step in execution.steps:
            print(f"  step {step.step_name}: {step.status.value} (attempt {step.attempt})")
        return 0 if execution.status.value == "completed" else 1
    finally:
        if worker is not None and worker.returncode is None:
            worker.terminate()  # the worker drains: it finishes or gives back its steps
            try:
                await asyncio.wait_for(worker.wait(), WORKER_STOP_SECONDS)
            except TimeoutError:  # stuck (or still starting up): do not hang the demo
                worker.kill()
                await worker.wait()
        try:  # bounded: a stuck shutdown must not keep the demo (and its PostgreSQL) alive
            await asyncio.wait_for(orchestrator.stop(grace=1.0), STOP_SECONDS)
        except TimeoutError:
            print("durable demo: the orchestrator did not stop in time", file=sys.stderr)


def run_demo(settings: Settings) -> int:
    """Run the demo; returns the exit code."""
    try:
        return asyncio.run(_demo(settings))
    except asyncio.CancelledError:
        print("durable demo: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
