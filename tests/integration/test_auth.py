"""Security: tokens and roles, the lease holder, and what clients and logs get to see."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

import durable
from durable import Client, Workflow
from durable._definition import to_definition
from durable.v1 import (
    common_pb2,
    operations_service_pb2,
    operations_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    testing_service_pb2,
    testing_service_pb2_grpc,
    worker_service_pb2,
    workflow_service_pb2,
)
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.__main__ import main as server_main
from durable_server.app import Orchestrator
from durable_server.auth.permissions import OPEN_SERVICES, PERMISSIONS, allowed_roles
from durable_server.auth.tokens import Role
from durable_server.clock import ManualClock
from durable_server.engine.reads import Reads
from durable_server.errors import UnavailableError
from durable_server.store import tokens as token_store
from durable_server.store.db import translate_errors
from durable_worker import Worker
from tests.helpers import tokens
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient, snapshot
from tests.helpers.wait import wait_until

Code = grpc.StatusCode
DENIED = {Code.UNAUTHENTICATED, Code.PERMISSION_DENIED}

plain = Workflow("plain")


@plain.step
def work(data: object) -> object:
    return data


on_b = Workflow("on_b", queue="b")


@on_b.step
def work_b(data: object) -> object:
    return data


bill = Workflow("bill", queue="billing")


@bill.step
def charge(data: object) -> object:
    return data


bill_moved = Workflow("bill", queue="emails")  # the same workflow, deployed to another queue


@bill_moved.step
def charge_from_emails(data: object) -> object:
    return data


@pytest.fixture
async def orch(database_url: str, manual_clock: ManualClock) -> AsyncIterator[Orchestrator]:
    """An orchestrator that requires tokens (on loopback, where it is off by default)."""
    async with running_orchestrator(
        database_url, clock=manual_clock, auth=True, auth_cache_secs=5
    ) as o:
        yield o


@pytest.fixture
def issue(database_url: str, manual_clock: ManualClock) -> Callable[..., Awaitable[str]]:
    """``await issue(role, queues=..., expires_in=...)``: a new token."""

    async def make(
        role: Role | str, *, queues: tuple[str, ...] = (), expires_in: timedelta | None = None
    ) -> str:
        now = manual_clock.now()
        return await tokens.issue(
            database_url,
            role,
            now=now,
            queues=queues,
            expires_at=now + expires_in if expires_in else None,
        )

    return make


async def code_of(call: Awaitable[object]) -> Code | None:
    """The status code a call ends with (None when it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return None


async def refusal(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


# -- the permission table ----------------------------------------------------------------


def test_every_method_of_every_service_has_exactly_one_entry() -> None:
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in (
            workflow_service_pb2,
            worker_service_pb2,
            schedule_service_pb2,
            operations_service_pb2,
            testing_service_pb2,
        )
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert set(PERMISSIONS) == methods
    assert allowed_roles("/grpc.health.v1.Health/Check") is None
    assert "grpc.reflection.v1alpha.ServerReflection" in OPEN_SERVICES
    assert "grpc.reflection.v1.ServerReflection" in OPEN_SERVICES
    assert allowed_roles("/durable.v1.WorkflowService/NoSuchMethod") == frozenset()


# -- roles -------------------------------------------------------------------------------


def _calls(ch: grpc.aio.Channel) -> dict[str, Callable[[], Awaitable[object]]]:
    """One representative call per method under test, keyed by method."""
    raw = RawClient(ch, worker_id="role-worker")
    schedules = schedule_service_pb2_grpc.ScheduleServiceStub(ch)
    ops = operations_service_pb2_grpc.OperationsServiceStub(ch)
    testing = testing_service_pb2_grpc.TestingServiceStub(ch)
    unknown = str(uuid.uuid4())
    return {
        "WorkerService/RegisterWorkflows": lambda: raw.register(plain),
        "WorkerService/PollTasks": lambda: raw.poll(),
        "WorkerService/Heartbeat": lambda: raw.workers.Heartbeat(
            wpb.HeartbeatRequest(worker_id="role-worker")
        ),
        "WorkerService/CompleteTasks": lambda: raw.workers.CompleteTasks(
            wpb.CompleteTasksRequest(worker_id="role-worker")
        ),
        "WorkflowService/StartWorkflow": lambda: raw.start("plain"),
        "WorkflowService/GetExecution": lambda: raw.get(unknown),
        "WorkflowService/WaitExecution": lambda: raw.flows.WaitExecution(
            pb.WaitExecutionRequest(execution_id=unknown)
        ),
        "WorkflowService/ListExecutions": lambda: raw.flows.ListExecutions(
            pb.ListExecutionsRequest()
        ),
        "WorkflowService/SendEvent": lambda: raw.flows.SendEvent(
            pb.SendEventRequest(execution_id=unknown, name="paid", payload_json="1")
        ),
        "WorkflowService/CancelExecution": lambda: raw.flows.CancelExecution(
            pb.CancelExecutionRequest(execution_id=unknown)
        ),
        "WorkflowService/ListWorkers": lambda: raw.flows.ListWorkers(pb.ListWorkersRequest()),
        "ScheduleService/ListSchedules": lambda: schedules.ListSchedules(
            schedule_service_pb2.ListSchedulesRequest()
        ),
        "ScheduleService/CreateSchedule": lambda: schedules.CreateSchedule(
            schedule_service_pb2.CreateScheduleRequest(
                schedule=schedule_service_pb2.Schedule(
                    name="nightly", workflow_name="plain", cron="0 2 * * *"
                )
            )
        ),
        "OperationsService/ListQueues": lambda: ops.ListQueues(
            operations_service_pb2.ListQueuesRequest()
        ),
        "OperationsService/PauseQueue": lambda: ops.PauseQueue(
            operations_service_pb2.PauseQueueRequest(queue="elsewhere")
        ),
        "TestingService/GetTime": lambda: testing.GetTime(testing_service_pb2.GetTimeRequest()),
        "TestingService/AdvanceTime": lambda: testing.AdvanceTime(
            testing_service_pb2.AdvanceTimeRequest(by=Duration(seconds=0))
        ),
    }


_ALLOWED = {
    Role.WORKER: {
        "WorkerService/RegisterWorkflows",
        "WorkerService/PollTasks",
        "WorkerService/Heartbeat",
        "WorkerService/CompleteTasks",
    },
    Role.CLIENT: {
        "WorkflowService/StartWorkflow",
        "WorkflowService/GetExecution",
        "WorkflowService/WaitExecution",
        "WorkflowService/ListExecutions",
        "WorkflowService/SendEvent",
        "WorkflowService/CancelExecution",
        "ScheduleService/ListSchedules",
    },
}
_ALLOWED[Role.ADMIN] = _ALLOWED[Role.CLIENT] | {
    "WorkflowService/ListWorkers",
    "ScheduleService/CreateSchedule",
    "OperationsService/ListQueues",
    "OperationsService/PauseQueue",
    "TestingService/GetTime",
    "TestingService/AdvanceTime",
}


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_may_call_its_methods_and_no_others(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], role: Role
) -> None:
    token = await issue(role)
    async with tokens.channel(orch.address, token) as ch:
        calls = _calls(ch)
        outcomes = {name: await code_of(call()) for name, call in calls.items()}
    # Allowed calls may still fail on their own terms (NOT_FOUND, say), never on access.
    refused = {name for name, code in outcomes.items() if code in DENIED}
    assert refused == set(calls) - _ALLOWED[role], outcomes
    assert {outcomes[name] for name in refused} <= {Code.PERMISSION_DENIED}


async def test_a_denied_call_says_which_role_may_not_call_what(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]]
) -> None:
    async with tokens.channel(orch.address, await issue(Role.WORKER)) as ch:
        err = await refusal(RawClient(ch).start("plain"))
    assert err.code() == Code.PERMISSION_DENIED
    assert err.details() == "a worker token may not call durable.v1.WorkflowService/StartWorkflow"


async def test_health_and_reflection_need_no_token(orch: Orchestrator) -> None:
    async with grpc.aio.insecure_channel(orch.address) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        err = await refusal(RawClient(ch).start("plain"))
        assert err.code() == Code.UNAUTHENTICATED


# -- worker tokens limited to queues -----------------------------------------------------


async def test_a_worker_token_limited_to_queue_a_cannot_use_queue_b(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], database_url: str
) -> None:
    token = await issue(Role.WORKER, queues=("a",))
    async with tokens.channel(orch.address, token) as ch:
        raw = RawClient(ch)
        before = await snapshot(database_url)

        err = await refusal(raw.poll(queues=["b"]))
        assert err.code() == Code.PERMISSION_DENIED
        assert "may use queue(s) a only, not b" in (err.details() or "")
        assert await code_of(raw.poll(queues=["a", "b"])) == Code.PERMISSION_DENIED
        assert await code_of(raw.poll()) == Code.PERMISSION_DENIED  # no queue means "default"
        register_b = raw.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="w", queues=["b"])
        )
        assert await code_of(register_b) == Code.PERMISSION_DENIED
        # A workflow that starts on queue b would hand queue b's executions to this worker.
        register_on_b = raw.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(
                worker_id="w", queues=["a"], workflows=[to_definition(on_b)]
            )
        )
        assert await code_of(register_on_b) == Code.PERMISSION_DENIED
        assert await snapshot(database_url) == before

        register_a = raw.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="w", queues=["a"])
        )
        assert await code_of(register_a) is None
        assert await raw.poll(queues=["a"], worker_id="w") == []


# -- a workflow name belongs to its queue ------------------------------------------------


async def _register(
    ch: grpc.aio.Channel,
    workflow: Workflow,
    *,
    worker_id: str,
    queue: str | None = None,
    allow_takeover: bool = False,
) -> wpb.RegisterWorkflowsResponse:
    """Register ``workflow``, declaring ``queue`` instead of its own when given."""
    definition = to_definition(workflow)
    if queue is not None:
        definition.queue = queue
    return await RawClient(ch).workers.RegisterWorkflows(
        wpb.RegisterWorkflowsRequest(
            worker_id=worker_id,
            workflows=[definition],
            queues=[definition.queue],
            allow_takeover=allow_takeover,
        )
    )


async def _versions(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM durable.workflow_versions"))
    finally:
        await conn.close()


async def test_a_queue_limited_token_cannot_take_over_a_workflow_of_another_queue(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], database_url: str
) -> None:
    async with (
        tokens.channel(orch.address, await issue(Role.WORKER)) as owner_ch,
        tokens.channel(orch.address, await issue(Role.WORKER, queues=("emails",))) as evil_ch,
        tokens.channel(orch.address, await issue(Role.CLIENT)) as client_ch,
    ):
        await _register(owner_ch, bill, worker_id="billing-worker")
        before = (await snapshot(database_url), await _versions(database_url))

        # "bill", declaring the attacker's own queue: the name is billing's.
        err = await refusal(_register(evil_ch, bill, worker_id="evil", queue="emails"))
        assert err.code() == Code.FAILED_PRECONDITION
        assert "workflow 'bill' runs on queue 'billing'" in (err.details() or "")
        assert "allow_takeover" in (err.details() or "")
        # Asking for a takeover needs the queue the workflow leaves.
        err = await refusal(
            _register(evil_ch, bill, worker_id="evil", queue="emails", allow_takeover=True)
        )
        assert err.code() == Code.PERMISSION_DENIED
        assert "runs on queue 'billing', which this token may not use" in (err.details() or "")
        # And registering it on billing itself: a queue the token may not use at all.
        err = await refusal(_register(evil_ch, bill, worker_id="evil"))
        assert err.code() == Code.PERMISSION_DENIED
        assert (await snapshot(database_url), await _versions(database_url)) == before

        # Clients' executions still go to billing; the attacker's queue gets nothing.
        execution_id = await RawClient(client_ch).start("bill", '{"card": "4111"}')
        await _register(evil_ch, plain, worker_id="evil", queue="emails")
        assert await RawClient(evil_ch, "evil").poll(queues=["emails"]) == []
        [task] = await RawClient(owner_ch, "billing-worker").poll(queues=["billing"])
        assert task.execution_id == execution_id


async def test_a_deploy_moves_a_workflow_to_another_queue_with_allow_takeover(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]]
) -> None:
    both = await issue(Role.WORKER, queues=("billing", "emails"))
    async with (
        tokens.channel(orch.address, both) as worker_ch,
        tokens.channel(orch.address, await issue(Role.CLIENT)) as client_ch,
    ):
        await _register(worker_ch, bill, worker_id="old")
        # Even a token allowed on both queues moves a workflow only when it says so.
        err = await refusal(_register(worker_ch, bill_moved, worker_id="new"))
        assert err.code() == Code.FAILED_PRECONDITION
        with pytest.raises(durable.FailedPreconditionError, match="runs on queue 'billing'"):
            await Worker(orch.address, [bill_moved], token=both).start()

        async with Worker(
            orch.address,
            [bill_moved],
            token=both,
            allow_takeover=True,
            poll_wait=timedelta(seconds=1),
        ):
            client = RawClient(client_ch)
            execution_id = await client.start("bill", '"moved"')
            assert (await client.get(execution_id)).queue == "emails"

            async def completed() -> bool:
                execution = await client.get(execution_id)
                return execution.status == common_pb2.EXECUTION_STATUS_COMPLETED

            await wait_until(completed)
            # The old deploy, registering again, does not silently take it back.
            err = await refusal(_register(worker_ch, bill, worker_id="old"))
            assert err.code() == Code.FAILED_PRECONDITION
            assert "workflow 'bill' runs on queue 'emails'" in (err.details() or "")


# -- missing, malformed, wrong, expired and revoked tokens -------------------------------


async def test_a_call_without_a_valid_token_is_unauthenticated(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]]
) -> None:
    good = await issue(Role.CLIENT)
    token_id = good.split("_")[1]
    cases = {
        "missing": (None, "requires a token"),
        "malformed": ("not-a-token", "malformed"),
        "wrong secret": (f"dur_{token_id}_{'x' * 43}", "not valid"),
        "unknown id": (f"dur_{'0' * 16}_{good.split('_', 2)[2]}", "not valid"),
    }
    for case, (token, says) in cases.items():
        async with tokens.channel(orch.address, token) as ch:
            err = await refusal(RawClient(ch).flows.ListExecutions(pb.ListExecutionsRequest()))
        assert err.code() == Code.UNAUTHENTICATED, case
        assert says in (err.details() or ""), (case, err.details())
    async with grpc.aio.insecure_channel(orch.address) as ch:
        basic = RawClient(ch).flows.ListExecutions(
            pb.ListExecutionsRequest(), metadata=[("authorization", f"Basic {good}")]
        )
        assert await code_of(basic) == Code.UNAUTHENTICATED
    async with tokens.channel(orch.address, good) as ch:
        assert await code_of(RawClient(ch).flows.ListExecutions(pb.ListExecutionsRequest())) is None


async def test_an_expired_token_is_refused_from_its_expiry_on_even_when_cached(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], manual_clock: ManualClock
) -> None:
    token = await issue(Role.CLIENT, expires_in=timedelta(hours=1))
    async with tokens.channel(orch.address, token) as ch:
        listing = RawClient(ch).flows.ListExecutions
        assert await code_of(listing(pb.ListExecutionsRequest())) is None  # now cached
        manual_clock.advance(timedelta(minutes=59, seconds=59))
        assert await code_of(listing(pb.ListExecutionsRequest())) is None
        manual_clock.advance(timedelta(seconds=1))
        err = await refusal(listing(pb.ListExecutionsRequest()))
    assert err.code() == Code.UNAUTHENTICATED
    assert err.details() == f"token {token.split('_')[1]} has expired"


async def test_a_revoked_token_is_refused_within_the_cache_time(
    orch: Orchestrator,
    issue: Callable[..., Awaitable[str]],
    manual_clock: ManualClock,
    database_url: str,
) -> None:
    token = await issue(Role.CLIENT)
    async with tokens.channel(orch.address, token) as ch:
        listing = RawClient(ch).flows.ListExecutions
        assert await code_of(listing(pb.ListExecutionsRequest())) is None
        await tokens.revoke(database_url, token, manual_clock.now())
        # Verified tokens are reused for auth_cache_secs (5 s) without asking the database.
        manual_clock.advance(timedelta(seconds=4))
        assert await code_of(listing(pb.ListExecutionsRequest())) is None
        manual_clock.advance(timedelta(seconds=1))
        err = await refusal(listing(pb.ListExecutionsRequest()))
    assert err.code() == Code.UNAUTHENTICATED
    assert err.details() == f"token {token.split('_')[1]} was revoked"

    revoked_first = await issue(Role.CLIENT)
    await tokens.revoke(database_url, revoked_first, manual_clock.now())
    async with tokens.channel(orch.address, revoked_first) as ch:
        never_used = RawClient(ch).flows.ListExecutions(pb.ListExecutionsRequest())
        assert await code_of(never_used) == Code.UNAUTHENTICATED


# -- a refused call is answered before its request is read -------------------------------


@pytest.mark.parametrize("caller", ["no token", "made-up token", "wrong role"])
async def test_a_refused_call_is_answered_before_its_request_is_read(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], caller: str
) -> None:
    """gRPC receives a unary call's whole message before the handler runs: a refusal that
    waited for it would let anyone make the orchestrator hold (and parse) megabytes.

    The request here is never sent, so only a refusal made from the metadata alone can
    answer; one that reads the request first waits until the call's deadline.
    """
    token = {
        "no token": None,
        "made-up token": f"dur_{'0' * 16}_{'x' * 43}",
        "wrong role": await issue(Role.WORKER),
    }[caller]
    never_sent = asyncio.Event()

    async def request_never_sent() -> AsyncIterator[pb.StartWorkflowRequest]:
        await never_sent.wait()
        yield pb.StartWorkflowRequest(workflow_name="plain")

    async with tokens.channel(orch.address, token) as ch:
        start = ch.stream_unary(
            "/durable.v1.WorkflowService/StartWorkflow",
            request_serializer=pb.StartWorkflowRequest.SerializeToString,
            response_deserializer=pb.StartWorkflowResponse.FromString,
        )
        err = await refusal(start(request_never_sent(), timeout=10))
    assert err.code() in DENIED, err


async def test_a_failing_token_lookup_is_a_generic_internal_error(
    orch: Orchestrator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError('relation "durable.tokens" at /srv/durable/store.py:12')

    monkeypatch.setattr(token_store, "token_get_many", broken)
    async with tokens.channel(orch.address, f"dur_{'1' * 16}_{'x' * 43}") as ch:
        err = await refusal(RawClient(ch).flows.ListExecutions(pb.ListExecutionsRequest()))
    assert err.code() == Code.INTERNAL
    details = err.details() or ""
    assert details.startswith("internal error (incident "), details
    assert "relation" not in details
    assert details.split("incident ")[1].split(")")[0] in caplog.text


# -- a refused call leaves no trace ------------------------------------------------------


async def test_a_refused_call_changes_nothing(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], database_url: str
) -> None:
    async with tokens.channel(orch.address, await issue(Role.WORKER)) as ch:
        await RawClient(ch).register(plain)
    before = await snapshot(database_url)
    for token in (None, "dur_0000000000000000_" + "x" * 43, await issue(Role.WORKER)):
        async with tokens.channel(orch.address, token) as ch:
            raw = RawClient(ch)
            assert await code_of(raw.start("plain", '{"card": "4111"}')) in DENIED
            ops = operations_service_pb2_grpc.OperationsServiceStub(ch)
            pause = ops.PauseQueue(operations_service_pb2.PauseQueueRequest(queue="default"))
            assert await code_of(pause) in DENIED
    async with tokens.channel(orch.address, await issue(Role.CLIENT)) as ch:
        assert await code_of(RawClient(ch).register(plain, worker_id="intruder")) in DENIED
    assert await snapshot(database_url) == before
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM durable.executions") == 0
        assert await conn.fetchval("SELECT count(*) FROM durable.queue_states") == 0
        assert await conn.fetchval("SELECT count(*) FROM durable.workers") == 1
    finally:
        await conn.close()


# -- the lease holder --------------------------------------------------------------------


async def _reclaim(orch: Orchestrator) -> None:
    now = orch.clock.now()

    async def no_expired_lease() -> bool:
        await orch.reclaimer.tick()
        expiry = await orch.engine.next_lease_expiry()
        return expiry is None or expiry > now

    await wait_until(no_expired_lease)


async def test_only_the_worker_holding_the_lease_can_report_the_task(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]], manual_clock: ManualClock
) -> None:
    async with (
        tokens.channel(orch.address, await issue(Role.WORKER)) as ch1,
        tokens.channel(orch.address, await issue(Role.WORKER)) as ch2,
        tokens.channel(orch.address, await issue(Role.CLIENT)) as client_ch,
    ):
        first, second = RawClient(ch1, "worker-1"), RawClient(ch2, "worker-2")
        await first.register(plain)
        await second.register(plain)
        client = RawClient(client_ch)
        execution_id = await client.start("plain", '"in"')
        [task] = await first.poll()

        # Another worker, same task id, a token it made up: refused, nothing recorded.
        guess = str(uuid.uuid4())
        err = await refusal(second.complete(task, '"forged"', token=guess))
        assert err.code() == Code.FAILED_PRECONDITION
        assert f"the lease on task(s) {task.task_id} is stale or wrong" in (err.details() or "")
        assert ("durable-stale-task-ids", str(task.task_id)) in tuple(err.trailing_metadata() or ())
        beat = await second.workers.Heartbeat(
            wpb.HeartbeatRequest(
                worker_id="worker-2",
                leases=[wpb.TaskLease(task_id=task.task_id, lease_token=guess)],
            )
        )
        assert list(beat.lost_task_ids) == [task.task_id]
        execution = await client.get(execution_id)
        assert (execution.status, execution.result_json) == (
            common_pb2.EXECUTION_STATUS_RUNNING,
            "",
        )

        # The first worker goes silent; its lease expires and the second worker gets the task.
        manual_clock.advance(timedelta(seconds=30))
        await _reclaim(orch)
        [again] = await second.poll()
        assert again.task_id == task.task_id
        assert again.lease_token != task.lease_token
        err = await refusal(first.complete(task, '"late"'))  # the old lease
        assert err.code() == Code.FAILED_PRECONDITION
        await second.complete(again, '"out"')
        execution = await client.get(execution_id)
        assert execution.result_json == '"out"'


def _worker_calls(
    raw: RawClient, task: wpb.Task, own: wpb.Task
) -> dict[str, Callable[[], Awaitable[object]]]:
    """Every worker RPC that names a task, about ``task`` (and ``own``, in a batch)."""
    lease = wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)
    own_lease = wpb.TaskLease(task_id=own.task_id, lease_token=own.lease_token)
    w, worker_id = raw.workers, raw.worker_id
    return {
        "CompleteTasks": lambda: raw.complete(task, '"forged"'),
        "CompleteTasks with next tasks": lambda: w.CompleteTasks(
            wpb.CompleteTasksRequest(
                worker_id=worker_id,
                completions=[wpb.TaskCompletion(lease=lease, result_json="1")],
                max_next_tasks=5,
                queues=["a"],
            )
        ),
        "FailTasks": lambda: raw.fail(task, non_retryable=True),
        "SuspendTasks": lambda: w.SuspendTasks(
            wpb.SuspendTasksRequest(
                worker_id=worker_id,
                suspensions=[
                    wpb.TaskSuspension(
                        lease=lease, sleep=wpb.SleepWait(duration=Duration(seconds=60))
                    )
                ],
            )
        ),
        "ReleaseTasks": lambda: w.ReleaseTasks(
            wpb.ReleaseTasksRequest(worker_id=worker_id, leases=[lease])
        ),
        "Heartbeat": lambda: w.Heartbeat(
            wpb.HeartbeatRequest(worker_id="worker-b", leases=[lease])  # another's id, too
        ),
        "Heartbeat of a batch": lambda: w.Heartbeat(
            wpb.HeartbeatRequest(worker_id=worker_id, leases=[own_lease, lease])
        ),
        "CompleteTasks of a batch": lambda: w.CompleteTasks(
            wpb.CompleteTasksRequest(
                worker_id=worker_id,
                completions=[
                    wpb.TaskCompletion(lease=own_lease, result_json="1"),
                    wpb.TaskCompletion(lease=lease, result_json="1"),
                ],
            )
        ),
    }


@pytest.mark.parametrize(
    "rpc",
    [
        "CompleteTasks",
        "CompleteTasks with next tasks",
        "CompleteTasks of a batch",
        "FailTasks",
        "SuspendTasks",
        "ReleaseTasks",
        "Heartbeat",
        "Heartbeat of a batch",
    ],
)
async def test_a_queue_limited_token_cannot_touch_a_task_of_another_queue(
    rpc: str,
    orch: Orchestrator,
    issue: Callable[..., Awaitable[str]],
    database_url: str,
    manual_clock: ManualClock,
) -> None:
    """Even holding another queue's lease token (leaked, say), every worker RPC refuses."""
    async with (
        tokens.channel(orch.address, await issue(Role.WORKER)) as owner_ch,
        tokens.channel(orch.address, await issue(Role.WORKER, queues=("a",))) as limited_ch,
        tokens.channel(orch.address, await issue(Role.CLIENT)) as client_ch,
    ):
        owner, limited = RawClient(owner_ch, "worker-b"), RawClient(limited_ch, "worker-a")
        await owner.register(on_b)
        await _register(limited_ch, plain, worker_id="worker-a", queue="a")
        client = RawClient(client_ch)
        on_b_id = await client.start("on_b", '"secret"')
        await client.start("plain", '"mine"', queue="a")
        [task] = await owner.poll(queues=["b"])
        [own] = await limited.poll(queues=["a"])
        manual_clock.advance(timedelta(seconds=1))  # a heartbeat now would move the expiry
        before = await snapshot(database_url)

        err = await refusal(_worker_calls(limited, task, own)[rpc]())
        assert err.code() == Code.PERMISSION_DENIED
        assert f"task(s) {task.task_id} are on queue(s) b, which this token may not use" in (
            err.details() or ""
        )
        assert await snapshot(database_url) == before

        # The lease is untouched: its holder reports the task as usual.
        await owner.complete(task, '"done"')
        assert (await client.get(on_b_id)).result_json == '"done"'
        await limited.complete(own, '"ok"')


# -- what clients and the log get to see -------------------------------------------------


async def test_an_unexpected_error_reaches_the_client_as_a_generic_internal_error(
    orch: Orchestrator,
    issue: Callable[..., Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError('relation "durable.executions" at /srv/durable/store.py:12')

    monkeypatch.setattr(Reads, "get_execution", broken)
    async with tokens.channel(orch.address, await issue(Role.CLIENT)) as ch:
        err = await refusal(RawClient(ch).get(str(uuid.uuid4())))
    assert err.code() == Code.INTERNAL
    details = err.details() or ""
    assert details.startswith("internal error (incident ")
    assert "relation" not in details
    assert "/srv" not in details
    assert "Traceback" not in details
    incident = details.split("incident ")[1].split(")")[0]
    assert incident in caplog.text  # the orchestrator's log has the details, by incident


def test_an_unreachable_database_is_unavailable_without_its_address() -> None:
    with pytest.raises(UnavailableError) as info, translate_errors():
        raise OSError("Multiple exceptions: [Errno 111] Connect call failed ('10.1.2.3', 5432)")
    assert info.value.message == "the database is unavailable; try again later"


async def test_the_orchestrator_logs_no_user_data_at_its_default_level(
    database_url: str, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    marker = "CARD-4111-1111"
    caplog.set_level(logging.INFO)
    async with (
        running_orchestrator(database_url, clock=manual_clock) as orch,
        grpc.aio.insecure_channel(orch.address) as ch,
    ):
        raw = RawClient(ch)
        await raw.register(plain)
        ok = await raw.start("plain", f'{{"card": "{marker}"}}')
        [task] = await raw.poll()
        await raw.complete(task, f'"{marker}"')
        failing = await raw.start("plain", f'"{marker}"')
        [task] = await raw.poll()
        await raw.fail(task, "ValueError", f"card {marker} declined", non_retryable=True)
        event = raw.flows.SendEvent(
            pb.SendEventRequest(execution_id=failing, name="paid", payload_json=f'"{marker}"')
        )
        assert await code_of(event) == Code.FAILED_PRECONDITION
        bad = await code_of(raw.start("plain", f'{{"card": {marker}}}'))  # not JSON
        assert bad == Code.INVALID_ARGUMENT
        assert (await raw.get(ok)).result_json == f'"{marker}"'
    assert caplog.records  # the orchestrator did log
    assert marker not in caplog.text


# -- the SDK, the worker and the token command -------------------------------------------


async def test_sdk_client_and_worker_send_their_tokens(
    orch: Orchestrator, issue: Callable[..., Awaitable[str]]
) -> None:
    worker_token, client_token = await issue(Role.WORKER), await issue(Role.CLIENT)
    async with (
        Worker(orch.address, [plain], token=worker_token, poll_wait=timedelta(seconds=1)),
        Client(orch.address, token=client_token) as client,
    ):
        execution = await client.wait(await client.start(plain, {"n": 1}), timeout=10)
        assert execution.result == {"n": 1}
        with pytest.raises(durable.PermissionDeniedError):
            await client.pause_queue("default")
    async with Client(orch.address) as anonymous:
        with pytest.raises(durable.UnauthenticatedError):
            await anonymous.list_executions()
    with pytest.raises(durable.UnauthenticatedError):
        await Worker(orch.address, [plain], token=client_token + "x").start()
    with pytest.raises(durable.PermissionDeniedError):
        await Worker(orch.address, [plain], token=client_token).start()


async def test_the_token_command_creates_lists_and_revokes_tokens(
    database_url: str,
    manual_clock: ManualClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        code = server_main(["token", *args, "--database-url", database_url])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = await asyncio.to_thread(
        run, "create", "--role", "worker", "--queue", "a", "--name", "mailer", "--expires-in", "30d"
    )
    assert code == 0
    token = out.strip()
    assert token.startswith("dur_")
    assert "it is not shown again" in err
    token_id = token.split("_")[1]
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM durable.tokens WHERE id = $1", token_id)
        assert row is not None
        assert (row["role"], row["queues"], row["name"]) == ("worker", ["a"], "mailer")
        assert token.split("_", 2)[2].encode() not in bytes(row["secret_hash"])  # a hash
        assert row["expires_at"] - row["created_at"] == timedelta(days=30)
    finally:
        await conn.close()

    code, out, _ = await asyncio.to_thread(run, "list")
    assert code == 0
    [header, line] = out.splitlines()
    assert header.split()[:4] == ["ID", "NAME", "ROLE", "QUEUES"]
    assert line.split()[:4] == [token_id, "mailer", "worker", "a"]
    assert line.endswith("active")
    assert token.split("_", 2)[2] not in out

    code, out, _ = await asyncio.to_thread(run, "revoke", token_id)
    assert code == 0
    assert f"token {token_id} revoked" in out
    code, out, _ = await asyncio.to_thread(run, "list")
    assert out.splitlines()[1].endswith("revoked")
    code, _, err = await asyncio.to_thread(run, "revoke", "0" * 16)
    assert code == 1
    assert "no token" in err
    code, _, err = await asyncio.to_thread(run, "create", "--role", "client", "--queue", "a")
    assert code == 2

    # The orchestrator refuses the revoked token and takes a fresh one made by the command.
    _, out, _ = await asyncio.to_thread(run, "create", "--role", "client")
    async with running_orchestrator(database_url, clock=manual_clock, auth=True) as orch:
        async with tokens.channel(orch.address, token) as ch:
            assert await code_of(RawClient(ch).poll(queues=["a"])) == Code.UNAUTHENTICATED
        async with Client(orch.address, token=out.strip()) as client:
            assert (await client.list_executions()).executions == ()
