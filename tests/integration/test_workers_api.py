"""ListWorkers: registered workers, their queues and versions, last heartbeat, leases held."""

from __future__ import annotations

from datetime import timedelta

import grpc

from durable import Workflow
from durable._definition import to_definition
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
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
