"""Bad requests over real gRPC: the exact status code, a message that says what to fix, and
not one row changed."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable
from datetime import timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from durable import Workflow
from durable.v1 import common_pb2, definition_pb2
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable.v1.operations_service_pb2 import DiagnoseRequest
from durable.v1.operations_service_pb2_grpc import OperationsServiceStub
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.raw import RawClient, snapshot
from tests.helpers.wait import wait_until

Code = grpc.StatusCode
LIMIT = 2 * 1024 * 1024  # the default max_payload_bytes

single = Workflow("single")


@single.step
def only(data: object) -> object:
    return data


pair = Workflow("pair")


@pair.step
def first(data: object) -> object:
    return data


@pair.step
def second(data: object) -> object:
    return data


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    await RawClient(channel).register(single, pair)
    return RawClient(channel)


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def trailer(err: grpc.aio.AioRpcError, key: str) -> str | None:
    return next((v for k, v in err.trailing_metadata() or () if k == key), None)


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def reclaim(orch: Orchestrator) -> None:
    """Run the reclaimer until no expired lease is left.

    The background reclaimer wakes on the same clock move and may hold the rows (SKIP LOCKED)
    while our tick runs, so tick until the expired leases are gone.
    """
    now = orch.clock.now()

    async def no_expired_lease() -> bool:
        await orch.reclaimer.tick()
        expiry = await orch.engine.next_lease_expiry()
        return expiry is None or expiry > now

    await wait_until(no_expired_lease)


# -- StartWorkflow ---------------------------------------------------------------------


async def test_start_with_malformed_input_json(raw: RawClient, database_url: str) -> None:
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("single", '{"id": 1,'))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "input_json is not valid JSON" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_start_with_a_json_nul_escape_jsonb_cannot_store(
    raw: RawClient, database_url: str
) -> None:
    # Well-formed JSON that PostgreSQL's jsonb refuses (it cannot hold U+0000): still the
    # caller's mistake, so INVALID_ARGUMENT, not INTERNAL.
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("single", '{"name": "a\\u0000b"}'))
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "\\u0000" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_start_of_an_unknown_workflow(raw: RawClient, database_url: str) -> None:
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("no_such_flow"))
    assert err.code() == Code.NOT_FOUND
    assert "workflow 'no_such_flow' is not registered" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_start_with_input_one_byte_over_the_limit(raw: RawClient, database_url: str) -> None:
    # Valid JSON of 2 MiB + 1 bytes: only the size is wrong. Our message (not gRPC's own
    # "message larger than max") proves the transport limit leaves room for the payload limit.
    oversize = '"' + "x" * (LIMIT + 1 - 2) + '"'
    assert len(oversize.encode()) == LIMIT + 1
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("single", oversize))
    assert err.code() == Code.INVALID_ARGUMENT
    assert f"input_json is {LIMIT + 1} bytes, over the limit of {LIMIT} bytes" in (
        err.details() or ""
    )
    assert await snapshot(database_url) == before


async def test_start_with_input_exactly_at_the_limit_is_accepted(raw: RawClient) -> None:
    at_limit = '"' + "x" * (LIMIT - 2) + '"'
    execution_id = await raw.start("single", at_limit)
    assert (await raw.get(execution_id)).input_json == at_limit


# -- CompleteTasks ---------------------------------------------------------------------


async def test_complete_with_a_wrong_lease_token(raw: RawClient, database_url: str) -> None:
    await raw.start("single")
    [task] = await raw.poll()
    before = await snapshot(database_url)

    err = await rpc_error(raw.complete(task, '{"ok": true}', token=str(uuid.uuid4())))

    assert err.code() == Code.FAILED_PRECONDITION
    assert f"the lease on task(s) {task.task_id} is stale or wrong" in (err.details() or "")
    assert trailer(err, "durable-stale-task-ids") == str(task.task_id)
    assert await snapshot(database_url) == before
    [row] = await fetch(
        database_url, "SELECT status, lease_token::text AS token FROM durable.tasks"
    )
    assert (row["status"], row["token"]) == ("leased", task.lease_token)
    assert await fetch(database_url, "SELECT * FROM durable.step_attempts") == []


async def test_complete_with_a_stale_lease_after_reclaim(
    orch: Orchestrator,
    channel: grpc.aio.Channel,
    raw: RawClient,
    manual_clock: ManualClock,
    database_url: str,
) -> None:
    slow = RawClient(channel, worker_id="slow-worker")
    fresh = RawClient(channel, worker_id="fresh-worker")
    await slow.register(single)
    await fresh.register(single)
    execution_id = await raw.start("single")
    [old] = await slow.poll()
    assert old.attempt == 1

    manual_clock.advance(timedelta(seconds=31))  # past the 30 s lease
    await reclaim(orch)
    [new] = await fresh.poll()
    assert (new.task_id, new.attempt) == (old.task_id, 2)
    assert new.lease_token != old.lease_token

    before = await snapshot(database_url)
    err = await rpc_error(slow.complete(old, '"late"'))
    assert err.code() == Code.FAILED_PRECONDITION
    assert "was reclaimed and leased again" in (err.details() or "")
    assert trailer(err, "durable-stale-task-ids") == str(old.task_id)
    assert await snapshot(database_url) == before

    await fresh.complete(new, '"fresh"')
    execution = await raw.get(execution_id)
    assert execution.status == common_pb2.EXECUTION_STATUS_COMPLETED
    assert execution.result_json == '"fresh"'
    assert [(s.attempt, s.status, s.worker_id) for s in execution.steps] == [
        (1, common_pb2.STEP_ATTEMPT_STATUS_LOST, "slow-worker"),
        (2, common_pb2.STEP_ATTEMPT_STATUS_COMPLETED, "fresh-worker"),
    ]


@pytest.mark.parametrize("workflow", ["pair", "single"])
async def test_complete_with_malformed_result_json(
    raw: RawClient, database_url: str, workflow: str
) -> None:
    # "pair": the result would become the next step's input; "single": the execution's result.
    await raw.start(workflow)
    [task] = await raw.poll()
    before = await snapshot(database_url)
    err = await rpc_error(raw.complete(task, "{'single': 'quotes'}"))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "result_json of task" in (err.details() or "")
    assert "is not valid JSON" in (err.details() or "")
    assert await snapshot(database_url) == before
    # The lease is intact: the worker can still report a good result.
    await raw.complete(task, '{"fixed": true}')


# -- CancelExecution / GetExecution ----------------------------------------------------


async def test_cancel_a_completed_execution(raw: RawClient, database_url: str) -> None:
    execution_id = await raw.start("single")
    [task] = await raw.poll()
    await raw.complete(task, "1")
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=execution_id))
    )
    assert err.code() == Code.FAILED_PRECONDITION
    assert f"execution {execution_id} is already completed" in (err.details() or "")
    assert await snapshot(database_url) == before


def _cancel(raw: RawClient, execution_id: str) -> Awaitable[object]:
    return raw.flows.CancelExecution(
        pb.CancelExecutionRequest(execution_id=execution_id, reason="x")
    )


def _get(raw: RawClient, execution_id: str) -> Awaitable[object]:
    return raw.flows.GetExecution(
        pb.GetExecutionRequest(execution_id=execution_id, include_steps=True)
    )


@pytest.mark.parametrize("call", [_cancel, _get], ids=["cancel", "get"])
async def test_unknown_execution_id(raw: RawClient, database_url: str, call: object) -> None:
    await raw.start("single")
    unknown = str(uuid.uuid4())
    before = await snapshot(database_url)
    err = await rpc_error(call(raw, unknown))  # type: ignore[operator]
    assert err.code() == Code.NOT_FOUND
    assert f"execution {unknown} does not exist" in (err.details() or "")
    assert await snapshot(database_url) == before


@pytest.mark.parametrize("call", [_cancel, _get], ids=["cancel", "get"])
async def test_execution_id_that_is_not_a_uuid(
    raw: RawClient, database_url: str, call: object
) -> None:
    await raw.start("single")
    before = await snapshot(database_url)
    err = await rpc_error(call(raw, "order-17"))  # type: ignore[operator]
    assert err.code() == Code.INVALID_ARGUMENT
    assert "execution_id 'order-17' is not a valid execution id (a UUID)" in (err.details() or "")
    assert await snapshot(database_url) == before


# -- PollTasks / RegisterWorkflows -----------------------------------------------------


async def test_poll_by_an_unregistered_worker(raw: RawClient, database_url: str) -> None:
    await raw.start("single")  # a ready task the stranger must not get
    before = await snapshot(database_url)
    err = await rpc_error(raw.poll(worker_id="stranger"))
    assert err.code() == Code.FAILED_PRECONDITION
    assert "worker 'stranger' is unknown: call RegisterWorkflows first" in (err.details() or "")
    assert ("durable-error", "worker-unknown") in tuple(err.trailing_metadata() or ())
    assert await snapshot(database_url) == before
    assert await fetch(database_url, "SELECT id FROM durable.workers WHERE id = 'stranger'") == []


@pytest.mark.parametrize("call", ["poll", "register", "complete with next tasks"])
async def test_more_than_100_queues_in_one_call(
    raw: RawClient, database_url: str, call: str
) -> None:
    queues = [f"q{i}" for i in range(101)]
    before = await snapshot(database_url)
    if call == "poll":
        request = raw.workers.PollTasks(
            wpb.PollTasksRequest(worker_id=raw.worker_id, queues=queues)
        )
    elif call == "register":
        request = raw.workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="new-worker", queues=queues)
        )
    else:
        request = raw.workers.CompleteTasks(
            wpb.CompleteTasksRequest(worker_id=raw.worker_id, max_next_tasks=1, queues=queues)
        )
    err = await rpc_error(request)
    assert err.code() == Code.INVALID_ARGUMENT
    assert err.details() == "queues: at most 100 per call, got 101"
    assert await snapshot(database_url) == before
    assert await fetch(database_url, "SELECT id FROM durable.workers WHERE id = 'new-worker'") == []
    # 100 is fine, and so is a name repeated (it counts once).
    assert await raw.poll(queues=queues[:100]) == []
    assert await raw.poll(queues=["default"] * 3) == []


async def test_a_queue_name_longer_than_128_characters(raw: RawClient) -> None:
    err = await rpc_error(raw.poll(queues=["q" * 129]))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "use 1-128 characters" in (err.details() or "")


def _step(name: str) -> definition_pb2.Node:
    return definition_pb2.Node(step=definition_pb2.Step(name=name))


def _definition(name: str, *steps: str) -> definition_pb2.WorkflowDefinition:
    return definition_pb2.WorkflowDefinition(name=name, nodes=[_step(s) for s in steps])


def _with(name: str, node: definition_pb2.Node) -> definition_pb2.WorkflowDefinition:
    return definition_pb2.WorkflowDefinition(name=name, nodes=[_step("first"), node])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_definition("dupes", "a", "b", "a"), "workflow 'dupes' has two nodes named 'a'"),
        (_definition("empty"), "workflow 'empty': the workflow has no steps"),
        (
            _with(
                "badkey",
                definition_pb2.Node(
                    branch=definition_pb2.Branch(
                        name="pick",
                        cases=[definition_pb2.BranchCase(key_json="{}", nodes=[_step("x")])],
                    )
                ),
            ),
            "branch 'pick' has case key '{}'",
        ),
        (
            _with("nocases", definition_pb2.Node(branch=definition_pb2.Branch(name="pick"))),
            "branch 'pick' has no cases",
        ),
        (
            _with(
                "emptylane",
                definition_pb2.Node(
                    parallel=definition_pb2.Parallel(
                        name="fan", branches=[definition_pb2.ParallelBranch(name="a")]
                    )
                ),
            ),
            "branch 'a' of parallel 'fan' has no steps",
        ),
        (
            _with("nobody", definition_pb2.Node(foreach=definition_pb2.Foreach(name="each"))),
            "the body of foreach 'each' has no steps",
        ),
    ],
    ids=[
        "duplicate-step-names",
        "no-steps",
        "bad-case-key",
        "branch-without-cases",
        "empty-parallel-branch",
        "empty-foreach-body",
    ],
)
async def test_register_an_invalid_definition(
    channel: grpc.aio.Channel,
    database_url: str,
    bad: definition_pb2.WorkflowDefinition,
    message: str,
) -> None:
    # A valid definition in the same call is not stored either: registration is all or nothing.
    good = _definition("good", "a")
    before = await snapshot(database_url)
    versions = await fetch(database_url, "SELECT version FROM durable.workflow_versions")
    err = await rpc_error(
        RawClient(channel).workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="new-worker", workflows=[good, bad])
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT
    assert message in (err.details() or "")
    assert await snapshot(database_url) == before
    assert await fetch(database_url, "SELECT version FROM durable.workflow_versions") == versions
    assert await fetch(database_url, "SELECT id FROM durable.workers WHERE id = 'new-worker'") == []


# -- ListExecutions --------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        _b64("\xff\xfe not a cursor"),
        _b64("yesterday|0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f"),
        _b64("2030-01-01T00:00:00+00:00"),  # a time but no execution id
        _b64("2030-01-01T00:00:00+00:00|not-a-uuid"),
    ],
    ids=["not-base64", "not-utf8", "bad-time", "no-id", "bad-id"],
)
async def test_list_with_a_garbage_page_token(
    raw: RawClient, database_url: str, token: str
) -> None:
    await raw.start("single")
    before = await snapshot(database_url)
    err = await rpc_error(raw.flows.ListExecutions(pb.ListExecutionsRequest(page_token=token)))
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "page_token is not valid: pass next_page_token from a previous response" in (
        err.details() or ""
    )
    assert await snapshot(database_url) == before


async def test_start_with_nan_which_json_does_not_have(raw: RawClient, database_url: str) -> None:
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("single", '{"amount": NaN}'))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "NaN is not JSON" in (err.details() or "")
    assert await snapshot(database_url) == before


# -- Found by tests/integration/test_fuzz_rpcs.py --------------------------------------


def _raw_call(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    """A call that sends the given bytes as they are, whether or not they are a request."""
    return channel.unary_unary(
        method, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff\xff",  # not a protobuf
        b"\x0a\x05ab",  # workflow_name says 5 bytes, 2 follow
        b"\x0a\x06single\x12\x04\xc3\x28\xff\xfe",  # input_json is not UTF-8
    ],
    ids=["garbage", "truncated", "invalid-utf8"],
)
async def test_request_bytes_that_are_no_request(
    raw: RawClient, channel: grpc.aio.Channel, database_url: str, body: bytes
) -> None:
    # gRPC answered UNKNOWN (its status for a failing deserializer): the caller's mistake.
    before = await snapshot(database_url)
    err = await rpc_error(_raw_call(channel, "/durable.v1.WorkflowService/StartWorkflow")(body))
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "the request is not a valid durable.v1.WorkflowService/StartWorkflow request" in (
        err.details() or ""
    )
    assert await snapshot(database_url) == before


async def test_a_call_whose_deadline_is_spent_does_nothing(
    raw: RawClient, database_url: str
) -> None:
    # The callers are told DEADLINE_EXCEEDED; the orchestrator used to start the executions
    # anyway (when gRPC did not cancel the handler first: hence several calls).
    for i in range(10):
        err = await rpc_error(
            raw.flows.StartWorkflow(
                pb.StartWorkflowRequest(workflow_name="single", idempotency_key=f"late-{i}"),
                timeout=0,
            )
        )
        assert err.code() == Code.DEADLINE_EXCEEDED
    await raw.start("single", idempotency_key="in-time")  # a call that is handled after them
    keys = await fetch(database_url, "SELECT idempotency_key FROM durable.executions")
    assert [r["idempotency_key"] for r in keys] == ["in-time"]


@pytest.mark.parametrize(
    "scheduled_at",
    [Timestamp(seconds=0, nanos=-1), Timestamp(seconds=253_402_300_800)],  # year 10000
    ids=["negative-nanos", "after-year-9999"],
)
async def test_start_with_an_invalid_timestamp(
    raw: RawClient, database_url: str, scheduled_at: Timestamp
) -> None:
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("single", scheduled_at=scheduled_at))
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "scheduled_at is not a valid timestamp" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_durations_too_long_for_a_timedelta(
    raw: RawClient, channel: grpc.aio.Channel, database_url: str
) -> None:
    huge = Duration(seconds=2**62)
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.workers.PollTasks(wpb.PollTasksRequest(worker_id=raw.worker_id, wait_timeout=huge))
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "wait_timeout is not a valid duration of at most 100 years" in (err.details() or "")
    err = await rpc_error(
        OperationsServiceStub(channel).Diagnose(DiagnoseRequest(worker_alive_within=huge))
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "worker_alive_within is not a valid duration" in (err.details() or "")
    assert await snapshot(database_url) == before


DEEP_JSON = "[" * 100_000 + "]" * 100_000  # well-formed, but deeper than any parser goes


async def test_send_an_event_with_json_nested_too_deeply(raw: RawClient, database_url: str) -> None:
    execution_id = await raw.start("single")
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.flows.SendEvent(
            pb.SendEventRequest(execution_id=execution_id, name="go", payload_json=DEEP_JSON)
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "payload_json is JSON nested too deeply" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_start_with_json_nested_too_deeply(raw: RawClient, database_url: str) -> None:
    # Not parsed in Python on this path: PostgreSQL refuses it ("stack depth limit exceeded").
    before = await snapshot(database_url)
    err = await rpc_error(raw.start("single", DEEP_JSON))
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "input_json is JSON nested too deeply" in (err.details() or "")
    assert await snapshot(database_url) == before


@pytest.mark.parametrize("field", ["catch_up", "overlap"])
async def test_create_a_schedule_with_an_unknown_enum_number(
    raw: RawClient, database_url: str, field: str
) -> None:
    schedule = spb.Schedule(name="nightly", workflow_name="single", cron="0 3 * * *")
    setattr(schedule, field, 99)  # proto3 enums are open: any number arrives
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.schedules.CreateSchedule(spb.CreateScheduleRequest(schedule=schedule))
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert f"{field} 99 is not one of" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_suspend_on_an_event_wait_of_an_unknown_mode(
    raw: RawClient, database_url: str
) -> None:
    await raw.start("single")
    [task] = await raw.poll()
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.workers.SuspendTasks(
            wpb.SuspendTasksRequest(
                worker_id=raw.worker_id,
                suspensions=[
                    wpb.TaskSuspension(
                        lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token),
                        events=wpb.EventWait(index=0, names=["go"], mode=99),  # type: ignore[arg-type]
                    )
                ],
            )
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert f"mode of task {task.task_id} 99 is not one of" in (err.details() or "")
    assert await snapshot(database_url) == before


def _retrying(**policy: object) -> definition_pb2.WorkflowDefinition:
    retry = common_pb2.RetryPolicy(max_attempts=3, **policy)  # type: ignore[arg-type]
    step = definition_pb2.Step(name="a", retry=retry)
    return definition_pb2.WorkflowDefinition(name="odd", nodes=[definition_pb2.Node(step=step)])


def _timed(timeout: Duration) -> definition_pb2.WorkflowDefinition:
    step = definition_pb2.Step(name="a", timeout=timeout)
    return definition_pb2.WorkflowDefinition(name="odd", nodes=[definition_pb2.Node(step=step)])


def _declaring(**schedule: object) -> definition_pb2.WorkflowDefinition:
    d = _definition("odd", "a")
    d.schedules.add(name="odd.nightly", cron="0 3 * * *", **schedule)
    return d


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_retrying(multiplier=0.5), "retry.multiplier must be >= 1"),
        (_retrying(multiplier=float("nan")), "retry.multiplier must be >= 1"),
        (_retrying(jitter=1.5), "retry.jitter must be within 0..1"),
        (_retrying(jitter=float("nan")), "retry.jitter must be within 0..1"),
        (_retrying(initial_delay=Duration(seconds=-1)), "retry.initial_delay must not be negative"),
        (_retrying(max_delay=Duration(seconds=2**62)), "retry.max_delay is not a valid duration"),
        (_timed(Duration(seconds=2**62)), "timeout is not a valid duration"),
        (_declaring(catch_up=99), "catch_up 99 is not one of"),
        (_declaring(overlap=-1), "overlap -1 is not one of"),
        (_declaring(input_json="{"), "input_json of workflow 'odd': schedule 'odd.nightly' is not"),
    ],
    ids=[
        "multiplier-below-1",
        "multiplier-nan",
        "jitter-over-1",
        "jitter-nan",
        "negative-initial-delay",
        "max-delay-overflows",
        "step-timeout-overflows",
        "declared-catch-up-unknown",
        "declared-overlap-unknown",
        "declared-input-not-json",
    ],
)
async def test_register_a_definition_the_engine_cannot_read(
    channel: grpc.aio.Channel,
    database_url: str,
    bad: definition_pb2.WorkflowDefinition,
    message: str,
) -> None:
    # Checked by the API, not found out by the engine (INTERNAL) while storing it.
    before = await snapshot(database_url)
    err = await rpc_error(
        RawClient(channel).workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="new-worker", workflows=[bad])
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert message in (err.details() or "")
    assert await snapshot(database_url) == before


def _compensated(**policy: object) -> definition_pb2.WorkflowDefinition:
    retry = common_pb2.RetryPolicy(max_attempts=2, **policy)  # type: ignore[arg-type]
    undo = definition_pb2.Compensation(name="undo", retry=retry)
    step = definition_pb2.Step(name="a", compensation=undo)
    return definition_pb2.WorkflowDefinition(name="odd", nodes=[definition_pb2.Node(step=step)])


def _grouped(kind: str, on_error: int) -> definition_pb2.WorkflowDefinition:
    if kind == "parallel":
        lane = definition_pb2.ParallelBranch(name="x", nodes=[_step("b")])
        node = definition_pb2.Node(
            parallel=definition_pb2.Parallel(name="g", branches=[lane], on_error=on_error)  # type: ignore[arg-type]
        )
    else:
        node = definition_pb2.Node(
            foreach=definition_pb2.Foreach(name="g", nodes=[_step("b")], on_error=on_error)  # type: ignore[arg-type]
        )
    return _with("odd", node)


def _stray_default() -> definition_pb2.WorkflowDefinition:
    case = definition_pb2.BranchCase(key_json="1", nodes=[_step("b")])
    branch = definition_pb2.Branch(name="pick", cases=[case], default_nodes=[_step("c")])
    return _with("odd", definition_pb2.Node(branch=branch))


BACKOFFS = "BACKOFF_UNSPECIFIED, BACKOFF_FIXED, BACKOFF_LINEAR, BACKOFF_EXPONENTIAL"
ERROR_MODES = "ERROR_MODE_UNSPECIFIED, ERROR_MODE_FAIL_FAST, ERROR_MODE_COLLECT"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            _retrying(backoff=7),
            f"workflow 'odd': step 'a': retry.backoff 7 is not one of {BACKOFFS}",
        ),
        (
            _compensated(backoff=-1),
            f"workflow 'odd': compensation 'undo': retry.backoff -1 is not one of {BACKOFFS}",
        ),
        (
            _grouped("parallel", 3),
            f"workflow 'odd': parallel 'g': on_error 3 is not one of {ERROR_MODES}",
        ),
        (
            _grouped("foreach", 9),
            f"workflow 'odd': foreach 'g': on_error 9 is not one of {ERROR_MODES}",
        ),
        (
            _stray_default(),
            "workflow 'odd': branch 'pick' has default_nodes but not has_default",
        ),
    ],
    ids=[
        "step-backoff",
        "compensation-backoff",
        "parallel-on-error",
        "foreach-on-error",
        "default-without-has-default",
    ],
)
async def test_register_a_definition_the_engine_would_misread(
    channel: grpc.aio.Channel,
    database_url: str,
    bad: definition_pb2.WorkflowDefinition,
    message: str,
) -> None:
    # An enum number the proto does not define (proto3 lets any int32 through), or a part
    # the engine would ignore, is refused rather than read as some default.
    before = await snapshot(database_url)
    err = await rpc_error(
        RawClient(channel).workers.RegisterWorkflows(
            wpb.RegisterWorkflowsRequest(worker_id="new-worker", workflows=[bad])
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert message in (err.details() or ""), err.details()
    assert await snapshot(database_url) == before


def _waits_without_timeout() -> dict[str, wpb.TaskSuspension]:
    return {
        "child": wpb.TaskSuspension(
            children=[wpb.ChildStart(index=0, workflow_name="single", input_json="1")],
            child=wpb.ChildWait(index=0, timeout_value_json="1", has_timeout_value=True),
        ),
        "event": wpb.TaskSuspension(
            events=wpb.EventWait(index=0, names=["go"], has_timeout_value=True)
        ),
        "input": wpb.TaskSuspension(
            input=wpb.InputWait(
                index=0,
                name="ok",
                kind=common_pb2.INPUT_KIND_APPROVAL,
                has_timeout_value=True,
                timeout=Duration(seconds=0),  # zero is no timeout
            )
        ),
    }


@pytest.mark.parametrize("wait", ["child", "event", "input"])
async def test_suspend_with_a_timeout_value_but_no_timeout(
    raw: RawClient, database_url: str, wait: str
) -> None:
    await raw.start("single")
    [task] = await raw.poll()
    suspension = _waits_without_timeout()[wait]
    suspension.lease.CopyFrom(wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token))
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.workers.SuspendTasks(
            wpb.SuspendTasksRequest(worker_id=raw.worker_id, suspensions=[suspension])
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert f"task {task.task_id}: the {wait} wait has has_timeout_value but no timeout" in (
        err.details() or ""
    )
    assert await snapshot(database_url) == before


async def test_suspend_on_an_input_wait_of_an_unknown_kind(
    raw: RawClient, database_url: str
) -> None:
    await raw.start("single")
    [task] = await raw.poll()
    wait = wpb.InputWait(index=0, name="ok", kind=42)  # type: ignore[arg-type]
    suspension = wpb.TaskSuspension(
        lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token), input=wait
    )
    before = await snapshot(database_url)
    err = await rpc_error(
        raw.workers.SuspendTasks(
            wpb.SuspendTasksRequest(worker_id=raw.worker_id, suspensions=[suspension])
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert f"kind of the input wait of task {task.task_id} 42 is not one of INPUT_KIND_" in (
        err.details() or ""
    )
    assert await snapshot(database_url) == before


@pytest.mark.parametrize("call", ["heartbeat", "poll"])
async def test_a_worker_id_with_a_nul_character(
    raw: RawClient, database_url: str, call: str
) -> None:
    # The call used to succeed, noting the id as seen; writing the notes (behind) then
    # failed for ever, so no worker's last-seen time was written again and ListWorkers,
    # which writes them first, failed for every caller.
    bad = "worker\x00one"
    before = await snapshot(database_url)
    if call == "heartbeat":
        request = raw.workers.Heartbeat(wpb.HeartbeatRequest(worker_id=bad))
    else:
        request = raw.workers.PollTasks(wpb.PollTasksRequest(worker_id=bad))
    err = await rpc_error(request)
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "worker_id must not contain the NUL character" in (err.details() or "")
    assert await snapshot(database_url) == before
    workers = await raw.flows.ListWorkers(pb.ListWorkersRequest())
    assert [w.worker_id for w in workers.workers] == [raw.worker_id]
