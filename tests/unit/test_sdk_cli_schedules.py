"""``durable schedule ...`` and ``durable list --schedule``, against the fake services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from durable._cli import format_schedules, main
from durable._converters import schedule_from_proto
from durable._models import SchedulePage
from durable.v1 import common_pb2
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import workflow_service_pb2 as pb
from tests.unit.test_sdk_schedules import T0, Fake, serving, ts


@pytest.fixture
async def served() -> AsyncIterator[Fake]:
    async with serving() as fake:
        yield fake


async def run(address: str, *argv: str) -> int:
    # The CLI blocks, so it runs in a thread while the fake server answers in this loop.
    return await asyncio.to_thread(main, ["--address", address, *argv])


async def test_create_with_defaults_and_options(
    served: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    service, _, address = served
    assert await run(address, "schedule", "create", "hourly", "report", "@hourly") == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["name"], printed["catch_up"], printed["overlap"]) == ("hourly", "once", "allow")
    assert printed["next_fire_at"] == "2026-03-08T07:30:00+00:00"
    code = await run(
        address,
        "schedule",
        "create",
        "nightly",
        "report",
        "0 2 * * *",
        "--tz",
        "Europe/Paris",
        "--input",
        '{"full": true}',
        "--queue",
        "reports",
        "--priority",
        "3",
        "--disabled",
        "--catch-up",
        "all",
        "--catch-up-limit",
        "4",
        "--overlap",
        "cancel_previous",
        "--max-failures",
        "2",
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["input"] == {"full": True}
    assert service.requests == [
        spb.CreateScheduleRequest(
            schedule=spb.Schedule(
                name="hourly",
                workflow_name="report",
                cron="@hourly",
                input_json="null",
                enabled=True,
                catch_up=common_pb2.CATCH_UP_ONCE,
                overlap=common_pb2.OVERLAP_ALLOW,
            )
        ),
        spb.CreateScheduleRequest(
            schedule=spb.Schedule(
                name="nightly",
                workflow_name="report",
                cron="0 2 * * *",
                timezone="Europe/Paris",
                input_json='{"full":true}',
                queue="reports",
                priority=3,
                enabled=False,
                catch_up=common_pb2.CATCH_UP_ALL,
                catch_up_limit=4,
                overlap=common_pb2.OVERLAP_CANCEL_PREVIOUS,
                max_failures=2,
            )
        ),
    ]


async def test_get_list_enable_disable_delete(
    served: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    service, _, address = served
    await run(address, "schedule", "create", "a", "report", "@hourly")
    await run(address, "schedule", "create", "b", "other", "@daily", "--tz", "Asia/Tokyo")
    capsys.readouterr()
    assert await run(address, "schedule", "get", "a") == 0
    assert json.loads(capsys.readouterr().out)["cron"] == "@hourly"
    assert await run(address, "schedule", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "WORKFLOW",
        "CRON",
        "TIMEZONE",
        "ENABLED",
        "NEXT",
        "(UTC)",
        "LAST",
        "(UTC)",
    ]
    assert lines[1].split() == [
        "a",
        "report",
        "@hourly",
        "UTC",
        "yes",
        "2026-03-08",
        "07:30:00",
        "-",
    ]
    assert lines[2].split()[:5] == ["b", "other", "@daily", "Asia/Tokyo", "yes"]
    assert lines[3:] == ["2 schedule(s)", "next page: --page-token more"]
    assert await run(address, "schedule", "disable", "b") == 0
    assert json.loads(capsys.readouterr().out)["enabled"] is False
    assert await run(address, "schedule", "list", "--disabled", "--json", "--page-size", "5") == 0
    page = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in page["schedules"]] == ["b"]
    assert await run(address, "schedule", "enable", "b") == 0
    assert json.loads(capsys.readouterr().out)["enabled"] is True
    assert await run(address, "schedule", "list", "--enabled", "--workflow", "other") == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == "b"
    assert await run(address, "schedule", "delete", "a") == 0
    assert capsys.readouterr().out == ""
    assert sorted(service.schedules) == ["b"]
    lists = [r for r in service.requests if isinstance(r, spb.ListSchedulesRequest)]
    assert not lists[0].HasField("enabled")
    assert lists[1] == spb.ListSchedulesRequest(enabled=False, page_size=5)
    assert lists[2] == spb.ListSchedulesRequest(enabled=True, workflow_name="other", page_size=50)


async def test_update_changes_only_the_given_options(
    served: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    service, _, address = served
    await run(address, "schedule", "create", "a", "report", "@hourly", "--queue", "q")
    capsys.readouterr()
    code = await run(
        address, "schedule", "update", "a", "--cron", "*/5 * * * *", "--input", "[1]", "--queue", ""
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["cron"], printed["input"], printed["queue"]) == ("*/5 * * * *", [1], "")
    [update] = [r for r in service.requests if isinstance(r, spb.UpdateScheduleRequest)]
    assert list(update.update_mask) == ["cron", "input_json", "queue"]
    code = await run(address, "schedule", "update", "a", "--tz", "UTC", "--overlap", "skip")
    assert code == 0
    assert json.loads(capsys.readouterr().out)["overlap"] == "skip"
    assert await run(address, "schedule", "update", "a") == 2
    assert "nothing to update" in capsys.readouterr().err


async def test_trigger_prints_the_execution_id(
    served: Fake, capsys: pytest.CaptureFixture[str]
) -> None:
    service, _, address = served
    await run(address, "schedule", "create", "nightly", "report", "@daily")
    capsys.readouterr()
    assert await run(address, "schedule", "trigger", "nightly") == 0
    assert await run(address, "schedule", "trigger", "nightly", "--input", "null") == 0
    assert capsys.readouterr().out == "ex-nightly\nex-nightly\n"
    triggers = [r for r in service.requests if isinstance(r, spb.TriggerScheduleRequest)]
    assert [t.input_json for t in triggers] == ["", "null"]


async def test_list_executions_of_a_schedule(served: Fake) -> None:
    _, workflows, address = served
    assert await run(address, "list", "--schedule", "nightly") == 0
    [sent] = workflows.requests
    assert isinstance(sent, pb.ListExecutionsRequest)
    assert sent.schedule_name == "nightly"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["schedule", "get", "nope"], "error: NOT_FOUND: schedule 'nope' does not exist\n"),
        (["schedule", "trigger", "nope"], "error: NOT_FOUND: schedule 'nope' does not exist\n"),
        (
            ["schedule", "create", "x", "report", "bad"],
            "error: INVALID_ARGUMENT: invalid cron expression 'bad'\n",
        ),
    ],
)
async def test_schedule_errors_exit_1(
    served: Fake, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    _, _, address = served
    assert await run(address, *argv) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", expected)


def test_usage_errors() -> None:
    with pytest.raises(SystemExit):
        main(["schedule"])
    with pytest.raises(SystemExit):
        main(["schedule", "create", "x", "report", "@daily", "--catch-up", "sometimes"])
    with pytest.raises(SystemExit):
        main(["schedule", "list", "--enabled", "--disabled"])


def test_format_schedules_shows_disabled_ones() -> None:
    page = SchedulePage(
        schedules=(
            schedule_from_proto(
                spb.Schedule(
                    name="n", workflow_name="w", cron="@daily", enabled=False, last_fire_at=ts(T0)
                )
            ),
        ),
        next_page_token="",
    )
    lines = format_schedules(page).splitlines()
    assert lines[1].split() == ["n", "w", "@daily", "UTC", "no", "-", "2026-03-08", "07:30:00"]
    assert lines[2:] == ["1 schedule(s)"]
