"""What the benchmarks share: a fresh database, an orchestrator process, worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("DURABLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


async def read_line(proc: asyncio.subprocess.Process, prefix: bytes) -> str:
    """The first line of ``proc``'s stdout that starts with ``prefix`` (60 s at most)."""
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


def rss_kib(pid: int, field: str) -> int:
    """A process's ``VmRSS`` (now) or ``VmHWM`` (peak), in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Stack:
    """A running orchestrator (and its database) that workers can join."""

    url: str
    address: str
    server: asyncio.subprocess.Process
    env: dict[str, str]
    processes: list[asyncio.subprocess.Process]
    drains: list[asyncio.Task[None]]

    async def start_worker(self, module: str, concurrency: int) -> asyncio.subprocess.Process:
        """A worker process on ``module``, once it is ready."""
        return await self._start_worker(
            sys.executable, "-m", "durable_worker", module, "--server", self.address,
            "--concurrency", str(concurrency), "--log-level", "WARNING",
        )  # fmt: skip

    async def start_node_worker(self, script: Path, concurrency: int) -> asyncio.subprocess.Process:
        """A Node.js worker process running ``script``, once it is ready (it prints the
        same ``durable-worker ready`` line as the Python worker)."""
        return await self._start_worker(
            "node", str(script), "--server", self.address, "--concurrency", str(concurrency)
        )

    async def _start_worker(self, *command: str) -> asyncio.subprocess.Process:
        worker = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, env=self.env, cwd=ROOT
        )
        self.processes.append(worker)
        await read_line(worker, b"durable-worker ready")
        self.drains.append(asyncio.create_task(_drain(worker)))
        return worker


@contextlib.asynccontextmanager
async def running_stack(settings: Mapping[str, str] | None = None) -> AsyncIterator[Stack]:
    """A fresh database and an orchestrator process on it; all removed on exit.

    ``settings`` adds environment variables of the orchestrator (``DURABLE_AUTH``, say).
    """
    db_name = f"durable_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{BASE_URL}/postgres")
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    url = f"{BASE_URL}/{db_name}"
    env = {
        **os.environ,
        "DURABLE_DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "DURABLE_LOG_LEVEL": "WARNING",
        **(settings or {}),
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable_server", "serve", "--listen", "127.0.0.1:0",
        stdout=subprocess.PIPE, env=env, cwd=ROOT,
    )  # fmt: skip
    stack = Stack(url, "", server, env, [server], [])
    try:
        stack.address = (await read_line(server, b"durable server ready")).split("address=")[1]
        stack.drains.append(asyncio.create_task(_drain(server)))
        yield stack
    finally:
        for task in stack.drains:
            task.cancel()
        for proc in reversed(stack.processes):
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()
