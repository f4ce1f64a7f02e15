"""Worker subprocesses for fault tests: ``python -m durable_worker tests.faults.crash_flows``.

Each worker runs from the repository root (so ``tests.faults.crash_flows`` imports as the
worker's loader imports any module), with stdout and stderr captured to files and stdin
a pipe that releases the steps blocked in :mod:`tests.faults.crash_flows`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from tests.faults import crash_flows
from tests.helpers.wait import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOWS_MODULE = crash_flows.__name__
READY_LINE = "durable-worker ready"
SERVER_READY_LINE = "durable server ready"


def step_runs(step_log: Path) -> list[tuple[str, int, int]]:
    """(step, attempt, pid) of every step run the workers started, in order."""
    if not step_log.exists():
        return []
    return [
        (step, int(attempt), int(pid))
        for step, attempt, pid in (line.split() for line in step_log.read_text().splitlines())
    ]


class WorkerProcess:
    """One ``durable-worker`` process and its captured output."""

    def __init__(self, proc: asyncio.subprocess.Process, worker_id: str, out: Path, err: Path):
        self.proc = proc
        self.worker_id = worker_id
        self.out_path = out
        self.err_path = err

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def describe(self) -> str:
        """Everything the process printed, for assertion messages."""
        return (
            f"--- worker {self.worker_id} (pid {self.pid}, exit {self.proc.returncode}) ---\n"
            f"[stdout]\n{self.stdout()}\n[stderr]\n{self.stderr()}"
        )

    async def wait_ready(self, timeout: float = 10.0, ready_line: str = READY_LINE) -> None:
        """Wait for the ready line; fail at once (with the output) if the process exits."""

        async def ready() -> bool:
            if ready_line in self.stdout():
                return True
            if not self.running:
                raise AssertionError(f"worker exited before it was ready\n{self.describe()}")
            return False

        try:
            await wait_until(ready, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    async def wait_stderr(self, text: str, timeout: float = 10.0) -> None:
        """Wait until the worker logs ``text``."""

        async def logged() -> bool:
            if text in self.stderr():
                return True
            if not self.running:
                raise AssertionError(f"worker exited without logging {text!r}\n{self.describe()}")
            return False

        try:
            await wait_until(logged, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: no {text!r} logged\n{self.describe()}") from None

    async def wait_stderr_count(self, text: str, count: int, timeout: float = 30.0) -> None:
        """Wait until the process has logged ``text`` at least ``count`` times."""

        async def logged() -> bool:
            return self.stderr().count(text) >= count

        try:
            await wait_until(logged, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: {text!r} logged {self.stderr().count(text)} times, not {count}\n"
                f"{self.describe()}"
            ) from None

    async def wait_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit; returns its exit status."""

        async def exited() -> bool:
            return not self.running

        try:
            await wait_until(exited, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: worker still running\n{self.describe()}") from None
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def release_step(self) -> None:
        """Let the step blocked on stdin return."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    async def kill(self) -> None:
        """SIGKILL the process if it still runs, and reap it."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await asyncio.wait_for(self.proc.wait(), timeout=5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()


@contextlib.asynccontextmanager
async def worker_process(
    address: str,
    worker_id: str,
    tmp_path: Path,
    *,
    step_log: Path,
    block_steps: Sequence[str] = (),
    args: Sequence[str] = (),
    module: str = FLOWS_MODULE,
    concurrency: int = 1,
    wait_ready: bool = True,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[WorkerProcess]:
    """Start a worker process, wait for its ready line, and always kill it on exit.

    ``block_steps`` are the steps that block on stdin in this process (see
    :mod:`tests.faults.crash_flows`); ``env`` adds to its environment. With
    ``wait_ready=False`` the caller waits (e.g. once the orchestrator it registers with is
    up). The process's output is printed at exit, so pytest shows it when the test fails.
    """
    env = {
        **os.environ,
        "DURABLE_SERVER_ADDRESS": address,
        "DURABLE_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        crash_flows.LOG_ENV: str(step_log),
        crash_flows.BLOCK_ENV: ",".join(block_steps),
        **(env or {}),
    }
    out, err = tmp_path / f"{worker_id}.out", tmp_path / f"{worker_id}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "durable_worker",
            module,
            "--worker-id",
            worker_id,
            "--concurrency",
            str(concurrency),
            *args,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # a Ctrl-C of pytest does not start a drain in it
        )
    worker = WorkerProcess(proc, worker_id, out, err)
    try:
        if wait_ready:
            await worker.wait_ready()
        yield worker
    finally:
        await worker.kill()
        print(worker.describe())


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def orchestrator_process(
    database_url: str,
    port: int,
    tmp_path: Path,
    name: str,
    *,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[WorkerProcess]:
    """An orchestrator process (``python -m durable_server serve``) on 127.0.0.1:``port``.

    Waits for its ready line; always killed on exit, its output printed. ``env`` adds
    settings (e.g. ``DURABLE_LEASE_SECONDS``).
    """
    env = {
        **os.environ,
        "DURABLE_DATABASE_URL": database_url,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "durable_server",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    server = WorkerProcess(proc, name, out, err)
    try:
        await server.wait_ready(ready_line=SERVER_READY_LINE, timeout=30)
        yield server
    finally:
        await server.kill()
        print(server.describe())


def tcp_ports(pid: int) -> set[int]:
    """The local ports of the TCP sockets process ``pid`` holds (Linux: read from /proc).

    A PostgreSQL backend's ``pg_stat_activity.client_port`` is one of these when the
    process is its client, which tells which orchestrator a backend works for.
    """
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
