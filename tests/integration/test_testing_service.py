"""TestingService over real gRPC: the clock of an orchestrator in test mode, moved by a call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from durable import Client, ExecutionStatus, StepContext, Workflow
from durable.v1 import testing_service_pb2 as pb
from durable.v1 import testing_service_pb2_grpc as pb_grpc
from durable_server.__main__ import _parser, _settings
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock, SystemClock
from durable_worker import Worker
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import snapshot
from tests.helpers.wait import wait_until

Code = grpc.StatusCode
START = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

napper = Workflow("napper")


@napper.step
def nap(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    ctx.sleep(timedelta(hours=1))
    return {**data, "rested": True}


hourly = Workflow("hourly")


@hourly.step
def tick(data: Any) -> str:
    return "tick"


def ts(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def when(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


@pytest.fixture
async def orch(database_url: str) -> AsyncIterator[Orchestrator]:
    async with running_orchestrator(database_url, clock=ManualClock(START)) as o:
        yield o


@pytest.fixture
async def testing(orch: Orchestrator) -> AsyncIterator[pb_grpc.TestingServiceStub]:
    async with grpc.aio.insecure_channel(orch.address) as channel:
        yield pb_grpc.TestingServiceStub(channel)


async def test_every_call_is_refused_on_the_real_clock(database_url: str) -> None:
    async with (
        running_orchestrator(database_url) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        assert isinstance(orch.clock, SystemClock)
        stub = pb_grpc.TestingServiceStub(channel)
        for call in (
            stub.GetTime(pb.GetTimeRequest()),
            stub.AdvanceTime(pb.AdvanceTimeRequest(by=Duration(seconds=60))),
            stub.SkipToNextTimer(pb.SkipToNextTimerRequest()),
        ):
            err = await rpc_error(call)
            assert err.code() == Code.FAILED_PRECONDITION
            assert "runs on the real clock" in (err.details() or "")
            assert "--manual-clock" in (err.details() or "")


async def test_advancing_fires_a_sleeps_timer(
    orch: Orchestrator, testing: pb_grpc.TestingServiceStub
) -> None:
    now = await testing.GetTime(pb.GetTimeRequest())
    assert when(now.now) == START
    assert not now.HasField("next_timer")
    async with Worker(orch.address, [napper], drain_timeout=0.0), Client(orch.address) as client:
        run = await client.start(napper, {"who": "ann"})

        async def sleeping() -> pb.GetTimeResponse | None:
            reply = await testing.GetTime(pb.GetTimeRequest())
            return reply if reply.HasField("next_timer") else None

        asleep = await wait_until(sleeping)
        assert when(asleep.next_timer) == START + timedelta(hours=1)

        early = await testing.AdvanceTime(pb.AdvanceTimeRequest(by=Duration(seconds=30 * 60)))
        assert when(early.now) == START + timedelta(minutes=30)
        assert when(early.next_timer) == START + timedelta(hours=1)
        assert (await client.get_execution(run)).status == ExecutionStatus.WAITING

        moved = await testing.AdvanceTime(pb.AdvanceTimeRequest(to=ts(START + timedelta(hours=2))))
        assert when(moved.now) == START + timedelta(hours=2)
        assert not moved.HasField("next_timer")  # the sleep's timer fired before the reply

        async def finished() -> bool:
            return (await client.get_execution(run)).status.is_terminal

        await wait_until(finished)
        done = await client.get_execution(run)
    assert done.status == ExecutionStatus.COMPLETED
    assert done.result == {"who": "ann", "rested": True}


async def test_skipping_to_the_next_timer_fires_a_cron_slot(
    orch: Orchestrator, testing: pb_grpc.TestingServiceStub
) -> None:
    async with Worker(orch.address, [hourly], drain_timeout=0.0), Client(orch.address) as client:
        await client.create_schedule("every-hour", hourly, "0 * * * *")
        skipped = await testing.SkipToNextTimer(pb.SkipToNextTimerRequest())
        assert skipped.skipped
        assert when(skipped.now) == START + timedelta(hours=1)
        assert when(skipped.next_timer) == START + timedelta(hours=2)
        # The slot fired before the reply: its run exists already.
        runs = await client.list_executions(schedule="every-hour")
        assert [r.schedule_slot for r in runs.executions] == [START + timedelta(hours=1)]


async def test_skipping_with_nothing_due_leaves_the_clock(
    orch: Orchestrator, testing: pb_grpc.TestingServiceStub
) -> None:
    reply = await testing.SkipToNextTimer(pb.SkipToNextTimerRequest())
    assert not reply.skipped
    assert when(reply.now) == START
    assert not reply.HasField("next_timer")
    assert orch.clock.now() == START


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (pb.AdvanceTimeRequest(), "set by (a duration) or to (a time)"),
        (pb.AdvanceTimeRequest(by=Duration(seconds=-1)), "by must not be negative"),
        (
            pb.AdvanceTimeRequest(to=ts(START - timedelta(seconds=1))),
            "is before the clock's time (2030-01-01T09:00:00+00:00)",
        ),
        (
            pb.AdvanceTimeRequest(by=Duration(seconds=200 * 366 * 86400)),
            "by is not a valid duration",
        ),
    ],
    ids=["nothing", "negative", "backwards", "too-long"],
)
async def test_bad_moves_are_refused_and_change_nothing(
    orch: Orchestrator,
    testing: pb_grpc.TestingServiceStub,
    database_url: str,
    request_: pb.AdvanceTimeRequest,
    message: str,
) -> None:
    before = await snapshot(database_url)
    err = await rpc_error(testing.AdvanceTime(request_))
    assert err.code() == Code.INVALID_ARGUMENT
    assert message in (err.details() or "")
    assert orch.clock.now() == START
    assert await snapshot(database_url) == before


def test_the_manual_clock_flag_starts_test_mode() -> None:
    args = _parser().parse_args(["serve", "--manual-clock"])
    assert _settings(args).manual_clock
    assert not _settings(_parser().parse_args(["serve"])).manual_clock
