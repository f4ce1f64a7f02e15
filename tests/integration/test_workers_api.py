"""ListWorkers: registered workers, their queues and versions, last heartbeat, leases held."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from durable import RetryPolicy, Workflow
from durable._definition import to_definition
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.clock import ManualClock
from durable_server.engine.registry import FORGET_WORKERS_AFTER
from tests.helpers.raw import RawClient, snapshot

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


letters = Workflow("letters")


@letters.step(retry=RetryPolicy(max_attempts=2, initial_delay=timedelta(0), jitter=0.0))
def post(data: object) -> object:
    return data


letters_v2 = Workflow("letters")


@letters_v2.step
def post_twice(data: object) -> object:
    return data


async def _register(
    raw: RawClient, *workflows: Workflow, mode: int = wpb.REGISTER_MODE_UNSPECIFIED
) -> list[str]:
    reply = await raw.workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(
            worker_id=raw.worker_id,
            workflows=[to_definition(w) for w in workflows],
            queues=["default", "mail"],
            mode=mode,  # type: ignore[arg-type]
        )
    )
    return [w.version for w in reply.workflows]


async def _versions(raw: RawClient) -> list[str]:
    reply = await raw.flows.ListWorkers(pb.ListWorkersRequest())
    [worker] = [w for w in reply.workers if w.worker_id == raw.worker_id]
    return list(worker.versions)


async def test_a_task_carries_its_step_runs_idempotency_key(channel: grpc.aio.Channel) -> None:
    raw = RawClient(channel)
    await raw.register(letters)
    execution_id = await raw.start("letters", "{}")
    [task] = await raw.poll()
    assert task.idempotency_key == f"{execution_id}:1:post"
    await raw.fail(task)  # a retry is the same step run: the same key
    [again] = await raw.poll()
    assert (again.attempt, again.idempotency_key) == (2, task.idempotency_key)


async def test_register_mode_add_keeps_the_workers_other_workflows(
    channel: grpc.aio.Channel,
) -> None:
    raw = RawClient(channel)
    [mail_version] = await _register(raw, mail, mode=wpb.REGISTER_MODE_ADD)
    [letters_version] = await _register(raw, letters, mode=wpb.REGISTER_MODE_ADD)
    assert await _versions(raw) == [mail_version, letters_version]
    await raw.start("mail", "{}")
    await raw.start("letters", "{}")
    tasks = await raw.poll(queues=["default", "mail"])
    assert sorted(t.workflow_name for t in tasks) == ["letters", "mail"]

    # A new version of a workflow already in the set takes the old one's place.
    [v2] = await _register(raw, letters_v2, mode=wpb.REGISTER_MODE_ADD)
    assert v2 != letters_version
    assert await _versions(raw) == [mail_version, v2]


@pytest.mark.parametrize("mode", [wpb.REGISTER_MODE_REPLACE, wpb.REGISTER_MODE_UNSPECIFIED])
async def test_register_mode_replace_drops_the_workflows_left_out(
    channel: grpc.aio.Channel, mode: int
) -> None:
    raw = RawClient(channel)
    await _register(raw, mail, letters, mode=mode)
    [letters_v2_version] = await _register(raw, letters_v2, mode=mode)
    assert await _versions(raw) == [letters_v2_version]
    await raw.start("mail", "{}")
    assert await raw.poll(queues=["default", "mail"]) == []
    await raw.start("letters", "{}")
    [task] = await raw.poll(queues=["default", "mail"])
    assert task.workflow_name == "letters"


async def test_an_unknown_register_mode_is_refused(
    channel: grpc.aio.Channel, database_url: str
) -> None:
    raw = RawClient(channel)
    before = await snapshot(database_url)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _register(raw, mail, mode=7)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        "mode 7 is not one of REGISTER_MODE_UNSPECIFIED, REGISTER_MODE_REPLACE, REGISTER_MODE_ADD"
    )
    assert await snapshot(database_url) == before
