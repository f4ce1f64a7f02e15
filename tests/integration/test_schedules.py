"""Cron schedules on the manual clock: slots, DST, replicas, catch-up, overlap, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest
from grpc import StatusCode as Code

from durable import Workflow
from durable._definition import to_definition
from durable.v1 import common_pb2 as S
from durable.v1 import definition_pb2
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import schedule_service_pb2_grpc as sgrpc
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

report = Workflow("report")


@report.step
def build(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(report)
    return client


def _stub(raw: RawClient) -> sgrpc.ScheduleServiceStub:
    return raw.schedules


async def _create(raw: RawClient, name: str, cron: str, **fields: object) -> spb.Schedule:
    schedule = spb.Schedule(name=name, workflow_name="report", cron=cron, enabled=True, **fields)
    reply = await _stub(raw).CreateSchedule(spb.CreateScheduleRequest(schedule=schedule))
    return reply.schedule


async def _runs(raw: RawClient, name: str) -> list[pb.Execution]:
    runs: list[pb.Execution] = []
    token = ""
    while True:
        page = await raw.flows.ListExecutions(
            pb.ListExecutionsRequest(schedule_name=name, page_size=1000, page_token=token)
        )
        runs += page.executions
        token = page.next_page_token
        if not token:
            return sorted(runs, key=lambda e: e.schedule_slot.ToDatetime())


def _slots(runs: list[pb.Execution]) -> list[datetime]:
    return [e.schedule_slot.ToDatetime(tzinfo=UTC) for e in runs]


async def _settle(*orchestrators: Orchestrator) -> None:
    """Fire what is due now, until no schedule is due (the loops may be firing too)."""

    async def settled() -> bool:
        await asyncio.gather(*(o.scheduler.fire_due() for o in orchestrators))
        due = await orchestrators[0].scheduler.next_due()
        return due is None or due > orchestrators[0].clock.now()

    await wait_until(settled, interval=0.005)


async def _walk(orch: Orchestrator, clock: ManualClock, until: datetime, step: timedelta) -> None:
    """Move the clock to ``until`` in steps, firing due slots at each."""
    while clock.now() < until:
        clock.advance(step)
        await _settle(orch)


# -- slots and time zones -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "cron", "start", "expected_utc"),
    [
        # New York springs forward on 2030-03-10: 02:30 does not exist, it fires at 03:30 EDT.
        (
            "America/New_York",
            "30 2 * * *",
            datetime(2030, 3, 7, tzinfo=UTC),
            ["03-07 07:30", "03-08 07:30", "03-09 07:30", "03-10 07:30", "03-11 06:30",
             "03-12 06:30", "03-13 06:30"],
        ),
        # ... and falls back on 2030-11-03: 01:30 happens twice, it fires once (the first).
        (
            "America/New_York",
            "30 1 * * *",
            datetime(2030, 10, 31, tzinfo=UTC),
            ["10-31 05:30", "11-01 05:30", "11-02 05:30", "11-03 05:30", "11-04 06:30",
             "11-05 06:30", "11-06 06:30"],
        ),
        # Berlin springs forward on 2030-03-31 (02:00 -> 03:00) ...
        (
            "Europe/Berlin",
            "30 2 * * *",
            datetime(2030, 3, 28, tzinfo=UTC),
            ["03-28 01:30", "03-29 01:30", "03-30 01:30", "03-31 01:30", "04-01 00:30",
             "04-02 00:30", "04-03 00:30"],
        ),
        # ... and falls back on 2030-10-27 (03:00 -> 02:00).
        (
            "Europe/Berlin",
            "30 2 * * *",
            datetime(2030, 10, 24, tzinfo=UTC),
            ["10-24 00:30", "10-25 00:30", "10-26 00:30", "10-27 00:30", "10-28 01:30",
             "10-29 01:30", "10-30 01:30"],
        ),
    ],
    ids=["new-york-spring", "new-york-fall", "berlin-spring", "berlin-fall"],
)  # fmt: skip
async def test_a_daily_schedule_fires_once_a_day_across_a_dst_change(
    raw: RawClient,
    orch: Orchestrator,
    manual_clock: ManualClock,
    zone: str,
    cron: str,
    start: datetime,
    expected_utc: list[str],
) -> None:
    manual_clock.set(start)
    created = await _create(raw, "daily", cron, timezone=zone)
    assert created.next_fire_at.ToDatetime(tzinfo=UTC).strftime("%m-%d %H:%M") == expected_utc[0]
    await _walk(orch, manual_clock, start + timedelta(days=7), timedelta(minutes=30))
    fired = [slot.strftime("%m-%d %H:%M") for slot in _slots(await _runs(raw, "daily"))]
    assert fired == expected_utc


async def test_a_week_of_a_weekday_schedule_in_two_zones(
    raw: RawClient, orch: Orchestrator, manual_clock: ManualClock
) -> None:
    # A Sunday; New York springs forward the Sunday after.
    manual_clock.set(datetime(2030, 3, 3, 12, tzinfo=UTC))
    await _create(raw, "ny", "0 9 * * MON-FRI", timezone="America/New_York")
    await _create(raw, "tokyo", "0 9 * * MON-FRI", timezone="Asia/Tokyo")
    await _walk(orch, manual_clock, datetime(2030, 3, 16, tzinfo=UTC), timedelta(hours=1))
    ny = [s.strftime("%a %d %H:%M") for s in _slots(await _runs(raw, "ny"))]
    tokyo = [s.strftime("%a %d %H:%M") for s in _slots(await _runs(raw, "tokyo"))]
    assert ny == [
        "Mon 04 14:00", "Tue 05 14:00", "Wed 06 14:00", "Thu 07 14:00", "Fri 08 14:00",
        "Mon 11 13:00", "Tue 12 13:00", "Wed 13 13:00", "Thu 14 13:00", "Fri 15 13:00",
    ]  # fmt: skip
    assert tokyo == [
        "Mon 04 00:00", "Tue 05 00:00", "Wed 06 00:00", "Thu 07 00:00", "Fri 08 00:00",
        "Mon 11 00:00", "Tue 12 00:00", "Wed 13 00:00", "Thu 14 00:00", "Fri 15 00:00",
    ]  # fmt: skip


async def test_two_orchestrators_fire_each_minute_of_a_day_exactly_once(
    database_url: str, manual_clock: ManualClock
) -> None:
    async with (
        running_orchestrator(database_url, clock=manual_clock) as one,
        running_orchestrator(database_url, clock=manual_clock) as two,
        grpc.aio.insecure_channel(one.address) as channel,
    ):
        raw = RawClient(channel)
        await raw.register(report)
        start = manual_clock.now()
        await _create(raw, "every_minute", "* * * * *")
        for _ in range(24 * 60):
            manual_clock.advance(timedelta(minutes=1))
            await _settle(one, two)
        slots = _slots(await _runs(raw, "every_minute"))
    assert len(slots) == 1440
    assert slots == [start + timedelta(minutes=m) for m in range(1, 1441)]


# -- catch-up and overlap -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        (S.CATCH_UP_ONCE, ["05:00"]),
        (S.CATCH_UP_SKIP, []),
        (S.CATCH_UP_ALL, ["03:00", "04:00", "05:00"]),
    ],
    ids=["once", "skip", "all-limited-to-3"],
)
async def test_missed_slots_follow_the_catch_up_policy(
    database_url: str, manual_clock: ManualClock, catch_up: int, expected: list[str]
) -> None:
    async with (
        running_orchestrator(database_url, clock=manual_clock) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        raw = RawClient(channel)
        await raw.register(report)
        await _create(raw, "hourly", "0 * * * *", catch_up=catch_up, catch_up_limit=3)
    # No orchestrator runs from 00:00 to 05:30: five slots are missed.
    manual_clock.advance(timedelta(hours=5, minutes=30))
    async with (
        running_orchestrator(database_url, clock=manual_clock) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        raw = RawClient(channel)
        await _settle(orch)
        fired = [s.strftime("%H:%M") for s in _slots(await _runs(raw, "hourly"))]
        got = await _stub(raw).GetSchedule(spb.GetScheduleRequest(name="hourly"))
    assert fired == expected
    assert got.schedule.next_fire_at.ToDatetime(tzinfo=UTC).strftime("%H:%M") == "06:00"


@pytest.mark.parametrize(
    ("overlap", "count", "first_status"),
    [
        (S.OVERLAP_ALLOW, 3, S.EXECUTION_STATUS_PENDING),
        (S.OVERLAP_SKIP, 1, S.EXECUTION_STATUS_PENDING),
        (S.OVERLAP_CANCEL_PREVIOUS, 3, S.EXECUTION_STATUS_CANCELLED),
    ],
    ids=["allow", "skip", "cancel-previous"],
)
async def test_a_slot_while_the_previous_run_runs_follows_the_overlap_policy(
    raw: RawClient,
    orch: Orchestrator,
    manual_clock: ManualClock,
    overlap: int,
    count: int,
    first_status: int,
) -> None:
    # No worker runs: every run stays pending, so each next slot overlaps the previous run.
    await _create(raw, "minutely", "* * * * *", overlap=overlap)
    await _walk(orch, manual_clock, manual_clock.now() + timedelta(minutes=3), timedelta(minutes=1))
    runs = await _runs(raw, "minutely")
    assert len(runs) == count
    assert runs[0].status == first_status
    assert runs[-1].status == S.EXECUTION_STATUS_PENDING


async def test_a_schedule_that_cannot_start_disables_itself_after_five_failures(
    raw: RawClient, orch: Orchestrator, manual_clock: ManualClock, database_url: str
) -> None:
    await _create(raw, "broken", "* * * * *")
    conn = await asyncpg.connect(database_url)
    try:  # the workflow it names has gone (renamed in code, say)
        await conn.execute("UPDATE durable.schedules SET workflow_name = 'gone'")
    finally:
        await conn.close()
    await _walk(orch, manual_clock, manual_clock.now() + timedelta(minutes=4), timedelta(minutes=1))
    got = (await _stub(raw).GetSchedule(spb.GetScheduleRequest(name="broken"))).schedule
    assert (got.enabled, got.consecutive_failures) == (True, 4)
    assert "workflow 'gone' is not registered" in got.last_error
    await _walk(orch, manual_clock, manual_clock.now() + timedelta(minutes=3), timedelta(minutes=1))
    got = (await _stub(raw).GetSchedule(spb.GetScheduleRequest(name="broken"))).schedule
    assert (got.enabled, got.consecutive_failures) == (False, 5)
    assert "disabled after 5 failed starts in a row" in got.disabled_reason
    assert await _runs(raw, "broken") == []


# -- the API ----------------------------------------------------------------------------------


async def test_create_get_list_update_enable_disable_trigger_delete(
    raw: RawClient, orch: Orchestrator, manual_clock: ManualClock
) -> None:
    stub = _stub(raw)
    created = await _create(raw, "nightly", "@daily", input_json='{"full": true}', priority=3)
    assert (created.cron, created.enabled, created.declared) == ("@daily", True, False)
    await _create(raw, "weekly", "@weekly")
    page = await stub.ListSchedules(spb.ListSchedulesRequest(page_size=1))
    assert [s.name for s in page.schedules] == ["nightly"]
    page = await stub.ListSchedules(spb.ListSchedulesRequest(page_token=page.next_page_token))
    assert [s.name for s in page.schedules] == ["weekly"]

    changed = await stub.UpdateSchedule(
        spb.UpdateScheduleRequest(
            schedule=spb.Schedule(name="nightly", cron="0 3 * * *", timezone="Europe/Paris"),
            update_mask=["cron", "timezone"],
        )
    )
    assert (changed.schedule.cron, changed.schedule.timezone) == ("0 3 * * *", "Europe/Paris")
    assert changed.schedule.priority == 3  # not in the mask: unchanged

    off = await stub.DisableSchedule(spb.DisableScheduleRequest(name="nightly"))
    assert off.schedule.enabled is False
    page = await stub.ListSchedules(spb.ListSchedulesRequest(enabled=False))
    assert [s.name for s in page.schedules] == ["nightly"]
    await _walk(orch, manual_clock, manual_clock.now() + timedelta(days=2), timedelta(hours=6))
    assert await _runs(raw, "nightly") == []  # disabled: nothing fired
    on = await stub.EnableSchedule(spb.EnableScheduleRequest(name="nightly"))
    assert on.schedule.enabled is True

    triggered = await stub.TriggerSchedule(
        spb.TriggerScheduleRequest(name="nightly", input_json='{"full": false}')
    )
    [run] = await _runs(raw, "nightly")
    assert run.id == triggered.execution_id
    assert json.loads(run.input_json) == {"full": False}

    await stub.DeleteSchedule(spb.DeleteScheduleRequest(name="nightly"))
    err = await _error(stub.GetSchedule(spb.GetScheduleRequest(name="nightly")))
    assert err.code() == Code.NOT_FOUND


async def _error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({"cron": "61 * * * *"}, Code.INVALID_ARGUMENT, "cron:"),
        ({"cron": "* * *"}, Code.INVALID_ARGUMENT, "cron:"),
        ({"timezone": "Mars/Olympus_Mons"}, Code.INVALID_ARGUMENT, "Mars/Olympus_Mons"),
        ({"workflow_name": "nope"}, Code.NOT_FOUND, "workflow 'nope' is not registered"),
        ({"name": "taken"}, Code.ALREADY_EXISTS, "a schedule named 'taken' exists already"),
        ({"input_json": "{bad"}, Code.INVALID_ARGUMENT, "input_json is not valid JSON"),
    ],
    ids=[
        "bad-field",
        "too-few-fields",
        "unknown-zone",
        "unknown-workflow",
        "duplicate",
        "bad-input",
    ],
)
async def test_bad_schedules_are_refused(
    raw: RawClient, fields: dict[str, str], code: grpc.StatusCode, message: str
) -> None:
    await _create(raw, "taken", "@hourly")
    schedule = spb.Schedule(name="new", workflow_name="report", cron="@hourly", enabled=True)
    for key, value in fields.items():
        setattr(schedule, key, value)
    err = await _error(_stub(raw).CreateSchedule(spb.CreateScheduleRequest(schedule=schedule)))
    assert err.code() == code
    assert message in (err.details() or "")
    page = await _stub(raw).ListSchedules(spb.ListSchedulesRequest())
    assert [s.name for s in page.schedules] == ["taken"]


async def test_schedules_declared_in_code_follow_the_code(raw: RawClient) -> None:
    def with_schedules(*crons: str) -> definition_pb2.WorkflowDefinition:
        definition = to_definition(report)
        del definition.schedules[:]
        for i, cron in enumerate(crons):
            definition.schedules.append(
                definition_pb2.DeclaredSchedule(name=f"report.{i}", cron=cron, enabled=True)
            )
        return definition

    async def register(definition: definition_pb2.WorkflowDefinition) -> None:
        await raw.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="w", workflows=[definition])
        )

    await register(with_schedules("@hourly", "@daily"))
    page = await _stub(raw).ListSchedules(spb.ListSchedulesRequest())
    assert [(s.name, s.cron, s.declared) for s in page.schedules] == [
        ("report.0", "@hourly", True),
        ("report.1", "@daily", True),
    ]
    await register(with_schedules("*/5 * * * *"))  # changed in code: updated, one removed
    page = await _stub(raw).ListSchedules(spb.ListSchedulesRequest())
    assert [(s.name, s.cron) for s in page.schedules] == [("report.0", "*/5 * * * *")]
    err = await _error(register(with_schedules("not a cron")))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "schedule 'report.0'" in (err.details() or "")
