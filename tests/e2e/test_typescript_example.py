"""examples/typescript: its worker and client against a real orchestrator, and its demo.

The example is a package of its own that uses the SDK as ``@durable/sdk`` (a link to
sdk-typescript/); this test builds both, as ``make demo-ts`` does. Then: the worker as a
process and the client script against an orchestrator running in this test; and the demo
runner (what ``make demo-ts`` runs), which starts ``durable server`` itself, here on the
test's database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.orchestrator import running_orchestrator

REPO_ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = REPO_ROOT / "sdk-typescript"
EXAMPLE_DIR = REPO_ROOT / "examples" / "typescript"
RUN_TIMEOUT = 120.0
RESULT = 'result: {"items":[{"qty":2,"sku":"book"}],"orderId":1,"receipt":"rcpt-1","shipped":2}'

pytestmark = pytest.mark.timeout(3 * RUN_TIMEOUT + 60)


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("the TypeScript example needs Node.js 20+ and npm on PATH")
    if not (SDK_DIR / "node_modules").is_dir():
        pytest.fail("sdk-typescript/node_modules is missing: run 'make install'")
    return npm


@pytest.fixture(scope="module")
def built_example() -> Path:
    """The example, built against a freshly built SDK (its only dependency is a local link)."""
    npm = _npm()
    steps = [
        (SDK_DIR, [npm, "run", "--silent", "build"]),
        (EXAMPLE_DIR, [npm, "ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"]),
        (EXAMPLE_DIR, [npm, "run", "--silent", "build"]),
    ]
    for cwd, command in steps:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
    return EXAMPLE_DIR / "build"


async def _ready(proc: asyncio.subprocess.Process, prefix: bytes) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(RUN_TIMEOUT):
        while not (line := await proc.stdout.readline()).startswith(prefix):
            assert line, "the process exited before it was ready"


async def test_the_example_worker_and_client_run_the_workflow(
    database_url: str, built_example: Path
) -> None:
    node = shutil.which("node")
    assert node is not None
    async with running_orchestrator(database_url) as orch:
        worker = await asyncio.create_subprocess_exec(
            node,
            str(built_example / "worker.js"),
            "--server",
            orch.address,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            await _ready(worker, b"durable-worker ready")
            client = await asyncio.create_subprocess_exec(
                node,
                str(built_example / "client.js"),
                env={**os.environ, "DURABLE_ADDRESS": orch.address},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(client.communicate(), RUN_TIMEOUT)
        finally:
            worker.send_signal(signal.SIGTERM)  # it drains, then exits
            exit_code = await asyncio.wait_for(worker.wait(), RUN_TIMEOUT)
    text = output.decode()
    assert client.returncode == 0, text
    assert "status: completed" in text, text
    assert RESULT in text, text
    assert "  step charge: completed (attempt 1)" in text, text
    assert "INFO charging order 1" in text, text
    assert exit_code == 0


async def test_the_demo_runs_an_orchestrator_the_worker_and_the_client(
    database_url: str, built_example: Path
) -> None:
    node = shutil.which("node")
    assert node is not None
    durable = Path(sys.executable).parent / "durable"
    proc = await asyncio.create_subprocess_exec(
        node,
        str(built_example / "demo.js"),
        env={
            **os.environ,
            "DURABLE_DATABASE_URL": database_url,
            "DURABLE_COMMAND": str(durable),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        proc.kill()
        output, _ = await proc.communicate()
        pytest.fail(f"the demo did not finish in {RUN_TIMEOUT:g}s:\n{output.decode()}")
    text = output.decode()
    assert proc.returncode == 0, text
    assert "[orchestrator] durable server ready address=127.0.0.1:" in text, text
    assert "[worker] durable-worker ready" in text, text
    assert RESULT in text, text
