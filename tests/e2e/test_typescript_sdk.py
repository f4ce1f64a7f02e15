"""The TypeScript SDK's tests (node's test runner) against a real orchestrator.

An orchestrator runs in this test's event loop on a fresh database, beside a Python
worker for the cross-language workflows; ``npm test`` in sdk-typescript/ then builds the
SDK and runs its tests with the orchestrator's address in ``DURABLE_ADDRESS``. A second
orchestrator, in test mode (a manual clock) on a database of its own, serves the tests of
the testing helper (test/testing.test.ts), its address in ``DURABLE_TEST_ADDRESS``. The node
tests start their own TypeScript workers (in process, and one as a child process that
gets SIGTERM). Cross-language: ``py_calls_ts`` is a Python workflow whose step calls the
TypeScript workflow ``ts_child`` (run by a TypeScript worker) and returns its result;
the other way round, a TypeScript workflow calls the Python workflow ``py_child``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from durable import StepContext, Workflow
from durable_server.clock import ManualClock
from durable_worker import Worker
from tests.helpers import db
from tests.helpers.orchestrator import running_orchestrator

SDK_DIR = Path(__file__).resolve().parents[2] / "sdk-typescript"
NPM_TIMEOUT = 240.0

pytestmark = pytest.mark.timeout(NPM_TIMEOUT + 60)

py_calls_ts = Workflow("py_calls_ts")


@py_calls_ts.step
def call_ts_child(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    child = ctx.call_workflow("ts_child", {"n": data["n"]})
    return {"from_ts": child, "python_saw": data["n"]}


py_child = Workflow("py_child")


@py_child.step
def triple(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    if data.get("fail"):
        raise ValueError(f"python refuses {data['n']}")
    return {"tripled": data["n"] * 3, "lang": "python", "parent": ctx.execution_id}


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("the TypeScript SDK tests need Node.js 20+ and npm on PATH")
    if not (SDK_DIR / "node_modules").is_dir():
        pytest.fail("sdk-typescript/node_modules is missing: run 'make install'")
    return npm


@pytest.fixture
async def test_mode_database_url(database_url: str) -> AsyncIterator[str]:
    """A second fresh database, for the orchestrator in test mode."""
    name = await db.create_database()
    try:
        yield db.url_for(name)
    finally:
        await db.drop_database(name)


async def test_typescript_sdk_against_a_real_orchestrator(
    database_url: str, test_mode_database_url: str
) -> None:
    npm = _npm()
    manual = ManualClock(datetime.now(UTC).replace(microsecond=0))
    async with (
        running_orchestrator(database_url) as orch,
        running_orchestrator(test_mode_database_url, clock=manual) as test_orch,
        Worker(orch.address, [py_calls_ts, py_child], worker_id="py-cross-language"),
    ):
        proc = await asyncio.create_subprocess_exec(
            npm,
            "test",
            "--silent",
            cwd=SDK_DIR,
            env={
                **os.environ,
                "DURABLE_ADDRESS": orch.address,
                "DURABLE_TEST_ADDRESS": test_orch.address,
                "DURABLE_CROSS_LANGUAGE": "1",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), NPM_TIMEOUT)
        except TimeoutError:
            proc.kill()
            output, _ = await proc.communicate()
            pytest.fail(f"npm test did not finish in {NPM_TIMEOUT:g}s:\n{output.decode()}")
    text = output.decode(errors="replace")
    assert proc.returncode == 0, f"npm test failed (exit {proc.returncode}):\n{text}"
    assert "# fail 0" in text, text
