"""Operations in the SDK: queues, retry and diagnose in the models, clients and CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from durable import (
    Client,
    FailedPreconditionError,
    Finding,
    InvalidArgumentError,
    NotFoundError,
    QueueInfo,
    SyncClient,
)
from durable._cli import format_findings, format_queues, main
from durable._converters import finding_from_proto, queue_info_from_proto
from durable._requests import diagnose_request
from durable.v1 import operations_service_pb2 as opb
from durable.v1 import operations_service_pb2_grpc as opb_grpc

T0 = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)

_STATES = {
    "pause": opb.QUEUE_STATE_PAUSED,
    "resume": opb.QUEUE_STATE_ACTIVE,
    "drain": opb.QUEUE_STATE_DRAINING,
}


def duration(value: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(value)
    return out


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


class FakeOperationsService(opb_grpc.OperationsServiceServicer):
    """Keeps queues in a dict and records every request; knows one failed execution."""

    def __init__(self) -> None:
        self.requests: list[Message] = []
        self.queues: dict[str, opb.QueueInfo] = {
            "default": opb.QueueInfo(
                name="default",
                state=opb.QUEUE_STATE_ACTIVE,
                ready=3,
                leased=1,
                waiting=2,
                delayed=4,
                oldest_ready_age=duration(timedelta(seconds=90, milliseconds=500)),
                concurrency_limit=5,
            ),
            "emails": opb.QueueInfo(name="emails", state=opb.QUEUE_STATE_ACTIVE),
        }

    async def _set(
        self,
        action: str,
        queue: str,
        reason: str,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> opb.QueueInfo:
        if not queue:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "queue is required")
        info = self.queues.setdefault(queue, opb.QueueInfo(name=queue))
        info.state = _STATES[action]
        info.reason = reason
        return info

    async def PauseQueue(
        self, request: opb.PauseQueueRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.PauseQueueResponse:
        self.requests.append(request)
        info = await self._set("pause", request.queue, request.reason, context)
        return opb.PauseQueueResponse(queue=info)

    async def ResumeQueue(
        self, request: opb.ResumeQueueRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.ResumeQueueResponse:
        self.requests.append(request)
        info = await self._set("resume", request.queue, "", context)
        return opb.ResumeQueueResponse(queue=info)

    async def DrainQueue(
        self, request: opb.DrainQueueRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.DrainQueueResponse:
        self.requests.append(request)
        info = await self._set("drain", request.queue, request.reason, context)
        return opb.DrainQueueResponse(queue=info)

    async def ListQueues(
        self, request: opb.ListQueuesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.ListQueuesResponse:
        self.requests.append(request)
        return opb.ListQueuesResponse(queues=sorted(self.queues.values(), key=lambda q: q.name))

    async def RetryExecution(
        self, request: opb.RetryExecutionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.RetryExecutionResponse:
        self.requests.append(request)
        if request.execution_id == "done":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "execution done has not failed"
            )
        if request.execution_id != "failed":
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"execution {request.execution_id} does not exist"
            )
        return opb.RetryExecutionResponse(step_name="charge")

    async def Diagnose(
        self, request: opb.DiagnoseRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> opb.DiagnoseResponse:
        self.requests.append(request)
        findings = [
            opb.Finding(
                execution_id="ex-1",
                workflow_name="orders",
                status="running",
                problem="queue_paused",
                detail="queue 'emails' is paused: durable queue resume emails",
                since=ts(T0),
            ),
            opb.Finding(
                execution_id="ex-2",
                workflow_name="reports",
                status="pending",
                problem="no_worker_for_queue",
            ),
        ]
        return opb.DiagnoseResponse(findings=findings[: request.limit or None])


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeOperationsService, str]]:
    server = grpc.aio.server()
    service = FakeOperationsService()
    opb_grpc.add_OperationsServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield service, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


Served = tuple[FakeOperationsService, str]


# -- models ------------------------------------------------------------------------------


def test_queue_info_from_proto() -> None:
    info = queue_info_from_proto(
        opb.QueueInfo(
            name="q",
            state=opb.QUEUE_STATE_DRAINING,
            reason="migrating",
            ready=1,
            leased=2,
            waiting=3,
            delayed=4,
            oldest_ready_age=duration(timedelta(seconds=7)),
            concurrency_limit=9,
        )
    )
    assert info == QueueInfo(
        name="q",
        state="draining",
        reason="migrating",
        ready=1,
        leased=2,
        waiting=3,
        delayed=4,
        oldest_ready_age=timedelta(seconds=7),
        concurrency_limit=9,
    )
    bare = queue_info_from_proto(opb.QueueInfo(name="q"))
    assert (bare.state, bare.oldest_ready_age) == ("active", None)  # UNSPECIFIED, unset
    assert queue_info_from_proto(opb.QueueInfo(state=opb.QUEUE_STATE_PAUSED)).state == "paused"
    with pytest.raises(ValueError, match=r"unknown queue state \(42\)"):
        queue_info_from_proto(opb.QueueInfo(state=42))  # type: ignore[arg-type]


def test_finding_from_proto() -> None:
    finding = finding_from_proto(
        opb.Finding(
            execution_id="e",
            workflow_name="w",
            status="waiting",
            problem="waiting_on_nothing",
            detail="d",
            since=ts(T0),
        )
    )
    assert finding == Finding("e", "w", "waiting", "waiting_on_nothing", "d", T0)
    assert finding_from_proto(opb.Finding(execution_id="e")).since is None


def test_diagnose_request() -> None:
    assert diagnose_request(limit=0, worker_alive_within=None) == opb.DiagnoseRequest()
    request = diagnose_request(limit=5, worker_alive_within=timedelta(minutes=2))
    assert request == opb.DiagnoseRequest(
        limit=5, worker_alive_within=duration(timedelta(minutes=2))
    )
    with pytest.raises(ValueError, match="limit must not be negative"):
        diagnose_request(limit=-1, worker_alive_within=None)
    with pytest.raises(ValueError, match="worker_alive_within must be positive"):
        diagnose_request(limit=0, worker_alive_within=timedelta(0))


# -- Client ------------------------------------------------------------------------------


async def test_queue_calls(served: Served) -> None:
    service, address = served
    async with Client(address) as client:
        paused = await client.pause_queue("emails", reason="provider outage")
        drained = await client.drain_queue("emails")
        resumed = await client.resume_queue("emails")
        queues = await client.list_queues()
    assert service.requests == [
        opb.PauseQueueRequest(queue="emails", reason="provider outage"),
        opb.DrainQueueRequest(queue="emails"),
        opb.ResumeQueueRequest(queue="emails"),
        opb.ListQueuesRequest(),
    ]
    assert (paused.name, paused.state, paused.reason) == ("emails", "paused", "provider outage")
    assert (drained.state, drained.reason) == ("draining", "")
    assert resumed.state == "active"
    assert [q.name for q in queues] == ["default", "emails"]
    default = queues[0]
    assert (default.ready, default.leased, default.waiting, default.delayed) == (3, 1, 2, 4)
    assert default.oldest_ready_age == timedelta(seconds=90, milliseconds=500)
    assert default.concurrency_limit == 5
    assert queues[1].oldest_ready_age is None


async def test_retry_and_diagnose(served: Served) -> None:
    service, address = served
    async with Client(address) as client:
        assert await client.retry_execution("failed") == "charge"
        findings = await client.diagnose()
        [first] = await client.diagnose(limit=1, worker_alive_within=timedelta(seconds=30))
    assert service.requests == [
        opb.RetryExecutionRequest(execution_id="failed"),
        opb.DiagnoseRequest(),
        opb.DiagnoseRequest(limit=1, worker_alive_within=duration(timedelta(seconds=30))),
    ]
    assert [f.problem for f in findings] == ["queue_paused", "no_worker_for_queue"]
    assert first == findings[0]
    assert (first.execution_id, first.status, first.since) == ("ex-1", "running", T0)
    assert findings[1].since is None


async def test_operation_errors_are_typed(served: Served) -> None:
    service, address = served
    async with Client(address) as client:
        with pytest.raises(NotFoundError, match="execution nope does not exist"):
            await client.retry_execution("nope")
        with pytest.raises(FailedPreconditionError, match="execution done has not failed"):
            await client.retry_execution("done")
        with pytest.raises(InvalidArgumentError, match="queue is required"):
            await client.pause_queue("")
        with pytest.raises(ValueError, match="limit must not be negative"):
            await client.diagnose(limit=-1)
    assert len(service.requests) == 3  # the bad limit never left the client


async def test_sync_client_operations(served: Served) -> None:
    service, address = served

    def calls() -> list[Any]:
        with SyncClient(address) as client:
            return [
                client.pause_queue("emails", "outage"),
                client.drain_queue("default", reason="migrating"),
                client.resume_queue("emails"),
                client.list_queues(),
                client.retry_execution("failed"),
                client.diagnose(limit=1, worker_alive_within=timedelta(minutes=1)),
            ]

    paused, drained, resumed, queues, step, findings = await asyncio.to_thread(calls)
    assert (paused.state, paused.reason) == ("paused", "outage")
    assert (drained.name, drained.state, drained.reason) == ("default", "draining", "migrating")
    assert resumed.state == "active"
    assert [(q.name, q.state) for q in queues] == [("default", "draining"), ("emails", "active")]
    assert step == "charge"
    assert [f.execution_id for f in findings] == ["ex-1"]
    assert service.requests[0] == opb.PauseQueueRequest(queue="emails", reason="outage")
    assert service.requests[-1] == opb.DiagnoseRequest(
        limit=1, worker_alive_within=duration(timedelta(minutes=1))
    )

    def missing() -> None:
        with SyncClient(address) as client:
            client.retry_execution("done")

    with pytest.raises(FailedPreconditionError, match="has not failed"):
        await asyncio.to_thread(missing)


# -- CLI ---------------------------------------------------------------------------------


async def run(address: str, *argv: str) -> int:
    # The CLI blocks, so it runs in a thread while the fake server answers in this loop.
    return await asyncio.to_thread(main, ["--address", address, *argv])


def test_format_queues_and_findings() -> None:
    queues = [
        QueueInfo("default", "active", "", 3, 1, 2, 4, timedelta(seconds=90), 5),
        QueueInfo("emails", "paused", "outage", 0, 0, 0, 0, None, 0),
        QueueInfo("slow", "active", "", 1, 0, 0, 0, timedelta(hours=2, minutes=5), 0),
        QueueInfo("fast", "active", "", 1, 0, 0, 0, timedelta(seconds=2.5), 0),
    ]
    assert format_queues(queues).splitlines() == [
        "QUEUE    STATE   READY  LEASED  WAITING  DELAYED  OLDEST READY  LIMIT  REASON",
        "default  active  3      1       2        4        1m30s         5      -",
        "emails   paused  0      0       0        0        -             -      outage",
        "slow     active  1      0       0        0        2h05m         -      -",
        "fast     active  1      0       0        0        2.5s          -      -",
        "4 queue(s)",
    ]
    findings = [
        Finding("ex-1", "orders", "running", "queue_paused", "resume it", T0),
        Finding("ex-2", "reports", "pending", "no_task", "", None),
    ]
    assert format_findings(findings).splitlines() == [
        "EXECUTION  WORKFLOW  STATUS   PROBLEM       SINCE (UTC)",
        "ex-1       orders    running  queue_paused  2026-03-08 07:30:00",
        "    resume it",
        "ex-2       reports   pending  no_task       -",
        "2 finding(s)",
    ]
    assert format_findings([]).splitlines() == [
        "EXECUTION  WORKFLOW  STATUS  PROBLEM  SINCE (UTC)",
        "0 finding(s)",
    ]


async def test_cli_queue_commands(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    service, address = served
    assert await run(address, "queue", "pause", "emails", "--reason", "outage") == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["name"], printed["state"], printed["reason"]) == ("emails", "paused", "outage")
    assert printed["oldest_ready_age"] is None
    assert await run(address, "queue", "drain", "emails") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "draining"
    assert await run(address, "queue", "resume", "emails") == 0
    assert json.loads(capsys.readouterr().out)["state"] == "active"
    assert await run(address, "queues") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "QUEUE",
        "STATE",
        "READY",
        "LEASED",
        "WAITING",
        "DELAYED",
        "OLDEST",
        "READY",
        "LIMIT",
        "REASON",
    ]
    assert "2 queue(s)" in out
    assert await run(address, "queues", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(q["name"], q["oldest_ready_age"]) for q in listed] == [
        ("default", 90.5),
        ("emails", None),
    ]
    assert service.requests[:3] == [
        opb.PauseQueueRequest(queue="emails", reason="outage"),
        opb.DrainQueueRequest(queue="emails"),
        opb.ResumeQueueRequest(queue="emails"),
    ]


async def test_cli_retry_and_diagnose(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    service, address = served
    assert await run(address, "retry", "failed") == 0
    assert capsys.readouterr().out == "charge\n"
    assert await run(address, "retry", "nope") == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: execution nope does not exist\n"
    assert await run(address, "diagnose", "--limit", "1") == 0
    out = capsys.readouterr().out
    assert "queue_paused" in out
    assert "1 finding(s)" in out
    assert await run(address, "diagnose", "--json") == 0
    findings = json.loads(capsys.readouterr().out)
    assert [f["since"] for f in findings] == ["2026-03-08T07:30:00+00:00", None]
    assert service.requests[-2:] == [opb.DiagnoseRequest(limit=1), opb.DiagnoseRequest()]
