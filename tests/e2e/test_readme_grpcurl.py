"""The README's grpcurl commands, run as written (through ``buf curl``) against an orchestrator.

Each ``grpcurl`` line of the README's "From any language: grpcurl" block is parsed and
translated to the equivalent ``buf curl`` call, which speaks the same gRPC server
reflection protocol. Only the address and the ``EXECUTION_ID`` placeholder are replaced,
so a README command that no longer works (a renamed field, method or enum value) fails
this test.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from durable_worker import Worker
from examples.order import process_order
from tests.helpers.orchestrator import running_orchestrator

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
SECTION = "### From any language: grpcurl"
README_ADDRESS = "127.0.0.1:7411"
PLACEHOLDER = "EXECUTION_ID"
BUF_TIMEOUT = 30.0


def _buf() -> str:
    """The buf binary installed next to this Python (``.venv/bin/buf``), else on PATH."""
    beside = Path(sys.executable).parent / "buf"
    found = str(beside) if beside.exists() else shutil.which("buf")
    if found is None:
        pytest.fail("buf is not installed: run 'make install'")
    return found


@dataclass(frozen=True)
class GrpcurlCommand:
    """One README ``grpcurl`` line, parsed."""

    line: str
    address: str
    data: str | None  # the -d argument
    target: str  # "list", or "package.Service/Method"

    @property
    def method(self) -> str:
        """The method name (``StartWorkflow``), or ``list``."""
        return self.target.rsplit("/", 1)[-1]


def readme_commands() -> list[GrpcurlCommand]:
    """The ``grpcurl`` lines of the README's grpcurl block, in order."""
    text = README.read_text()
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no ```bash block under the grpcurl section"
    commands = []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        args = shlex.split(line)
        assert args[0] == "grpcurl", f"not a grpcurl command: {line}"
        data = None
        rest = args[1:]
        positional = []
        plaintext = False
        while rest:
            arg = rest.pop(0)
            if arg == "-plaintext":
                plaintext = True
            elif arg == "-d":
                data = rest.pop(0)
            elif arg.startswith("-"):
                raise AssertionError(f"grpcurl flag {arg!r} has no translation: {line}")
            else:
                positional.append(arg)
        assert plaintext, f"the orchestrator serves plaintext gRPC: {line}"
        assert len(positional) == 2, f"expected ADDRESS and a method or 'list': {line}"
        commands.append(GrpcurlCommand(line, positional[0], data, positional[1]))
    return commands


def to_buf_curl(command: GrpcurlCommand, address: str, execution_id: str | None) -> list[str]:
    """The ``buf curl`` arguments doing what ``command`` does, at ``address``."""
    assert command.address == README_ADDRESS, command.line
    base = [_buf(), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    if command.target == "list":
        assert command.data is None, command.line
        return [*base, "--list-services", f"http://{address}"]
    assert re.fullmatch(r"[\w.]+/\w+", command.target), command.line
    args = [*base]
    if command.data is not None:
        data = command.data
        if PLACEHOLDER in data:
            assert execution_id is not None, f"{PLACEHOLDER} used before StartWorkflow"
            data = data.replace(PLACEHOLDER, execution_id)
        args += ["-d", data]
    return [*args, f"http://{address}/{command.target}"]


async def run(args: list[str]) -> str:
    """Run ``buf curl`` without blocking the event loop; its stdout, or fail with its output."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), BUF_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        raise AssertionError(
            f"{shlex.join(args)} exited with {process.returncode}\n"
            f"--- stdout ---\n{stdout.decode()}--- stderr ---\n{stderr.decode()}"
        )
    return stdout.decode()


async def run_json(args: list[str]) -> dict[str, Any]:
    """Run a ``buf curl`` RPC and parse its JSON response."""
    out = await run(args)
    try:
        response: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{shlex.join(args)} printed no JSON: {out!r}") from exc
    return response


def test_readme_has_the_expected_commands() -> None:
    assert [c.method for c in readme_commands()] == [
        "list",
        "StartWorkflow",
        "WaitExecution",
        "GetExecution",
        "ListExecutions",
    ]


async def test_readme_grpcurl_commands_work(database_url: str) -> None:
    commands = {c.method: c for c in readme_commands()}
    assert set(commands) == {
        "list",
        "StartWorkflow",
        "WaitExecution",
        "GetExecution",
        "ListExecutions",
    }
    start_data = commands["StartWorkflow"].data
    assert start_data is not None
    order = json.loads(json.loads(start_data)["input_json"])
    async with running_orchestrator(database_url) as orch:
        address = orch.address
        base = [_buf(), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]

        # grpcurl ... list: the services, found by reflection.
        services = (await run(to_buf_curl(commands["list"], address, None))).split()
        for service in (
            "durable.v1.WorkflowService",
            "durable.v1.WorkerService",
            "grpc.health.v1.Health",
        ):
            assert service in services, services
        methods = (await run([*base, "--list-methods", f"http://{address}"])).split()
        for method in (
            "durable.v1.WorkflowService/StartWorkflow",
            "durable.v1.WorkflowService/GetExecution",
            "durable.v1.WorkflowService/ListExecutions",
            "durable.v1.WorkflowService/CancelExecution",
            "durable.v1.WorkerService/RegisterWorkflows",
            "durable.v1.WorkerService/PollTasks",
            "grpc.health.v1.Health/Check",
        ):
            assert method in methods, methods

        async with Worker(address, [process_order], drain_timeout=5.0):
            started = await run_json(to_buf_curl(commands["StartWorkflow"], address, None))
            execution_id = started["executionId"]
            assert execution_id
            assert started.get("created") is True

            # WaitExecution answers once the execution has finished (or at its 30 s).
            wait_args = to_buf_curl(commands["WaitExecution"], address, execution_id)
            waited = (await run_json(wait_args))["execution"]
            assert waited["status"] == "EXECUTION_STATUS_COMPLETED", waited
            assert "steps" not in waited

            get_args = to_buf_curl(commands["GetExecution"], address, execution_id)
            execution: dict[str, Any] = (await run_json(get_args))["execution"]
            assert execution["status"] == "EXECUTION_STATUS_COMPLETED", execution
            assert execution["id"] == execution_id
            assert execution["workflowName"] == "process_order"
            assert json.loads(execution["inputJson"]) == order
            assert json.loads(execution["resultJson"]) == {
                "order_id": order["id"],
                "items": order["items"],
                "receipt": f"rcpt-{order['id']}",
            }
            # "include_steps": true returned every attempt.
            steps = [
                (s["stepName"], s["attempt"], s["status"], bool(s.get("workerId")))
                for s in execution["steps"]
            ]
            assert steps == [
                ("validate", 1, "STEP_ATTEMPT_STATUS_COMPLETED", True),
                ("charge", 1, "STEP_ATTEMPT_STATUS_COMPLETED", True),
            ], execution["steps"]

            listed = await run_json(to_buf_curl(commands["ListExecutions"], address, None))
            assert [e["id"] for e in listed["executions"]] == [execution_id], listed
            assert listed["executions"][0]["status"] == "EXECUTION_STATUS_COMPLETED"
            assert int(listed["totalCount"]) == 1  # int64: a JSON string


async def test_a_broken_command_fails(database_url: str) -> None:
    """The translation really reaches the server: a wrong field name is an error."""
    (start,) = [c for c in readme_commands() if c.method == "StartWorkflow"]
    assert start.data is not None
    broken = GrpcurlCommand(
        start.line, start.address, start.data.replace("workflow_name", "workflow"), start.target
    )
    async with running_orchestrator(database_url) as orch:
        with pytest.raises(AssertionError, match="exited with"):
            await run(to_buf_curl(broken, orch.address, None))


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
async def test_both_reflection_versions_are_served(database_url: str, protocol: str) -> None:
    """``buf curl`` tries reflection v1 first; each version alone lists and describes all."""
    async with running_orchestrator(database_url) as orch:
        base = [
            _buf(),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--reflect-protocol",
            protocol,
        ]
        url = f"http://{orch.address}"
        services = (await run([*base, "--list-services", url])).split()
        for service in (
            "durable.v1.WorkflowService",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ):
            assert service in services, services
        # Listing methods resolves each service's descriptor, the v1 reflection's included.
        methods = (await run([*base, "--list-methods", url])).split()
        for method in (
            "durable.v1.WorkflowService/StartWorkflow",
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ):
            assert method in methods, methods
        listed = await run_json(
            [*base, "-d", "{}", f"{url}/durable.v1.WorkflowService/ListExecutions"]
        )
        assert listed.get("executions", []) == []
