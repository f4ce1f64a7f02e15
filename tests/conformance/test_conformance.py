"""The conformance suite: every scenario of ``conformance/scenarios`` against every SDK's worker.

One orchestrator (2 s leases, so lost workers are noticed quickly) serves the whole module.
Each language's adapter (``conformance/adapters``) runs as a real worker process that builds
every scenario's workflows with its SDK, on queues of its own (``<prefix>.<scenario>``); the
fault scenarios get their own worker processes, which the test kills or freezes. The test
starts the execution with the Python client and checks the outcome the scenario expects,
with the same code for every language. A scenario a language's adapter lists as
unsupported (``conformance/adapters/<language>_unsupported.json``) is a strict xfail: it
fails once it passes, until the list is updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from conformance.scenario_files import (
    child_workflow_name,
    load_scenarios,
    uses_peer,
    workflow_name,
)
from durable import Client, Execution
from tests.faults.procs import WorkerProcess
from tests.helpers import db
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO_ROOT / "conformance"
SDK_TS = REPO_ROOT / "sdk-typescript"
LEASE_SECS = 2.0
WAIT_SECS = 30.0
SHARED_CONCURRENCY = 8
BUILD_TIMEOUT = 180.0


@dataclass(frozen=True)
class Language:
    """One SDK: its workflow-name prefix and how to run its adapter as a worker process."""

    name: str
    prefix: str
    peer: str  # the language whose workflows ``"peer": true`` calls

    def command(self, address: str, worker_id: str, concurrency: int) -> list[str]:
        if self.name == "python":
            return [
                *(sys.executable, "-m", "durable_worker", "conformance.adapters.python_worker"),
                *("--server", address, "--worker-id", worker_id),
                *("--concurrency", str(concurrency)),
            ]
        node = shutil.which("node")
        if node is None:
            pytest.fail("the TypeScript adapter needs Node.js 20+ on PATH")
        return [node, str(CONFORMANCE / "build" / "typescript_worker.js")]

    def unsupported(self) -> dict[str, str]:
        """Scenario -> why this language's adapter cannot run it yet."""
        path = CONFORMANCE / "adapters" / f"{self.name}_unsupported.json"
        return json.loads(path.read_text()) if path.exists() else {}


LANGUAGES = {
    "python": Language("python", "py", "typescript"),
    "typescript": Language("typescript", "ts", "python"),
}
SCENARIOS = load_scenarios()


def _params() -> Iterator[Any]:
    for language in LANGUAGES.values():
        unsupported = language.unsupported()
        unknown = set(unsupported) - set(SCENARIOS)
        assert not unknown, f"{language.name}_unsupported.json names no scenario: {unknown}"
        for name in SCENARIOS:
            marks = []
            if name in unsupported:
                reason = f"{language.name} adapter: {unsupported[name]}"
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            yield pytest.param(language.name, name, marks=marks, id=f"{language.name}-{name}")


# -- worker processes ----------------------------------------------------------------------


@dataclass
class Suite:
    """The module's orchestrator, client, step log and worker processes."""

    address: str
    client: Client
    tmp: Path
    stack: contextlib.AsyncExitStack
    shared: dict[str, WorkerProcess] = field(default_factory=dict)
    built_typescript: bool = False

    @property
    def step_log(self) -> Path:
        return self.tmp / "steps.jsonl"

    def runs(self, execution_ids: set[str]) -> list[dict[str, Any]]:
        """The step runs the adapters logged for these executions, in order."""
        if not self.step_log.exists():
            return []
        lines = (json.loads(line) for line in self.step_log.read_text().splitlines())
        return [run for run in lines if run["execution_id"] in execution_ids]

    async def build_typescript(self) -> None:
        """Build the TypeScript SDK (dist/) and the adapter (conformance/build/), once."""
        if self.built_typescript:
            return
        npm, tsc = shutil.which("npm"), SDK_TS / "node_modules" / ".bin" / "tsc"
        if npm is None or not tsc.exists():
            pytest.fail("the TypeScript adapter needs npm and sdk-typescript/node_modules")
        for argv, cwd in (
            ([npm, "run", "--silent", "build"], SDK_TS),
            ([str(tsc), "-p", str(CONFORMANCE / "tsconfig.json")], REPO_ROOT),
        ):
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            output, _ = await asyncio.wait_for(proc.communicate(), BUILD_TIMEOUT)
            assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{output.decode()}"
        self.built_typescript = True

    @contextlib.asynccontextmanager
    async def worker(
        self, language: Language, worker_id: str, scenarios: list[str], concurrency: int
    ) -> AsyncIterator[WorkerProcess]:
        """An adapter process serving ``scenarios``; killed on exit, its output printed."""
        if language.name == "typescript":
            await self.build_typescript()
        env = {
            **os.environ,
            "DURABLE_SERVER_ADDRESS": self.address,
            "DURABLE_ADDRESS": self.address,
            "DURABLE_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "CONFORMANCE_PREFIX": language.prefix,
            "CONFORMANCE_PEER_PREFIX": LANGUAGES[language.peer].prefix,
            "CONFORMANCE_SCENARIOS": ",".join(scenarios),
            "CONFORMANCE_STEP_LOG": str(self.step_log),
            "CONFORMANCE_WORKER_ID": worker_id,
            "CONFORMANCE_CONCURRENCY": str(concurrency),
        }
        out, err = self.tmp / f"{worker_id}.out", self.tmp / f"{worker_id}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *language.command(self.address, worker_id, concurrency),
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        process = WorkerProcess(proc, worker_id, out, err)
        try:
            await process.wait_ready(timeout=30)
            yield process
        finally:
            await process.kill()
            print(process.describe())

    async def shared_worker(self, language: Language) -> WorkerProcess:
        """The language's worker for every scenario without a fault, started once."""
        if language.name not in self.shared:
            scenarios = [name for name, s in SCENARIOS.items() if "fault" not in s]
            worker_id = f"{language.prefix}-shared"
            self.shared[language.name] = await self.stack.enter_async_context(
                self.worker(language, worker_id, scenarios, SHARED_CONCURRENCY)
            )
        return self.shared[language.name]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def suite(_template: None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    name = await db.create_database()
    try:
        async with (
            running_orchestrator(db.url_for(name), lease_secs=LEASE_SECS) as orch,
            Client(orch.address) as client,
            contextlib.AsyncExitStack() as stack,
        ):
            yield Suite(orch.address, client, tmp_path_factory.mktemp("conformance"), stack)
    finally:
        await db.drop_database(name)


# -- checks --------------------------------------------------------------------------------


def _fill(expected: Any, ids: Mapping[str, str]) -> Any:
    """``expected`` with ``{execution_id}`` (and ``{child_execution_id}``) filled in."""
    if isinstance(expected, str):
        for key, value in ids.items():
            expected = expected.replace("{" + key + "}", value)
        return expected
    if isinstance(expected, list):
        return [_fill(x, ids) for x in expected]
    if isinstance(expected, dict):
        return {k: _fill(v, ids) for k, v in expected.items()}
    return expected


def _attempt_rows(execution: Execution) -> list[tuple[Any, ...]]:
    """(step, lane, attempt, status, error type, kind) of every attempt but ROUTE tasks.

    How many ROUTE tasks run depends on the evaluations a worker sends ahead, which any
    SDK may choose (docs/walk.md), so they are not compared.
    """
    return sorted(
        (
            a.step_name,
            a.lane_path,
            a.attempt,
            str(a.status),
            a.error.type if a.error else None,
            str(a.kind),
        )
        for a in execution.steps
        if str(a.kind) != "route"
    )


def _expected_rows(expect: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            a["step"],
            a.get("lane", ""),
            a["attempt"],
            a["status"],
            a.get("error"),
            a.get("kind", "step"),
        )
        for a in expect.get("attempts", [])
    )


def _check_workers(
    execution: Execution, expect: Mapping[str, Any], roles: Mapping[str, str]
) -> None:
    for want in expect.get("attempts", []):
        if "worker" not in want:
            continue
        ran = [
            a.worker_id
            for a in execution.steps
            if a.step_name == want["step"] and a.attempt == want["attempt"]
        ]
        assert ran == [roles[want["worker"]]], (want, ran, roles)


async def _check(
    suite: Suite,
    language: Language,
    scenario: str,
    execution_id: str,
    roles: Mapping[str, str] | None = None,
) -> None:
    spec = SCENARIOS[scenario]
    expect = spec["expect"]
    execution = await suite.client.get_execution(execution_id, include_steps=True)
    children = (await suite.client.list_children(execution_id)).executions
    ids = {"execution_id": execution_id}
    if len(children) == 1:
        ids["child_execution_id"] = children[0].id
    where = f"{language.name} {scenario} ({execution_id})"

    assert str(execution.status) == expect["status"], (where, execution.error)
    if "result" in expect:
        assert execution.result == _fill(expect["result"], ids), where
    if "error" in expect:
        assert execution.error is not None, where
        assert execution.error.type == expect["error"]["type"], (where, execution.error)
        assert expect["error"].get("message_contains", "") in execution.error.message, where
    assert _attempt_rows(execution) == _expected_rows(expect), where
    _check_workers(execution, expect, roles or {})

    wanted_children = []
    for child in expect.get("children", []):
        prefix = LANGUAGES[language.peer].prefix if child.get("peer") else language.prefix
        wanted_children.append(
            (child_workflow_name(prefix, scenario, child["workflow"]), child["status"])
        )
    assert sorted((c.workflow_name, str(c.status)) for c in children) == sorted(wanted_children)

    # Every run the adapter logged got the idempotency key the protocol specifies, the
    # same for each attempt of a step run.
    runs = suite.runs({execution_id, *(c.id for c in children)})
    assert runs, f"{where}: the adapter logged no step run"
    for run in runs:
        assert run["key"] == f"{run['execution_id']}:{run['sequence']}:{run['step']}", run


async def _start(suite: Suite, language: Language, scenario: str, input: Any) -> str:
    spec = SCENARIOS[scenario]
    execution_id = await suite.client.start(workflow_name(language.prefix, scenario), input)
    for event in spec.get("events", []):
        await suite.client.send_event(execution_id, event["name"], event.get("payload"))
    return execution_id


# -- scenarios -----------------------------------------------------------------------------


async def _step_started(suite: Suite, execution_id: str, step: str, pid: int) -> None:
    async def started() -> bool:
        return any(
            r["event"] == "start" and r["step"] == step and r["pid"] == pid
            for r in suite.runs({execution_id})
        )

    await wait_until(started, timeout=WAIT_SECS, interval=0.005)


async def _run_fault(suite: Suite, language: Language, scenario: str) -> None:
    """Run a scenario whose ``fault`` kills or freezes the worker running its step."""
    spec = SCENARIOS[scenario]
    fault = spec["fault"]
    ids = {role: f"{language.prefix}-{scenario}-{role}" for role in ("first", "second")}
    async with suite.worker(language, ids["first"], [scenario], 1) as first:
        execution_id = await _start(suite, language, scenario, spec.get("input"))
        await _step_started(suite, execution_id, fault["step"], first.pid)
        if fault["kind"] == "kill_worker":
            first.signal(signal.SIGKILL)
            await first.wait_exit()
        else:
            assert fault["kind"] == "pause_worker", fault
            first.signal(signal.SIGSTOP)
        try:
            async with suite.worker(language, ids["second"], [scenario], 1):
                await suite.client.wait(execution_id, timeout=WAIT_SECS)
        finally:
            if fault["kind"] == "pause_worker":
                first.signal(signal.SIGCONT)
        await _check(suite, language, scenario, execution_id, ids)
        if fault["kind"] == "pause_worker":
            # The resumed worker ends its stale run, reports nothing that counts, and
            # runs the next execution (the only worker left).
            async def ended() -> bool:
                runs = suite.runs({execution_id})
                return any(r["event"] == "end" and r["pid"] == first.pid for r in runs)

            await wait_until(ended, timeout=WAIT_SECS)
            then = fault["then"]
            again = await _start(suite, language, scenario, then["input"])
            done = await suite.client.wait(again, timeout=WAIT_SECS)
            assert str(done.status) == "completed", (done.error, first.describe())
            assert done.result == then["result"]
            steps = (await suite.client.get_execution(again, include_steps=True)).steps
            assert [a.worker_id for a in steps] == [ids["first"]]
            # The stale run changed nothing that was recorded.
            await _check(suite, language, scenario, execution_id, ids)
            assert first.running, first.describe()


@pytest.mark.parametrize(("language", "scenario"), list(_params()))
async def test_scenario(suite: Suite, language: str, scenario: str) -> None:
    lang = LANGUAGES[language]
    spec = SCENARIOS[scenario]
    if "fault" in spec:
        await _run_fault(suite, lang, scenario)
        return
    await suite.shared_worker(lang)
    if uses_peer(spec):
        await suite.shared_worker(LANGUAGES[lang.peer])
    execution_id = await _start(suite, lang, scenario, spec.get("input"))
    await suite.client.wait(execution_id, timeout=WAIT_SECS)
    await _check(suite, lang, scenario, execution_id)
