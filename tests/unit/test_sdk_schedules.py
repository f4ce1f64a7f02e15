"""Schedules in the SDK: Cron in the DSL and the definition, models, Client and SyncClient."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from durable import (
    AlreadyExistsError,
    CatchUp,
    Client,
    Cron,
    InvalidArgumentError,
    NotFoundError,
    Overlap,
    Schedule,
    SyncClient,
    Workflow,
)
from durable._converters import (
    catch_up_from_proto,
    catch_up_to_proto,
    execution_from_proto,
    overlap_from_proto,
    overlap_to_proto,
    schedule_from_proto,
)
from durable._definition import definition_hash, to_definition
from durable._requests import UNSET, list_request, update_schedule_request
from durable._serde import JSONSerializationError
from durable.v1 import common_pb2, definition_pb2
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import schedule_service_pb2_grpc as spb_grpc
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pb_grpc
from tests.helpers.fake_server import fake_server
from tests.unit.test_sdk_client import FakeWorkflowService

T0 = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def ts(value: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(value)
    return out


def passthrough(data: Any) -> Any:
    return data


def workflow(name: str = "report", **options: Any) -> Workflow:
    wf = Workflow(name, **options)
    wf.step(passthrough)
    return wf


# -- Cron --------------------------------------------------------------------------------


def test_cron_defaults() -> None:
    cron = Cron("0 9 * * MON-FRI")
    assert (cron.expression, cron.tz, cron.input, cron.name, cron.queue) == (
        "0 9 * * MON-FRI",
        "",
        None,
        None,
        None,
    )
    assert (cron.priority, cron.enabled, cron.catch_up_limit) == (0, True, 10)
    assert cron.catch_up is CatchUp.ONCE
    assert cron.overlap is Overlap.ALLOW
    assert cron.input_json == "null"


def test_cron_takes_names_of_policies_and_keeps_members() -> None:
    cron = Cron(
        " @Daily ",
        tz="America/New_York",
        input={"at": datetime(2026, 1, 1, tzinfo=UTC), "n": (1, 2)},
        name="nightly",
        queue="reports",
        priority=-3,
        enabled=False,
        catch_up="all",
        catch_up_limit=3,
        overlap="cancel_previous",
    )
    assert cron.expression == "@Daily"
    assert cron.catch_up is CatchUp.ALL
    assert cron.overlap is Overlap.CANCEL_PREVIOUS
    assert cron.input_json == '{"at":"2026-01-01T00:00:00+00:00","n":[1,2]}'
    other_input = dataclasses.replace(cron, input={"other": 1})
    assert hash(cron) == hash(other_input)  # a dict input does not make it unhashable
    assert cron != other_input
    assert cron == dataclasses.replace(cron)


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "*/15 0 9 * * *",
        "@yearly",
        "@ANNUALLY",
        "0 0 L * ?",
        "0 12 * * 5#2",
        "0\t9 * jan-mar mon,fri",
    ],
)
def test_good_cron_expressions(expression: str) -> None:
    assert Cron(expression).expression == expression.strip()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expression": ""}, "Cron(''): the cron expression must be a non-empty string"),
        ({"expression": "   "}, "the cron expression must be a non-empty string"),
        ({"expression": None}, "the cron expression must be a non-empty string"),
        ({"expression": "* * * *"}, "has 4 field(s); use 5"),
        ({"expression": "* * * * * * *"}, "has 7 field(s)"),
        ({"expression": "@every_minute"}, "unknown cron alias '@every_minute'"),
        (
            {"expression": "0 9 * * MON\u2013FRI"},
            "field 'MON\u2013FRI' has a character no cron field",
        ),
        ({"expression": "* * * * *", "tz": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        ({"expression": "* * * * *", "tz": None}, "tz must be an IANA time zone name"),
        ({"expression": "* * * * *", "name": "a b"}, "schedule name 'a b' is invalid"),
        ({"expression": "* * * * *", "queue": "q q"}, "queue name 'q q' is invalid"),
        ({"expression": "* * * * *", "priority": 1.5}, "priority must be an int"),
        ({"expression": "* * * * *", "priority": 2**31}, "priority must be an int"),
        ({"expression": "* * * * *", "catch_up_limit": 0}, "catch_up_limit must be an int from 1"),
        ({"expression": "* * * * *", "catch_up_limit": True}, "catch_up_limit must be an int"),
        ({"expression": "* * * * *", "enabled": 1}, "enabled must be True or False"),
        ({"expression": "* * * * *", "catch_up": "never"}, "catch_up must be one of 'once'"),
        ({"expression": "* * * * *", "overlap": "queue"}, "overlap must be one of 'allow'"),
    ],
)
def test_bad_crons(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Cron(**kwargs)


def test_cron_input_must_be_json() -> None:
    with pytest.raises(JSONSerializationError):
        Cron("@daily", input=object())


# -- Workflow(schedule=..., schedules=...) -------------------------------------------------


def test_a_single_schedule_is_named_after_the_workflow() -> None:
    wf = workflow(schedule=Cron("0 9 * * *", tz="Europe/Berlin"))
    [cron] = wf.schedules
    assert cron.name == "report"
    assert cron.tz == "Europe/Berlin"
    [named] = workflow(schedules=[Cron("@hourly", name="report.hourly")]).schedules
    assert named.name == "report.hourly"
    [alone] = workflow(schedules=(Cron("@hourly"),)).schedules
    assert alone.name == "report"
    assert workflow().schedules == ()


def test_several_schedules_need_names() -> None:
    wf = workflow(schedules=[Cron("@hourly", name="a"), Cron("@daily", name="b")])
    assert [c.name for c in wf.schedules] == ["a", "b"]
    with pytest.raises(
        ValueError,
        match=r"workflow 'report': with several schedules each needs a name= "
        r"\(Cron\('@daily'\) has none\)",
    ):
        Workflow("report", schedules=[Cron("@hourly", name="a"), Cron("@daily")])
    with pytest.raises(ValueError, match="the schedule name 'a' is used twice"):
        Workflow("report", schedules=[Cron("@hourly", name="a"), Cron("@daily", name="a")])


def test_schedule_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="give schedule= or schedules=, not both"):
        Workflow("wf", schedule=Cron("@daily"), schedules=[Cron("@hourly")])
    with pytest.raises(ValueError, match="a schedule must be a Cron, got '@daily'"):
        Workflow("wf", schedule="@daily")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a schedule must be a Cron"):
        Workflow("wf", schedules=["@daily"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="schedules must be a list of Cron"):
        Workflow("wf", schedules=Cron("@daily"))  # type: ignore[arg-type]


def test_the_definition_declares_the_schedules() -> None:
    wf = workflow(
        schedules=[
            Cron("0 9 * * MON-FRI", tz="America/New_York", input={"kind": "daily"}, name="a"),
            Cron(
                "@hourly",
                name="b",
                queue="fast",
                priority=2,
                enabled=False,
                catch_up="all",
                catch_up_limit=4,
                overlap="skip",
            ),
        ]
    )
    definition = to_definition(wf)
    assert list(definition.schedules) == [
        definition_pb2.DeclaredSchedule(
            name="a",
            cron="0 9 * * MON-FRI",
            timezone="America/New_York",
            input_json='{"kind":"daily"}',
            enabled=True,
            catch_up=common_pb2.CATCH_UP_ONCE,
            catch_up_limit=10,
            overlap=common_pb2.OVERLAP_ALLOW,
        ),
        definition_pb2.DeclaredSchedule(
            name="b",
            cron="@hourly",
            input_json="null",
            queue="fast",
            priority=2,
            enabled=False,
            catch_up=common_pb2.CATCH_UP_ALL,
            catch_up_limit=4,
            overlap=common_pb2.OVERLAP_SKIP,
        ),
    ]


def test_a_schedule_changed_in_code_changes_the_version() -> None:
    plain = definition_hash(to_definition(workflow()))
    daily = definition_hash(to_definition(workflow(schedule=Cron("0 9 * * *"))))
    again = definition_hash(to_definition(workflow(schedule=Cron("0 9 * * *"))))
    later = definition_hash(to_definition(workflow(schedule=Cron("0 10 * * *"))))
    other_input = definition_hash(to_definition(workflow(schedule=Cron("0 9 * * *", input=1))))
    assert daily == again
    assert len({plain, daily, later, other_input}) == 4
    # A workflow without schedules keeps the version it had before schedules existed.
    assert not to_definition(workflow()).HasField("timeout")
    assert to_definition(workflow()).SerializeToString(deterministic=True) == (
        definition_pb2.WorkflowDefinition(
            name="report", nodes=[definition_pb2.Node(step=definition_pb2.Step(name="passthrough"))]
        ).SerializeToString(deterministic=True)
    )


# -- models --------------------------------------------------------------------------------


def test_every_proto_catch_up_and_overlap_has_a_member() -> None:
    for name, value in common_pb2.CatchUp.items():
        if value != common_pb2.CATCH_UP_UNSPECIFIED:
            assert name == f"CATCH_UP_{catch_up_from_proto(value).name}"
            assert catch_up_to_proto(catch_up_from_proto(value)) == value
    for key, number in common_pb2.Overlap.items():
        if number != common_pb2.OVERLAP_UNSPECIFIED:
            assert key == f"OVERLAP_{overlap_from_proto(number).name}"
            assert overlap_to_proto(overlap_from_proto(number)) == number
    assert catch_up_from_proto(common_pb2.CATCH_UP_UNSPECIFIED) is CatchUp.ONCE
    assert overlap_from_proto(common_pb2.OVERLAP_UNSPECIFIED) is Overlap.ALLOW
    with pytest.raises(ValueError, match="unknown catch-up policy"):
        catch_up_from_proto(99)
    with pytest.raises(ValueError, match="unknown overlap policy"):
        overlap_from_proto(99)
    with pytest.raises(ValueError, match="unknown catch_up 'never'; expected one of once"):
        catch_up_to_proto("never")
    with pytest.raises(ValueError, match="unknown overlap 'wait'; expected one of allow"):
        overlap_to_proto("wait")


def test_schedule_from_proto() -> None:
    msg = spb.Schedule(
        name="nightly",
        workflow_name="report",
        cron="0 2 * * *",
        timezone="Europe/Paris",
        input_json='{"full":true}',
        queue="reports",
        priority=4,
        enabled=True,
        catch_up=common_pb2.CATCH_UP_ALL,
        catch_up_limit=7,
        overlap=common_pb2.OVERLAP_CANCEL_PREVIOUS,
        max_failures=3,
        next_fire_at=ts(T0),
        last_execution_id="ex-1",
        consecutive_failures=1,
        last_error="workflow 'report' is not registered",
        declared=True,
        created_at=ts(T0),
    )
    assert schedule_from_proto(msg) == Schedule(
        name="nightly",
        workflow_name="report",
        cron="0 2 * * *",
        timezone="Europe/Paris",
        input={"full": True},
        queue="reports",
        priority=4,
        enabled=True,
        catch_up=CatchUp.ALL,
        catch_up_limit=7,
        overlap=Overlap.CANCEL_PREVIOUS,
        max_failures=3,
        next_fire_at=T0,
        last_fire_at=None,
        last_execution_id="ex-1",
        consecutive_failures=1,
        last_error="workflow 'report' is not registered",
        disabled_reason="",
        declared=True,
        created_at=T0,
        updated_at=None,
    )
    bare = schedule_from_proto(spb.Schedule(name="x"))
    assert (bare.input, bare.catch_up, bare.overlap) == (None, CatchUp.ONCE, Overlap.ALLOW)


def test_executions_say_which_schedule_started_them() -> None:
    started = execution_from_proto(
        pb.Execution(
            id="ex-1",
            status=common_pb2.EXECUTION_STATUS_RUNNING,
            schedule_name="nightly",
            schedule_slot=ts(T0),
        )
    )
    assert (started.schedule_name, started.schedule_slot) == ("nightly", T0)
    plain = execution_from_proto(
        pb.Execution(id="ex-2", status=common_pb2.EXECUTION_STATUS_RUNNING)
    )
    assert (plain.schedule_name, plain.schedule_slot) == ("", None)


def test_list_executions_filters_by_schedule() -> None:
    request = list_request(
        workflow=None,
        statuses=None,
        queue=None,
        parent_execution_id=None,
        top_level_only=False,
        created_after=None,
        created_before=None,
        page_size=10,
        page_token=None,
        schedule="nightly",
    )
    assert request == pb.ListExecutionsRequest(page_size=10, schedule_name="nightly")


# -- requests ------------------------------------------------------------------------------


def test_update_builds_the_mask_from_the_keywords() -> None:
    request = update_schedule_request(
        "nightly",
        {"cron": "0 3 * * *", "input": {"full": True}, "queue": None, "catch_up": "skip"},
    )
    assert request == spb.UpdateScheduleRequest(
        schedule=spb.Schedule(
            name="nightly",
            cron="0 3 * * *",
            input_json='{"full":true}',
            catch_up=common_pb2.CATCH_UP_SKIP,
        ),
        update_mask=["cron", "input_json", "queue", "catch_up"],
    )
    request = update_schedule_request(
        "nightly",
        {"workflow": workflow("other"), "enabled": False, "overlap": Overlap.SKIP, "priority": 0},
    )
    assert list(request.update_mask) == ["workflow_name", "enabled", "overlap", "priority"]
    assert request.schedule.workflow_name == "other"
    assert request.schedule.overlap == common_pb2.OVERLAP_SKIP


def test_update_refuses_unknown_keywords_and_nothing() -> None:
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument\(s\) name, tz; it changes workflow, cron"
    ):
        update_schedule_request("nightly", {"tz": "UTC", "name": "x"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="needs something to change"):
        update_schedule_request("nightly", {})
    with pytest.raises(ValueError, match="unknown overlap 'wait'"):
        update_schedule_request("nightly", {"overlap": "wait"})  # type: ignore[typeddict-item]


# -- Client and SyncClient against a fake ScheduleService -----------------------------------


class FakeScheduleService(spb_grpc.ScheduleServiceServicer):
    """Keeps schedules in a dict; records every request."""

    def __init__(self) -> None:
        self.requests: list[Message] = []
        self.schedules: dict[str, spb.Schedule] = {}

    async def _get(self, name: str, context: grpc.aio.ServicerContext[Any, Any]) -> spb.Schedule:
        if name not in self.schedules:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"schedule {name!r} does not exist")
        return self.schedules[name]

    async def CreateSchedule(
        self, request: spb.CreateScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.CreateScheduleResponse:
        self.requests.append(request)
        if request.schedule.name in self.schedules:
            await context.abort(
                grpc.StatusCode.ALREADY_EXISTS,
                f"schedule {request.schedule.name!r} already exists",
            )
        if request.schedule.cron == "bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid cron expression 'bad'")
        stored = spb.Schedule()
        stored.CopyFrom(request.schedule)
        stored.next_fire_at.CopyFrom(ts(T0))
        self.schedules[stored.name] = stored
        return spb.CreateScheduleResponse(schedule=stored)

    async def GetSchedule(
        self, request: spb.GetScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.GetScheduleResponse:
        self.requests.append(request)
        return spb.GetScheduleResponse(schedule=await self._get(request.name, context))

    async def ListSchedules(
        self, request: spb.ListSchedulesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.ListSchedulesResponse:
        self.requests.append(request)
        found = [
            s
            for s in sorted(self.schedules.values(), key=lambda s: s.name)
            if (not request.HasField("enabled") or s.enabled == request.enabled)
            and request.workflow_name in ("", s.workflow_name)
        ]
        return spb.ListSchedulesResponse(schedules=found, next_page_token="more")

    async def UpdateSchedule(
        self, request: spb.UpdateScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.UpdateScheduleResponse:
        self.requests.append(request)
        stored = await self._get(request.schedule.name, context)
        for field in request.update_mask:
            setattr(stored, field, getattr(request.schedule, field))
        return spb.UpdateScheduleResponse(schedule=stored)

    async def EnableSchedule(
        self, request: spb.EnableScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.EnableScheduleResponse:
        self.requests.append(request)
        stored = await self._get(request.name, context)
        stored.enabled = True
        return spb.EnableScheduleResponse(schedule=stored)

    async def DisableSchedule(
        self, request: spb.DisableScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.DisableScheduleResponse:
        self.requests.append(request)
        stored = await self._get(request.name, context)
        stored.enabled = False
        return spb.DisableScheduleResponse(schedule=stored)

    async def DeleteSchedule(
        self, request: spb.DeleteScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.DeleteScheduleResponse:
        self.requests.append(request)
        await self._get(request.name, context)
        del self.schedules[request.name]
        return spb.DeleteScheduleResponse()

    async def TriggerSchedule(
        self, request: spb.TriggerScheduleRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> spb.TriggerScheduleResponse:
        self.requests.append(request)
        await self._get(request.name, context)
        return spb.TriggerScheduleResponse(execution_id=f"ex-{request.name}")


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[FakeScheduleService, FakeWorkflowService, str]]:
    """Both fake services on one server (as the orchestrator serves them), and its address."""
    schedules = FakeScheduleService()
    workflows = FakeWorkflowService()
    async with fake_server(
        (spb_grpc.add_ScheduleServiceServicer_to_server, schedules),
        (pb_grpc.add_WorkflowServiceServicer_to_server, workflows),
    ) as address:
        yield schedules, workflows, address


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeScheduleService, FakeWorkflowService, str]]:
    async with serving() as served:
        yield served


Fake = tuple[FakeScheduleService, FakeWorkflowService, str]


async def test_create_schedule_sends_every_field(fake: Fake) -> None:
    service, _, address = fake
    async with Client(address) as client:
        created = await client.create_schedule(
            "nightly",
            workflow("report"),
            "0 2 * * *",
            timezone="Europe/Paris",
            input={"at": T0},
            queue="reports",
            priority=5,
            enabled=False,
            catch_up="all",
            catch_up_limit=3,
            overlap=Overlap.SKIP,
            max_failures=2,
        )
        minimal = await client.create_schedule("hourly", "report", "@hourly")
    assert service.requests[0] == spb.CreateScheduleRequest(
        schedule=spb.Schedule(
            name="nightly",
            workflow_name="report",
            cron="0 2 * * *",
            timezone="Europe/Paris",
            input_json='{"at":"2026-03-08T07:30:00+00:00"}',
            queue="reports",
            priority=5,
            enabled=False,
            catch_up=common_pb2.CATCH_UP_ALL,
            catch_up_limit=3,
            overlap=common_pb2.OVERLAP_SKIP,
            max_failures=2,
        )
    )
    assert service.requests[1] == spb.CreateScheduleRequest(
        schedule=spb.Schedule(
            name="hourly",
            workflow_name="report",
            cron="@hourly",
            input_json="null",
            enabled=True,
            catch_up=common_pb2.CATCH_UP_ONCE,
            overlap=common_pb2.OVERLAP_ALLOW,
        )
    )
    assert isinstance(created, Schedule)
    assert (created.name, created.input, created.catch_up, created.overlap) == (
        "nightly",
        {"at": "2026-03-08T07:30:00+00:00"},
        CatchUp.ALL,
        Overlap.SKIP,
    )
    assert created.next_fire_at == T0
    assert (minimal.enabled, minimal.queue, minimal.timezone) == (True, "", "")


async def test_get_list_update_enable_disable_delete(fake: Fake) -> None:
    service, _, address = fake
    async with Client(address) as client:
        await client.create_schedule("a", "report", "@hourly")
        await client.create_schedule("b", "other", "@daily", enabled=False)
        assert (await client.get_schedule("a")).cron == "@hourly"
        page = await client.list_schedules()
        assert [s.name for s in page.schedules] == ["a", "b"]
        assert page.next_page_token == "more"
        enabled = await client.list_schedules(enabled=True, page_size=5, page_token="p")
        assert [s.name for s in enabled.schedules] == ["a"]
        disabled = await client.list_schedules(enabled=False, workflow=workflow("other"))
        assert [s.name for s in disabled.schedules] == ["b"]
        updated = await client.update_schedule("a", cron="0 * * * *", input=[1], queue=None)
        assert (updated.cron, updated.input, updated.queue) == ("0 * * * *", [1], "")
        assert (await client.enable_schedule("b")).enabled is True
        assert (await client.disable_schedule("a")).enabled is False
        await client.delete_schedule("b")
        assert [s.name for s in (await client.list_schedules()).schedules] == ["a"]
    lists = [r for r in service.requests if isinstance(r, spb.ListSchedulesRequest)]
    assert not lists[0].HasField("enabled")
    assert lists[1] == spb.ListSchedulesRequest(enabled=True, page_size=5, page_token="p")
    assert lists[2] == spb.ListSchedulesRequest(enabled=False, workflow_name="other")
    [update] = [r for r in service.requests if isinstance(r, spb.UpdateScheduleRequest)]
    assert list(update.update_mask) == ["cron", "input_json", "queue"]


async def test_trigger_schedule_input(fake: Fake) -> None:
    service, _, address = fake
    async with Client(address) as client:
        await client.create_schedule("nightly", "report", "@daily", input={"n": 1})
        assert await client.trigger_schedule("nightly") == "ex-nightly"
        await client.trigger_schedule("nightly", None)
        await client.trigger_schedule("nightly", {"n": 2})
        await client.trigger_schedule("nightly", input=UNSET)
    triggers = [r for r in service.requests if isinstance(r, spb.TriggerScheduleRequest)]
    assert [t.input_json for t in triggers] == ["", "null", '{"n":2}', ""]


async def test_list_executions_of_a_schedule(fake: Fake) -> None:
    _, workflows, address = fake
    async with Client(address) as client:
        await client.list_executions(schedule="nightly")
    sent = workflows.requests[0]
    assert isinstance(sent, pb.ListExecutionsRequest)
    assert sent.schedule_name == "nightly"


async def test_schedule_errors_are_typed(fake: Fake) -> None:
    _, _, address = fake
    async with Client(address) as client:
        await client.create_schedule("taken", "report", "@daily")
        with pytest.raises(AlreadyExistsError, match="schedule 'taken' already exists"):
            await client.create_schedule("taken", "report", "@daily")
        with pytest.raises(InvalidArgumentError, match="invalid cron expression 'bad'"):
            await client.create_schedule("new", "report", "bad")
        for call in (
            client.get_schedule("nope"),
            client.update_schedule("nope", enabled=True),
            client.enable_schedule("nope"),
            client.disable_schedule("nope"),
            client.delete_schedule("nope"),
            client.trigger_schedule("nope"),
        ):
            with pytest.raises(NotFoundError, match="schedule 'nope' does not exist"):
                await call
        with pytest.raises(ValueError, match="unknown catch_up 'never'"):
            await client.create_schedule("new", "report", "@daily", catch_up="never")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            await client.update_schedule("taken", title="other")  # type: ignore[call-arg]


async def test_sync_client_schedules(fake: Fake) -> None:
    service, workflows, address = fake

    def calls() -> list[Any]:
        with SyncClient(address) as client:
            created = client.create_schedule("nightly", "report", "@daily", timezone="UTC")
            return [
                created,
                client.get_schedule("nightly"),
                client.list_schedules(workflow="report"),
                client.update_schedule("nightly", priority=3, overlap="cancel_previous"),
                client.disable_schedule("nightly"),
                client.enable_schedule("nightly"),
                client.trigger_schedule("nightly", {"n": 1}),
                client.trigger_schedule("nightly"),
                client.list_executions(schedule="nightly"),
            ]

    def delete() -> None:
        with SyncClient(address) as client:
            client.delete_schedule("nightly")

    results = await asyncio.to_thread(calls)
    created, got, page, updated, disabled, enabled, ex1, ex2, _ = results
    assert created == got
    assert [s.name for s in page.schedules] == ["nightly"]
    assert (updated.priority, updated.overlap) == (3, Overlap.CANCEL_PREVIOUS)
    assert (disabled.enabled, enabled.enabled) == (False, True)
    assert (ex1, ex2) == ("ex-nightly", "ex-nightly")
    await asyncio.to_thread(delete)
    assert service.schedules == {}
    triggers = [r for r in service.requests if isinstance(r, spb.TriggerScheduleRequest)]
    assert [t.input_json for t in triggers] == ['{"n":1}', ""]
    [listed] = workflows.requests
    assert isinstance(listed, pb.ListExecutionsRequest)
    assert listed.schedule_name == "nightly"

    def missing() -> None:
        with SyncClient(address) as client:
            client.get_schedule("nope")

    with pytest.raises(NotFoundError, match="schedule 'nope' does not exist"):
        await asyncio.to_thread(missing)
