"""Client.get_execution_graph, SyncClient's and ``durable graph``, against a fake service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest

from durable import Client, NotFoundError, SyncClient, Workflow
from durable._cli import main
from durable._requests import graph_request
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from tests.helpers.fake_server import fake_server


class GraphService(pb_grpc.WorkflowServiceServicer):
    """Answers GetExecutionGraph with a text naming what was asked."""

    def __init__(self) -> None:
        self.requests: list[pb.GetExecutionGraphRequest] = []

    async def GetExecutionGraph(
        self, request: pb.GetExecutionGraphRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetExecutionGraphResponse:
        self.requests.append(request)
        if request.execution_id == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, "execution missing does not exist")
        what = request.execution_id or request.workflow_name
        return pb.GetExecutionGraphResponse(
            text=f"graph of {what}\n", format=request.format or pb.GRAPH_FORMAT_MERMAID
        )


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[GraphService, str]]:
    service = GraphService()
    async with fake_server((pb_grpc.add_WorkflowServiceServicer_to_server, service)) as address:
        yield service, address


@pytest.fixture
async def fake() -> AsyncIterator[tuple[GraphService, str]]:
    async with serving() as served:
        yield served


def test_the_request_names_one_thing_and_a_known_format() -> None:
    assert graph_request("e-1", workflow=None, format="mermaid") == pb.GetExecutionGraphRequest(
        execution_id="e-1", format=pb.GRAPH_FORMAT_MERMAID
    )
    assert graph_request(None, workflow=Workflow("wf"), format="dot") == (
        pb.GetExecutionGraphRequest(workflow_name="wf", format=pb.GRAPH_FORMAT_DOT)
    )
    with pytest.raises(ValueError, match="not both"):
        graph_request(None, workflow=None, format="dot")
    with pytest.raises(ValueError, match="not both"):
        graph_request("e-1", workflow="wf", format="dot")
    with pytest.raises(ValueError, match="format must be one of"):
        graph_request("e-1", workflow=None, format="svg")


async def test_client_gets_the_text(fake: tuple[GraphService, str]) -> None:
    service, address = fake
    async with Client(address) as client:
        assert await client.get_execution_graph("e-1") == "graph of e-1\n"
        assert await client.get_execution_graph(workflow="wf", format="dot") == "graph of wf\n"
        with pytest.raises(NotFoundError, match="missing does not exist"):
            await client.get_execution_graph("missing")
    assert [(r.execution_id, r.workflow_name, r.format) for r in service.requests] == [
        ("e-1", "", pb.GRAPH_FORMAT_MERMAID),
        ("", "wf", pb.GRAPH_FORMAT_DOT),
        ("missing", "", pb.GRAPH_FORMAT_MERMAID),
    ]


async def test_sync_client_gets_the_text(fake: tuple[GraphService, str]) -> None:
    service, address = fake

    def call() -> str:
        with SyncClient(address) as client:
            return client.get_execution_graph("e-2", format="dot")

    assert await asyncio.to_thread(call) == "graph of e-2\n"
    assert service.requests == [
        pb.GetExecutionGraphRequest(execution_id="e-2", format=pb.GRAPH_FORMAT_DOT)
    ]


async def test_cli_prints_the_graph(
    fake: tuple[GraphService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = fake

    async def run(*argv: str) -> int:
        return await asyncio.to_thread(main, ["--address", address, *argv])

    assert await run("graph", "e-3") == 0
    assert capsys.readouterr().out == "graph of e-3\n"
    assert await run("graph", "--workflow", "wf", "--format", "dot") == 0
    assert capsys.readouterr().out == "graph of wf\n"
    assert [(r.execution_id, r.workflow_name, r.format) for r in service.requests] == [
        ("e-3", "", pb.GRAPH_FORMAT_MERMAID),
        ("", "wf", pb.GRAPH_FORMAT_DOT),
    ]
    assert await run("graph") == 2
    assert "not both" in capsys.readouterr().err
    assert await run("graph", "missing") == 1
    assert capsys.readouterr().err.startswith("error: NOT_FOUND: ")
