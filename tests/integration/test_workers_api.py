"""ListWorkers: registered workers, their queues and versions, last heartbeat, leases held."""

from __future__ import annotations

from datetime import timedelta

import grpc

from durable import Workflow
from durable._definition import to_definition
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
from durable_server.engine.registry import FORGET_WORKERS_AFTER
from tests.helpers.raw import RawClient

mail = Workflow("mail", queue="mail")


@mail.step
def send(data: object) -> object:
    return data


async def test_list_workers_with_filters(
    channel: grpc.aio.Channel, manual_clock: ManualClock
) -> None:
    raw = RawClient(channel)
    await raw.workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(
            worker_id="old", workflows=[to_definition(mail)], queues=["default"]
        )
    )
    manual_clock.advance(timedelta(minutes=5))
    await raw.workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(
            worker_id="new", workflows=[to_definition(mail)], queues=["mail"]
        )
    )
    await raw.start("mail", "{}")
    [task] = await raw.poll(queues=["mail"], worker_id="new")

    listed = await raw.flows.ListWorkers(pb.ListWorkersRequest())
    assert [(w.worker_id, list(w.queues), w.leased_tasks) for w in listed.workers] == [
        ("new", ["mail"], 1),
        ("old", ["default"], 0),
    ]
    assert listed.workers[0].last_seen_at.ToDatetime() > listed.workers[1].last_seen_at.ToDatetime()
    assert list(listed.workers[0].versions) == [task.workflow_version]

    by_queue = await raw.flows.ListWorkers(pb.ListWorkersRequest(queue="default"))
    assert [w.worker_id for w in by_queue.workers] == ["old"]
    recent = await raw.flows.ListWorkers(pb.ListWorkersRequest(seen_within_seconds=60))
    assert [w.worker_id for w in recent.workers] == ["new"]


async def test_workers_unseen_for_a_week_are_forgotten_when_another_registers(
    channel: grpc.aio.Channel, manual_clock: ManualClock
) -> None:
    raw = RawClient(channel)

    async def register(worker_id: str) -> None:
        await raw.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id=worker_id, workflows=[to_definition(mail)])
        )

    async def listed() -> list[str]:
        reply = await raw.flows.ListWorkers(pb.ListWorkersRequest())
        return [w.worker_id for w in reply.workers]

    await register("gone")
    manual_clock.advance(timedelta(days=1))
    await register("quiet")
    manual_clock.advance(FORGET_WORKERS_AFTER - timedelta(days=1))  # "gone": just a week
    await register("fresh")
    assert await listed() == ["fresh", "quiet", "gone"]  # not more than a week yet
    manual_clock.advance(timedelta(seconds=1))
    await register("fresh")  # re-registering itself never forgets the caller
    assert await listed() == ["fresh", "quiet"]
    manual_clock.advance(FORGET_WORKERS_AFTER + timedelta(seconds=1))
    await register("newest")
    assert await listed() == ["newest"]
