"""The ``durable`` command line, against the fake WorkflowService of test_sdk_client."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import types
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from durable._cli import _parser, default_address, main
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb
from tests.unit.test_sdk_client import FakeWorkflowService, serving


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeWorkflowService, str]]:
    async with serving() as fake:
        yield fake


async def run(address: str, *argv: str) -> int:
    # The CLI blocks, so it runs in a thread while the fake server answers in this loop.
    return await asyncio.to_thread(main, ["--address", address, *argv])


async def test_start_prints_the_id(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = served
    code = await run(
        address, "start", "wf", "--input", '{"a": [1]}', "--queue", "q", "--priority", "2"
    )
    assert code == 0
    assert capsys.readouterr().out == "ex-done\n"
    assert service.requests == [
        pb.StartWorkflowRequest(workflow_name="wf", input_json='{"a":[1]}', queue="q", priority=2)
    ]


async def test_start_and_wait_prints_the_execution(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = served
    assert await run(address, "start", "wf", "--wait", "--wait-timeout", "10") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "completed"
    assert printed["result"] == {"total": 3}
    assert printed["created_at"] is None


async def test_wait_prints_the_finished_execution(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = served
    assert await run(address, "wait", "ex-slow", "--timeout", "10") == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["id"], printed["status"]) == ("ex-slow", "completed")
    assert await run(address, "wait", "ex-stuck", "--timeout", "0.05") == 1
    assert "did not finish within 0.05s" in capsys.readouterr().err


async def test_wait_without_a_timeout_waits_and_keeps_the_call_deadline(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = served
    # As the README shows it: no --timeout at all (it crashed, the global one being None).
    assert await run(address, "wait", "ex-slow") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    # The global --timeout (each call's deadline) and wait's own are two settings.
    args = _parser().parse_args(["--timeout", "5", "wait", "ex-1", "--timeout", "60"])
    assert (args.timeout, args.wait_timeout) == (5.0, 60.0)
    args = _parser().parse_args(["wait", "ex-1"])
    assert (args.timeout, args.wait_timeout) == (30.0, None)


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every subcommand parser, at any depth, with the words that select it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    """The namespace attributes a parser sets: its arguments' and its defaults'."""
    names = {a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    return names | set(parser._defaults)


def test_no_subcommand_option_replaces_a_global_one() -> None:
    """A subcommand's argument (or default) of the same name overwrites a global option's.

    argparse fills one namespace: ``durable --timeout 5 wait ID`` would get wait's
    default, not 5. So no subcommand, at any depth, may reuse a name its parents set.
    """
    root = _parser()
    parents: dict[tuple[str, ...], set[str]] = {(): _dests(root)}
    found = list(_subcommands(root))
    assert {path[0] for path, _ in found} >= {"start", "wait", "get", "list", "schedule", "queue"}
    for path, sub in found:  # parents come before their subcommands
        inherited = set().union(*(parents[path[:i]] for i in range(len(path))))
        clash = _dests(sub) & inherited
        assert not clash, f"durable {' '.join(path)} reuses {sorted(clash)} of its parents"
        parents[path] = _dests(sub)


async def test_get_with_logs(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = served
    assert await run(address, "get", "ex-done", "--logs") == 0
    assert json.loads(capsys.readouterr().out)["id"] == "ex-done"
    assert service.requests == [
        pb.GetExecutionRequest(execution_id="ex-done", include_steps=True, include_logs=True)
    ]


async def test_list_prints_a_table(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = served
    code = await run(
        address, "list", "--workflow", "wf", "--status", "running", "waiting", "--page-size", "2"
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "WORKFLOW", "STATUS", "QUEUE", "CREATED", "(UTC)", "STEP"]
    assert lines[1].split() == ["ex-stuck", "wf", "running", "default", "-", "-"]
    assert lines[2].split() == ["ex-done", "wf", "completed", "default", "-", "-"]
    assert lines[3:] == ["2 of 5 execution(s)", "next page: --page-token page-2"]
    sent = service.requests[0]
    assert isinstance(sent, pb.ListExecutionsRequest)
    assert list(sent.statuses) == [
        common_pb2.EXECUTION_STATUS_RUNNING,
        common_pb2.EXECUTION_STATUS_WAITING,
    ]
    assert (sent.workflow_name, sent.page_size) == ("wf", 2)


async def test_children_prints_a_table_without_a_total(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = served
    code = await run(address, "children", "ex-parent", "--status", "failed", "--page-size", "7")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["ex-child", "wf", "failed", "default", "-", "-"]
    assert lines[2:] == ["1 execution(s)", "next page: --page-token kids-2"]
    assert service.requests == [
        pb.ListChildrenRequest(
            parent_execution_id="ex-parent",
            statuses=[common_pb2.EXECUTION_STATUS_FAILED],
            page_size=7,
        )
    ]


async def test_cancel(
    served: tuple[FakeWorkflowService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = served
    assert await run(address, "cancel", "ex-stuck", "--reason", "done with it") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert service.requests == [
        pb.CancelExecutionRequest(execution_id="ex-stuck", reason="done with it")
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "nope"], "error: NOT_FOUND: execution 'nope' not found\n"),
        (["start", "missing"], "error: NOT_FOUND: workflow 'missing' is not registered\n"),
        (["cancel", "ex-done"], "error: FAILED_PRECONDITION: execution 'ex-done' has finished\n"),
    ],
)
async def test_client_errors_exit_1(
    served: tuple[FakeWorkflowService, str],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    _, address = served
    assert await run(address, *argv) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", expected)


def test_bad_input_json_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["start", "wf", "--input", "{not json"])
    assert info.value.code == 2
    assert "argument --input: not valid JSON" in capsys.readouterr().err


def test_unknown_status_and_extra_arguments_are_usage_errors() -> None:
    with pytest.raises(SystemExit):
        main(["list", "--status", "done"])
    with pytest.raises(SystemExit):
        main(["get", "x", "--bogus"])


def test_address_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLE_SERVER_ADDRESS", raising=False)
    assert default_address() == "127.0.0.1:7411"
    monkeypatch.setenv("DURABLE_SERVER_ADDRESS", "orchestrator:9000")
    assert default_address() == "orchestrator:9000"


@pytest.mark.parametrize(
    ("command", "target"), [("server", "serve"), ("migrate", "migrate"), ("demo", "demo")]
)
def test_orchestrator_commands_pass_arguments_through(
    monkeypatch: pytest.MonkeyPatch, command: str, target: str
) -> None:
    calls: list[list[str]] = []

    def fake_main(argv: Sequence[str] | None = None) -> int:
        calls.append(list(argv or []))
        return 7

    module = types.ModuleType("durable_server.__main__")
    module.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "durable_server.__main__", module)
    argv = [command, "--database-url", "postgresql://x", "--help", "--address", "a"]
    assert main(argv) == 7
    assert calls == [[target, "--database-url", "postgresql://x", "--help", "--address", "a"]]


def test_missing_orchestrator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "durable_server.__main__", None)
    assert main(["server"]) == 2
    assert capsys.readouterr().err == (
        "the orchestrator is not installed: pip install durable-server\n"
    )
