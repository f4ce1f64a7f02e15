"""Feeding waits from outside: send_event, provide_input, the pending lists; models and CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from durable import (
    Client,
    Event,
    EventWaitMode,
    FailedPreconditionError,
    InputField,
    InputKind,
    InvalidArgumentError,
    NotFoundError,
    PendingEventWait,
    PendingInput,
    SyncClient,
    Workflow,
)
from durable._cli import main
from durable._converters import (
    event_wait_mode_from_proto,
    event_wait_mode_to_proto,
    execution_from_proto,
    input_kind_from_proto,
    input_kind_to_proto,
)
from durable._requests import pending_events_request, pending_inputs_request, send_event_request
from durable._serde import JSONSerializationError
from durable.errors import DurableError
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from tests.helpers.fake_server import fake_server
from tests.unit.test_sdk_client import FakeWorkflowService

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 5, 6, 9, 0, tzinfo=UTC)


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


class FakeWaitService(FakeWorkflowService):
    """The fake of test_sdk_client, plus the four wait calls."""

    async def SendEvent(
        self, request: pb.SendEventRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SendEventResponse:
        self.requests.append(request)
        if request.execution_id == "nope":
            await context.abort(grpc.StatusCode.NOT_FOUND, "execution nope does not exist")
        if request.execution_id == "ex-done":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "execution ex-done is done")
        return pb.SendEventResponse(delivered=request.name == "paid")

    async def ProvideInput(
        self, request: pb.ProvideInputRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ProvideInputResponse:
        self.requests.append(request)
        if request.value_json == '"maybe"':
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "an approval is true or false")
        if request.name != "ok":
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f"no pending input {request.name!r}"
            )
        return pb.ProvideInputResponse()

    async def ListPendingInputs(
        self, request: pb.ListPendingInputsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListPendingInputsResponse:
        self.requests.append(request)
        return pb.ListPendingInputsResponse(
            inputs=[
                pb.PendingInput(
                    execution_id="ex-1",
                    workflow_name="expenses",
                    step_name="approve",
                    name="manager_approval",
                    kind=common_pb2.INPUT_KIND_APPROVAL,
                    prompt="Refund?",
                    requested_at=ts(T0),
                    deadline_at=ts(T1),
                ),
                pb.PendingInput(
                    execution_id="ex-2",
                    workflow_name="expenses",
                    step_name="ship",
                    name="address",
                    kind=common_pb2.INPUT_KIND_FORM,
                    fields=[
                        common_pb2.InputField(name="street", type="string", required=True),
                        common_pb2.InputField(name="note", label="Note"),
                    ],
                    requested_at=ts(T1),
                ),
            ],
            next_page_token="in-2",
        )

    async def ListPendingEvents(
        self, request: pb.ListPendingEventsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListPendingEventsResponse:
        self.requests.append(request)
        return pb.ListPendingEventsResponse(
            waits=[
                pb.PendingEventWait(
                    execution_id="ex-1",
                    workflow_name="orders",
                    step_name="collect",
                    names=["a", "b"],
                    mode=common_pb2.EVENT_WAIT_MODE_ALL,
                    received=["a"],
                    waiting_since=ts(T0),
                )
            ]
        )


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[FakeWaitService, str]]:
    service = FakeWaitService()
    async with fake_server((pb_grpc.add_WorkflowServiceServicer_to_server, service)) as address:
        yield service, address


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWaitService, str]]:
    async with serving() as served:
        yield served


# -- Client and SyncClient -------------------------------------------------------------


async def test_send_event_encodes_the_payload_and_says_if_delivered(
    fake: tuple[FakeWaitService, str],
) -> None:
    service, address = fake
    async with Client(address) as client:
        assert await client.send_event("ex-1", "paid", {"at": T0, "n": (1, 2)}) is True
        assert await client.send_event("ex-1", "later") is False
        await client.send_event("ex-1", "hook", event_id="delivery-9")
    assert service.requests == [
        pb.SendEventRequest(
            execution_id="ex-1",
            name="paid",
            payload_json='{"at":"2026-05-04T09:00:00+00:00","n":[1,2]}',
        ),
        pb.SendEventRequest(execution_id="ex-1", name="later", payload_json="null"),
        pb.SendEventRequest(
            execution_id="ex-1", name="hook", payload_json="null", event_id="delivery-9"
        ),
    ]


async def test_sync_send_event_and_provide_input(fake: tuple[FakeWaitService, str]) -> None:
    service, address = fake

    def calls() -> Any:
        with SyncClient(address) as client:
            delivered = client.send_event("ex-1", "paid", 3)
            answered = client.provide_input("ex-1", "ok", {"approved": True, "comment": "go"})
            return delivered, answered

    assert await asyncio.to_thread(calls) == (True, None)
    assert service.requests == [
        pb.SendEventRequest(execution_id="ex-1", name="paid", payload_json="3"),
        pb.ProvideInputRequest(
            execution_id="ex-1", name="ok", value_json='{"approved":true,"comment":"go"}'
        ),
    ]


async def test_provide_input(fake: tuple[FakeWaitService, str]) -> None:
    service, address = fake
    async with Client(address) as client:
        assert await client.provide_input("ex-1", "ok", False) is None
    assert service.requests == [
        pb.ProvideInputRequest(execution_id="ex-1", name="ok", value_json="false")
    ]


async def test_list_pending_inputs(fake: tuple[FakeWaitService, str]) -> None:
    service, address = fake
    async with Client(address) as client:
        page = await client.list_pending_inputs(
            workflow=Workflow("expenses"), name="manager_approval", page_size=5, page_token="in-1"
        )
    first, second = page.inputs
    assert first == PendingInput(
        execution_id="ex-1",
        workflow_name="expenses",
        step_name="approve",
        name="manager_approval",
        kind=InputKind.APPROVAL,
        prompt="Refund?",
        choices=(),
        fields=(),
        requested_at=T0,
        deadline_at=T1,
    )
    assert second.kind is InputKind.FORM
    assert second.fields == (
        InputField("street", "string", required=True),
        InputField("note", "any", required=False, label="Note"),
    )
    assert second.deadline_at is None
    assert page.next_page_token == "in-2"
    assert service.requests == [
        pb.ListPendingInputsRequest(
            workflow_name="expenses", name="manager_approval", page_size=5, page_token="in-1"
        )
    ]


async def test_list_pending_events(fake: tuple[FakeWaitService, str]) -> None:
    service, address = fake

    def call() -> Any:
        with SyncClient(address) as client:
            return client.list_pending_events(execution_id="ex-1", name="a")

    page = await asyncio.to_thread(call)
    assert page.waits == (
        PendingEventWait(
            execution_id="ex-1",
            workflow_name="orders",
            step_name="collect",
            names=("a", "b"),
            mode=EventWaitMode.ALL,
            received=("a",),
            waiting_since=T0,
            deadline_at=None,
        ),
    )
    assert page.next_page_token == ""
    async with Client(address) as client:
        again = await client.list_pending_events(workflow="orders", page_size=2)

    def sync_inputs() -> Any:
        with SyncClient(address) as sync_client:
            return sync_client.list_pending_inputs(execution_id="ex-9")

    inputs = await asyncio.to_thread(sync_inputs)
    assert again == page
    assert len(inputs.inputs) == 2
    assert service.requests == [
        pb.ListPendingEventsRequest(execution_id="ex-1", name="a"),
        pb.ListPendingEventsRequest(workflow_name="orders", page_size=2),
        pb.ListPendingInputsRequest(execution_id="ex-9"),
    ]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.send_event("nope", "e"), NotFoundError, "execution nope does not exist"),
        (
            lambda c: c.send_event("ex-done", "e"),
            FailedPreconditionError,
            "execution ex-done is done",
        ),
        (
            lambda c: c.provide_input("ex-1", "ok", "maybe"),
            InvalidArgumentError,
            "an approval is true or false",
        ),
        (
            lambda c: c.provide_input("ex-1", "other", True),
            FailedPreconditionError,
            "no pending input 'other'",
        ),
    ],
)
async def test_errors_are_typed(
    fake: tuple[FakeWaitService, str], call: Any, error: type[DurableError], message: str
) -> None:
    _, address = fake
    async with Client(address) as client:
        with pytest.raises(error) as info:
            await call(client)
    assert info.value.message == message
    with SyncClient(address) as sync_client:
        with pytest.raises(error, match=message):
            await asyncio.to_thread(call, sync_client)


def test_a_payload_that_is_not_json_is_refused_before_sending() -> None:
    with pytest.raises(JSONSerializationError):
        send_event_request("ex-1", "e", object())


def test_pending_requests_leave_unset_filters_empty() -> None:
    none: dict[str, Any] = {
        "execution_id": None,
        "workflow": None,
        "name": None,
        "page_size": 0,
        "page_token": None,
    }
    assert pending_inputs_request(**none) == pb.ListPendingInputsRequest()
    assert pending_events_request(**none) == pb.ListPendingEventsRequest()


# -- models ----------------------------------------------------------------------------


def test_every_proto_input_kind_and_event_wait_mode_has_a_member() -> None:
    for name, value in common_pb2.InputKind.items():
        if value == common_pb2.INPUT_KIND_UNSPECIFIED:
            continue
        kind = input_kind_from_proto(value)
        assert f"INPUT_KIND_{kind.value.upper()}" == name
        assert input_kind_to_proto(kind.value) == value
    assert len(InputKind) == len(common_pb2.InputKind.values()) - 1
    for name, value in common_pb2.EventWaitMode.items():
        if value == common_pb2.EVENT_WAIT_MODE_UNSPECIFIED:
            continue
        mode = event_wait_mode_from_proto(value)
        assert f"EVENT_WAIT_MODE_{mode.value.upper()}" == name
        assert event_wait_mode_to_proto(mode) == value
    assert len(EventWaitMode) == len(common_pb2.EventWaitMode.values()) - 1


def test_unknown_kinds_and_modes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown input kind \(0\)"):
        input_kind_from_proto(common_pb2.INPUT_KIND_UNSPECIFIED)
    with pytest.raises(ValueError, match=r"unknown event wait mode \(99\)"):
        event_wait_mode_from_proto(99)
    with pytest.raises(ValueError, match="unknown input kind 'yes'; expected one of approval"):
        input_kind_to_proto("yes")
    with pytest.raises(ValueError, match="unknown event wait mode 'some'"):
        event_wait_mode_to_proto("some")


def test_an_execution_lists_its_unconsumed_events() -> None:
    got = execution_from_proto(
        pb.Execution(
            id="e1",
            status=common_pb2.EXECUTION_STATUS_WAITING,
            unconsumed_events=[
                pb.Event(name="early", payload_json='{"n": 1}', sent_at=ts(T0)),
                pb.Event(name="bare"),
            ],
        )
    )
    assert got.unconsumed_events == (
        Event(name="early", payload={"n": 1}, sent_at=T0),
        Event(name="bare", payload=None, sent_at=None),
    )
    plain = execution_from_proto(pb.Execution(id="e2", status=common_pb2.EXECUTION_STATUS_RUNNING))
    assert plain.unconsumed_events == ()


def test_input_field_defaults() -> None:
    assert InputField("x") == InputField(name="x", type="any", required=True, label="")


# -- the CLI ---------------------------------------------------------------------------


async def run(address: str, *argv: str) -> int:
    return await asyncio.to_thread(main, ["--address", address, *argv])


async def test_cli_send_event(
    fake: tuple[FakeWaitService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = fake
    assert await run(address, "send-event", "ex-1", "paid", "--payload", '{"n": 2}') == 0
    assert json.loads(capsys.readouterr().out) == {"delivered": True}
    assert await run(address, "send-event", "ex-1", "later", "--event-id", "e-1") == 0
    assert json.loads(capsys.readouterr().out) == {"delivered": False}
    assert service.requests == [
        pb.SendEventRequest(execution_id="ex-1", name="paid", payload_json='{"n":2}'),
        pb.SendEventRequest(execution_id="ex-1", name="later", payload_json="null", event_id="e-1"),
    ]


async def test_cli_provide_input(
    fake: tuple[FakeWaitService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = fake
    assert await run(address, "provide-input", "ex-1", "ok", "--value", "true") == 0
    assert capsys.readouterr().out == ""
    assert await run(address, "provide-input", "ex-1", "ok", "--value", '"maybe"') == 1
    assert capsys.readouterr().err == ("error: INVALID_ARGUMENT: an approval is true or false\n")
    assert service.requests[0] == pb.ProvideInputRequest(
        execution_id="ex-1", name="ok", value_json="true"
    )


def test_cli_provide_input_needs_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["provide-input", "ex-1", "ok"])
    assert info.value.code == 2
    assert "--value" in capsys.readouterr().err


async def test_cli_pending_inputs_table_and_json(
    fake: tuple[FakeWaitService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = fake
    code = await run(address, "pending-inputs", "--workflow", "expenses", "--page-size", "2")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "EXECUTION",
        "WORKFLOW",
        "STEP",
        "INPUT",
        "KIND",
        "REQUESTED",
        "(UTC)",
        "DEADLINE",
    ]
    assert lines[1].split() == [
        "ex-1",
        "expenses",
        "approve",
        "manager_approval",
        "approval",
        "2026-05-04",
        "09:00:00",
        "2026-05-06",
        "09:00:00",
    ]
    assert lines[2].split() == [
        "ex-2",
        "expenses",
        "ship",
        "address",
        "form",
        "2026-05-06",
        "09:00:00",
        "-",
    ]
    assert lines[3:] == ["2 pending input(s)", "next page: --page-token in-2"]
    assert service.requests == [pb.ListPendingInputsRequest(workflow_name="expenses", page_size=2)]
    assert await run(address, "pending-inputs", "--execution", "ex-2", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["next_page_token"] == "in-2"
    assert printed["inputs"][1]["fields"][0] == {
        "name": "street",
        "type": "string",
        "required": True,
        "label": "",
    }
    assert printed["inputs"][0]["kind"] == "approval"
    assert printed["inputs"][0]["deadline_at"] == "2026-05-06T09:00:00+00:00"


async def test_cli_pending_events(
    fake: tuple[FakeWaitService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = fake
    assert await run(address, "pending-events", "--name", "a") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "EXECUTION",
        "WORKFLOW",
        "STEP",
        "MODE",
        "EVENTS",
        "RECEIVED",
        "SINCE",
        "(UTC)",
    ]
    assert lines[1].split() == [
        "ex-1",
        "orders",
        "collect",
        "all",
        "a,b",
        "a",
        "2026-05-04",
        "09:00:00",
    ]
    assert lines[2:] == ["1 event wait(s)"]
    assert service.requests == [pb.ListPendingEventsRequest(name="a", page_size=50)]
    assert await run(address, "pending-events", "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["waits"][0]["mode"] == "all"
    assert printed["waits"][0]["received"] == ["a"]


def test_cli_send_event_payload_must_be_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["send-event", "ex-1", "paid", "--payload", "{nope"])
    assert info.value.code == 2
    assert "argument --payload: not valid JSON" in capsys.readouterr().err
