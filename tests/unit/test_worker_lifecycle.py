"""A whole Worker in-process against the fake WorkerService: register, poll, run, drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from durable import InvalidArgumentError, Workflow
from durable._definition import definition_hash, to_definition
from durable.v1 import worker_service_pb2 as pb
from durable_worker import Worker
from tests.unit.test_worker_reporter import Abort, FakeWorkerService, serving, until

orders = Workflow("orders")
mails = Workflow("mails", queue="mail")
gate = asyncio.Event()  # replaced per test: an Event belongs to one event loop


@orders.step
def double(data: dict[str, int]) -> dict[str, int]:
    return {"n": data["n"] * 2}


@orders.step
async def wait_for_gate(data: Any) -> str:
    await gate.wait()
    return "through"


@mails.step
async def send(data: Any) -> Any:
    return data


def task(task_id: int, step: str = "double", data: str = '{"n": 1}', **fields: Any) -> pb.Task:
    workflow = mails if step == "send" else orders
    msg = pb.Task(
        task_id=task_id,
        lease_token=f"tok-{task_id}",
        execution_id=f"ex-{task_id}",
        workflow_name=workflow.name,
        workflow_version=definition_hash(to_definition(workflow)),
        step_name=step,
        sequence=1,
        attempt=1,
        input_json=data,
    )
    if "heartbeat" in fields:
        msg.heartbeat_interval.FromTimedelta(timedelta(seconds=fields["heartbeat"]))
    return msg


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeWorkerService, str]]:
    global gate
    gate = asyncio.Event()
    async with serving() as served:
        yield served


def make_worker(address: str, **kwargs: Any) -> Worker:
    kwargs.setdefault("worker_id", "w-test")
    kwargs.setdefault("poll_wait", timedelta(seconds=5))
    return Worker(address, [orders, mails], **kwargs)


async def test_an_in_process_worker_prints_nothing_unless_asked(
    fake: tuple[FakeWorkerService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = fake
    async with make_worker(address) as worker:
        await worker.wait_ready()
    assert capsys.readouterr().out == ""


async def test_registers_announces_and_completes_tasks(
    fake: tuple[FakeWorkerService, str], capsys: pytest.CaptureFixture[str]
) -> None:
    service, address = fake
    async with make_worker(address, concurrency=3, announce=True) as worker:
        await worker.wait_ready()
        assert capsys.readouterr().out == (
            "durable-worker ready worker_id=w-test queues=default,mail workflows=orders,mails\n"
        )
        for task_id in (1, 2, 3):
            service.tasks.put_nowait(task(task_id, data=f'{{"n": {task_id}}}'))
        service.tasks.put_nowait(task(4, "send", '"hi"'))
        await until(lambda: sorted(service.completed_ids()) == [1, 2, 3, 4])
    [register] = service.calls("RegisterWorkflows")
    assert register.worker_id == "w-test"
    assert [d.name for d in register.workflows] == ["orders", "mails"]
    assert list(register.queues) == ["default", "mail"]
    assert worker.versions == {w.name: definition_hash(to_definition(w)) for w in (orders, mails)}
    poll = service.calls("PollTasks")[0]
    assert (poll.worker_id, list(poll.queues), poll.max_tasks) == ("w-test", ["default", "mail"], 3)
    assert poll.wait_timeout.ToTimedelta() == timedelta(seconds=5)
    results = {
        c.lease.task_id: c.result_json
        for r in service.calls("CompleteTasks")
        for c in r.completions
    }
    assert results == {1: '{"n":2}', 2: '{"n":4}', 3: '{"n":6}', 4: '"hi"'}


async def test_drain_lets_running_steps_finish(fake: tuple[FakeWorkerService, str]) -> None:
    service, address = fake
    worker = make_worker(address)
    await worker.start()
    service.tasks.put_nowait(task(1, "wait_for_gate"))
    await until(lambda: worker.running == 1)
    draining = asyncio.ensure_future(worker.drain())
    await until(lambda: len(service.calls("PollTasks")) >= 1)
    gate.set()
    await asyncio.wait_for(draining, 10)
    assert service.completed_ids() == [1]
    assert service.released_ids() == []


async def test_stop_gives_running_steps_back(fake: tuple[FakeWorkerService, str]) -> None:
    service, address = fake
    worker = make_worker(address)
    await worker.start()
    service.tasks.put_nowait(task(1, "wait_for_gate"))
    await until(lambda: worker.running == 1)
    await asyncio.wait_for(worker.stop(), 10)
    assert service.released_ids() == [1]
    assert service.completed_ids() == []
    assert worker.running == 0


async def test_a_second_drain_request_gives_running_steps_back(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    worker = make_worker(address, drain_timeout=60)
    run = asyncio.ensure_future(worker.run())
    await worker.wait_ready()
    service.tasks.put_nowait(task(1, "wait_for_gate"))
    await until(lambda: worker.running == 1)
    worker.request_drain()
    worker.request_drain()
    await asyncio.wait_for(run, 10)
    assert service.released_ids() == [1]


async def test_a_lost_lease_stops_the_step_and_reports_nothing(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.lost = {1}
    async with make_worker(address) as worker:
        service.tasks.put_nowait(task(1, "wait_for_gate", heartbeat=0.05))
        await until(lambda: len(service.calls("Heartbeat")) >= 1)
        await until(lambda: worker.running == 0)
    heartbeat = service.calls("Heartbeat")[0]
    assert [(x.task_id, x.lease_token) for x in heartbeat.leases] == [(1, "tok-1")]
    assert service.completed_ids() == service.failed_ids() == service.released_ids() == []


async def test_an_unknown_worker_registers_again(fake: tuple[FakeWorkerService, str]) -> None:
    service, address = fake
    service.script(
        "PollTasks",
        Abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "worker 'w-test' is unknown: call RegisterWorkflows first",
        ),
    )
    async with make_worker(address):
        await until(lambda: len(service.calls("RegisterWorkflows")) == 2)
        service.tasks.put_nowait(task(1))
        await until(lambda: service.completed_ids() == [1])


async def test_the_worker_unknown_trailer_makes_the_worker_register_again(
    fake: tuple[FakeWorkerService, str],
) -> None:
    # The trailer is the signal: the words of the message are for people, in any wording.
    service, address = fake
    service.script(
        "PollTasks",
        Abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "no such registration",
            trailers=(("durable-error", "worker-unknown"),),
        ),
    )
    async with make_worker(address):
        await until(lambda: len(service.calls("RegisterWorkflows")) == 2)
        service.tasks.put_nowait(task(1))
        await until(lambda: service.completed_ids() == [1])


async def test_another_refusal_cause_is_not_an_unknown_worker(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script(
        "PollTasks",
        Abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            "an unknown cause",
            trailers=(("durable-error", "something-else"),),
        ),
    )
    async with make_worker(address):
        await until(lambda: len(service.calls("PollTasks")) >= 2)
    assert len(service.calls("RegisterWorkflows")) == 1


async def test_polls_survive_an_unavailable_orchestrator(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script("PollTasks", Abort(grpc.StatusCode.UNAVAILABLE), Abort(grpc.StatusCode.INTERNAL))
    service.script("RegisterWorkflows", Abort(grpc.StatusCode.UNAVAILABLE))
    async with make_worker(address):
        service.tasks.put_nowait(task(1))
        await until(lambda: service.completed_ids() == [1])
    assert len(service.calls("RegisterWorkflows")) == 2
    assert len(service.calls("PollTasks")) >= 3


async def test_a_refused_registration_fails_start(fake: tuple[FakeWorkerService, str]) -> None:
    service, address = fake
    service.script("RegisterWorkflows", Abort(grpc.StatusCode.INVALID_ARGUMENT, "bad definition"))
    worker = make_worker(address)
    with pytest.raises(InvalidArgumentError, match="bad definition"):
        await worker.start()
    with pytest.raises(RuntimeError, match="stopped before it was ready"):
        await worker.wait_ready()


async def test_drain_before_the_orchestrator_answers_ends_start(
    fake: tuple[FakeWorkerService, str],
) -> None:
    service, address = fake
    service.script("RegisterWorkflows", *[Abort(grpc.StatusCode.UNAVAILABLE)] * 100)
    worker = make_worker(address)
    run = asyncio.ensure_future(worker.run())
    await until(lambda: len(service.calls("RegisterWorkflows")) >= 2)
    await asyncio.wait_for(worker.drain(), 10)
    await asyncio.wait_for(run, 10)
    assert service.calls("PollTasks") == []


def test_bad_arguments_are_refused_early() -> None:
    with pytest.raises(ValueError, match="two different workflows are named 'orders'"):
        Worker("x:1", [orders, Workflow("orders")])
    with pytest.raises(ValueError, match="has no steps"):
        Worker("x:1", [Workflow("empty")])
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        Worker("x:1", [orders], concurrency=0)
    assert Worker("x:1", [orders, orders]).workflows == [orders]
