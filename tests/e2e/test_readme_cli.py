"""Every ``durable ...`` command of the README, run as a user types it.

The commands are found in the README (inline code and shell blocks) and each one is run
as a real process: the ``durable`` and ``durable-worker`` scripts installed next to this
Python, against an orchestrator started with the README's own ``durable server`` and a
worker started with its ``durable-worker examples.order``. Only placeholders are filled
in (``ID``, ``NAME``, a token id); the address and database come from the environment
(``DURABLE_SERVER_ADDRESS``, ``DURABLE_DATABASE_URL``, ``DURABLE_LISTEN``), as the README
says. Each command must exit 0 and print what it promises.

A command added to the README fails :func:`test_every_readme_command_is_run_here` until a
run of it is added below.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from durable.v1 import testing_service_pb2_grpc as testing_grpc
from durable.v1.testing_service_pb2 import AdvanceTimeRequest, GetTimeRequest
from tests.faults.procs import WorkerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
COMMAND = re.compile(r"(?:\.venv/bin/)?durable(?:-worker|-server)?\s")
RUN_TIMEOUT = 60.0
ORDER = {"id": 1, "items": ["book"]}
SCHEDULE = "nightly"

# The README's commands (as found there, comments cut, spaces collapsed): each is run by
# test_readme_commands_work.
RUN_HERE = {
    "durable migrate",
    "durable token create --role worker --queue emails --expires-in 90d --name mailer",
    "durable token create --role client --name web",
    "durable token list",
    "durable token revoke 3f2a9c0d1e2b4a5c",
    ".venv/bin/durable server",
    "durable server",
    "durable server --manual-clock",
    ".venv/bin/durable-worker examples.order",
    """durable start process_order --input '{"id": 1, "items": ["book"]}' --wait""",
    "durable wait ID",
    "durable get ID --steps",
    "durable get ID --logs",
    "durable list",
    "durable graph ID --format dot | dot -Tsvg",
    'durable cancel ID --reason "..."',
    "durable schedule ...",
    "durable list --schedule NAME",
}


def readme_commands() -> set[str]:
    """The ``durable``/``durable-worker`` command lines the README shows."""
    found: set[str] = set()
    prose: list[str] = []
    fence: str | None = None
    for line in README.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:]
            continue
        if fence is None:
            prose.append(line)
        elif fence in ("", "bash", "sh", "console") and COMMAND.match(stripped):
            found.add(" ".join(stripped.split("#", 1)[0].split()))
    # Inline code may wrap over two lines of prose.
    for match in re.finditer(r"`(" + COMMAND.pattern + r"[^`]*)`", "\n".join(prose)):
        found.add(" ".join(match.group(1).split()))
    return found


def test_every_readme_command_is_run_here() -> None:
    found = readme_commands()
    assert found - RUN_HERE == set(), "README commands no test runs: add them below"
    assert RUN_HERE - found == set(), "commands run here that the README no longer shows"


def _script(name: str) -> str:
    """The installed console script ``name``, next to this Python."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: run 'make install'")
    return str(path)


def typed(command: str, **placeholders: str) -> list[list[str]]:
    """``command`` as argv lists (one per stage of a pipe), placeholders filled in."""
    assert command in RUN_HERE, f"not a README command: {command}"
    stages: list[list[str]] = [[]]
    for word in shlex.split(command):
        if word == "|":
            stages.append([])
            continue
        stages[-1].append(placeholders.get(word, word))
    first = stages[0]
    first[0] = _script(Path(first[0]).name)  # durable, durable-worker: the installed ones
    return stages


class Shell:
    """Runs commands with the environment the README describes."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    async def run(self, argv: list[str], stdin: bytes | None = None) -> tuple[str, str]:
        """Run ``argv`` to its end; its stdout and stderr, or fail unless it exits 0."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), RUN_TIMEOUT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} exited with {process.returncode}\n"
                f"--- stdout ---\n{out.decode()}--- stderr ---\n{err.decode()}"
            )
        return out.decode(), err.decode()

    async def readme(self, command: str, **placeholders: str) -> str:
        """Run a README command (a pipe stage by stage); the last stage's stdout."""
        stages = typed(command, **placeholders)
        out, _ = await self.run(stages[0])
        for stage in stages[1:]:
            out, _ = await self.run(stage, stdin=out.encode())
        return out

    async def json(self, command: str, **placeholders: str) -> Any:
        out = await self.readme(command, **placeholders)
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"{command} printed no JSON: {out!r}") from exc

    @contextlib.asynccontextmanager
    async def background(
        self, command: str, name: str, ready_line: str, tmp_path: Path
    ) -> AsyncIterator[WorkerProcess]:
        """Start a long-running README command; on exit stop it as Ctrl-C does: exit 0."""
        [argv] = typed(command)
        out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        process = WorkerProcess(proc, name, out, err)
        try:
            await process.wait_ready(timeout=30, ready_line=ready_line)
            yield process
            process.signal(signal.SIGINT)
            code = await process.wait_exit(timeout=30)
            assert code == 0, f"{command} exited with {code} on Ctrl-C\n{process.describe()}"
        finally:
            await process.kill()


def _ready_address(server: WorkerProcess) -> str:
    match = re.search(r"durable server ready address=(\S+)", server.stdout())
    assert match, server.describe()
    return match.group(1)


async def test_readme_commands_work(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DURABLE_DATABASE_URL": database_url,
        "DURABLE_LISTEN": "127.0.0.1:0",  # the README's port 7411 may be taken here
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DURABLE_TOKEN", "DURABLE_TLS", "DURABLE_TLS_CA", "DURABLE_SERVER_ADDRESS"):
        env.pop(name, None)
    sh = Shell(env)

    # Configuration and Security: the database commands.
    assert "migrations applied" in await sh.readme("durable migrate")
    mailer = await sh.readme(
        "durable token create --role worker --queue emails --expires-in 90d --name mailer"
    )
    match = re.fullmatch(r"dur_([0-9a-f]+)_\S+\n", mailer)
    assert match, mailer
    mailer_id = match.group(1)
    assert (await sh.readme("durable token create --role client --name web")).startswith("dur_")
    listed = await sh.readme("durable token list")
    assert re.search(rf"^{mailer_id}\s+mailer\s+worker\s+emails\s", listed, re.M), listed
    assert re.search(r"\sweb\s+client\s", listed), listed
    revoked = await sh.readme(
        "durable token revoke 3f2a9c0d1e2b4a5c", **{"3f2a9c0d1e2b4a5c": mailer_id}
    )
    assert revoked.startswith(f"token {mailer_id} revoked at"), revoked

    # Run it yourself: the orchestrator and a worker, then the CLI against them.
    async with sh.background(
        ".venv/bin/durable server", "server", "durable server ready", tmp_path
    ) as server:
        sh.env["DURABLE_SERVER_ADDRESS"] = _ready_address(server)
        async with sh.background(
            ".venv/bin/durable-worker examples.order", "worker", "durable-worker ready", tmp_path
        ):
            await _client_commands(sh)

    # The same server by its bare name, and in test mode (its clock served over gRPC).
    async with sh.background("durable server", "plain", "durable server ready", tmp_path):
        pass
    async with sh.background(
        "durable server --manual-clock", "test-mode", "durable server ready", tmp_path
    ) as server:
        async with grpc.aio.insecure_channel(_ready_address(server)) as channel:
            clock = testing_grpc.TestingServiceStub(channel)
            before = await clock.GetTime(GetTimeRequest())
            moved = await clock.AdvanceTime(AdvanceTimeRequest(by=Duration(seconds=3600)))
    assert moved.now.ToSeconds() - before.now.ToSeconds() == 3600


async def _client_commands(sh: Shell) -> None:
    started = await sh.json(
        """durable start process_order --input '{"id": 1, "items": ["book"]}' --wait"""
    )
    assert started["status"] == "completed", started
    assert started["result"] == {**{"order_id": 1, "items": ["book"]}, "receipt": "rcpt-1"}
    execution_id = started["id"]

    waited = await sh.json("durable wait ID", ID=execution_id)
    assert (waited["id"], waited["status"]) == (execution_id, "completed")

    with_steps = await sh.json("durable get ID --steps", ID=execution_id)
    assert [(s["step_name"], s["status"]) for s in with_steps["steps"]] == [
        ("validate", "completed"),
        ("charge", "completed"),
    ], with_steps["steps"]
    with_logs = await sh.json("durable get ID --logs", ID=execution_id)
    assert all("logs" in s for s in with_logs["steps"]), with_logs["steps"]

    table = await sh.readme("durable list")
    assert re.search(rf"^{execution_id}\s+process_order\s+completed\s", table, re.M), table

    if shutil.which("dot"):
        assert "<svg" in await sh.readme(
            "durable graph ID --format dot | dot -Tsvg", ID=execution_id
        )
    else:  # no Graphviz here: the DOT text that would go into it
        [graph] = typed("durable graph ID --format dot | dot -Tsvg", ID=execution_id)[:1]
        dot, _ = await sh.run(graph)
        assert dot.startswith("digraph"), dot
        assert "validate" in dot, dot
        assert "charge" in dot, dot

    # An execution on a queue no worker polls stays pending: the one to cancel.
    parked, _ = await sh.run(
        [
            _script("durable"),
            "start",
            "process_order",
            "--input",
            json.dumps(ORDER),
            "--queue",
            "nobody",
        ]
    )
    cancelled = await sh.json('durable cancel ID --reason "..."', ID=parked.strip())
    assert cancelled["status"] == "cancelled", cancelled
    assert cancelled["error"]["message"].endswith("..."), cancelled

    # The README's `durable schedule ...` (the group): create, trigger and list one.
    schedule = _script("durable"), "schedule"
    created = json.loads(
        (await sh.run([*schedule, "create", SCHEDULE, "process_order", "0 2 * * *"]))[0]
    )
    assert (created["name"], created["enabled"]) == (SCHEDULE, True), created
    run_id = (await sh.run([*schedule, "trigger", SCHEDULE]))[0].strip()
    assert SCHEDULE in (await sh.run([*schedule, "list"]))[0]
    runs = await sh.readme("durable list --schedule NAME", NAME=SCHEDULE)
    assert re.search(rf"^{run_id}\s+process_order\s", runs, re.M), runs
