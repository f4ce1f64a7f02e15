"""The ``durable-worker`` command: its arguments, its errors, and a real process draining."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

import durable_worker
from durable._definition import definition_hash
from durable_worker.cli import main, parse_args
from durable_worker.config import WorkerSettings
from tests.unit.test_worker_lifecycle import task
from tests.unit.test_worker_reporter import serving, until

MODULE = """
from durable import Workflow

orders = Workflow("orders")
mails = Workflow("mails", queue="mail")


@orders.step
def double(data):
    return {"n": data["n"] * 2}


@mails.step
def send(data):
    return data
"""


def test_exports() -> None:
    assert durable_worker.__all__ == ["Worker"]
    assert durable_worker.Worker.__module__ == "durable_worker.worker"


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLE_SERVER_ADDRESS", raising=False)
    monkeypatch.delenv("DURABLE_LOG_LEVEL", raising=False)
    assert parse_args(["app.flows"]) == WorkerSettings(
        modules=("app.flows",),
        server_address="127.0.0.1:7411",
        queues=(),
        concurrency=10,
        worker_id=None,
        drain_timeout=30.0,
        max_payload_bytes=2097152,
        log_level="INFO",
    )


def test_every_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_SERVER_ADDRESS", "orchestrator:9000")
    settings = parse_args(
        ["a", "b", "--queue", "q1", "--queue", "q2", "--concurrency", "4", "--worker-id", "w",
         "--drain-timeout", "2.5", "--max-payload-bytes", "1000", "--log-level", "debug",
         "--allow-takeover"]
    )  # fmt: skip
    assert settings == WorkerSettings(
        modules=("a", "b"),
        server_address="orchestrator:9000",
        queues=("q1", "q2"),
        concurrency=4,
        worker_id="w",
        drain_timeout=2.5,
        max_payload_bytes=1000,
        log_level="DEBUG",
        allow_takeover=True,
    )
    assert parse_args(["a", "--server", "h:1"]).server_address == "h:1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: MODULE"),
        (["a", "--concurrency", "0"], "concurrency must be at least 1"),
        (["a", "--drain-timeout", "-1"], "drain timeout must not be negative"),
        (["a", "--max-payload-bytes", "0"], "max payload bytes must be positive"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_module_without_workflows_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "cli_empty_module.py").write_text("X = 1\n")
    try:
        assert main(["cli_empty_module"]) == 2
    finally:
        sys.modules.pop("cli_empty_module", None)
    err = capsys.readouterr().err
    assert "durable-worker: error: module cli_empty_module defines no durable.Workflow" in err


async def test_a_worker_process_runs_tasks_and_drains_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "cli_flows.py").write_text(MODULE)
    async with serving() as (service, address):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "durable_worker", "cli_flows", "--server", address,
            "--worker-id", "w-cli", "--log-level", "WARNING",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert process.stdout is not None
            async with asyncio.timeout(30):
                line = await process.stdout.readline()
            assert line.decode() == (
                "durable-worker ready worker_id=w-cli queues=default,mail workflows=orders,mails\n"
            )
            [registered] = service.calls("RegisterWorkflows")
            t = task(1)
            t.workflow_version = definition_hash(registered.workflows[0])
            service.tasks.put_nowait(t)
            await until(lambda: service.completed_ids() == [1])
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
