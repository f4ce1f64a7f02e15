"""The JSON profile at the edge: every JSON field of every RPC refuses what no reader can
decode or PostgreSQL cannot store, with INVALID_ARGUMENT naming the field and the rule,
none of the database's own words, and not one row changed. Free-text fields refuse NUL.
Readers survive a payload outside the profile stored by an older orchestrator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
import pytest

from durable import Client, UndecodableJSON, Workflow
from durable._cli import main
from durable.v1 import common_pb2, definition_pb2
from durable.v1 import operations_service_pb2 as opb
from durable.v1 import operations_service_pb2_grpc as ogrpc
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from tests.helpers.raw import RawClient, snapshot

Code = grpc.StatusCode

single = Workflow("single")


@single.step
def only(data: object) -> object:
    return data


# Each bad payload, and words its refusal must use.
BAD = {
    "too deep": ("[" * 65 + "]" * 65, "nested too deeply: 65 levels"),
    "far too deep": ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
    "NaN": ('{"a": NaN}', "NaN is not JSON"),
    "Infinity": ("[-Infinity]", "Infinity is not JSON"),
    "1e400": ('{"a": 1e400}', "beyond the range of an IEEE 754 double"),
    "huge integer": ("9" * 400, "beyond the range of an IEEE 754 double"),
    "NUL": ('{"a": "x\\u0000y"}', "U+0000"),
    "lone surrogate": ('{"a": "\\ud800"}', "lone surrogate"),
    "lone surrogate key": ('{"\\udc00": 1}', "lone surrogate"),
}
# Words of PostgreSQL's messages that must never reach a client.
DATABASE_WORDS = ("DETAIL", "jsonb", "invalid input syntax", "Unicode low surrogate", "Token")


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    await RawClient(channel).register(single)
    return RawClient(channel)


Setup = Callable[[RawClient], Awaitable[object]]
Send = Callable[[RawClient, object, str], Awaitable[object]]


async def _nothing(raw: RawClient) -> object:
    return None


async def _execution(raw: RawClient) -> object:
    return await raw.start("single")


async def _leased(raw: RawClient) -> object:
    await raw.start("single")
    (task,) = await raw.poll(1)
    return task


async def _a_schedule(raw: RawClient) -> object:
    return await raw.schedules.CreateSchedule(spb.CreateScheduleRequest(schedule=_schedule("1")))


def _lease(task: object) -> wpb.TaskLease:
    assert isinstance(task, wpb.Task)
    return wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token)


def _schedule(payload: str) -> spb.Schedule:
    return spb.Schedule(
        name="nightly", workflow_name="single", cron="0 3 * * *", input_json=payload
    )


async def _complete(raw: RawClient, completion: wpb.TaskCompletion) -> object:
    return await raw.workers.CompleteTasks(
        wpb.CompleteTasksRequest(worker_id=raw.worker_id, completions=[completion])
    )


async def _suspend(raw: RawClient, suspension: wpb.TaskSuspension) -> object:
    return await raw.workers.SuspendTasks(
        wpb.SuspendTasksRequest(worker_id=raw.worker_id, suspensions=[suspension])
    )


async def _start(raw: RawClient, _: object, p: str) -> object:
    return await raw.start("single", p)


async def _start_many(raw: RawClient, _: object, p: str) -> object:
    one = pb.StartWorkflowRequest(workflow_name="single", input_json=p)
    return await raw.flows.StartWorkflows(pb.StartWorkflowsRequest(requests=[one]))


async def _send_event(raw: RawClient, execution_id: object, p: str) -> object:
    request = pb.SendEventRequest(execution_id=str(execution_id), name="go", payload_json=p)
    return await raw.flows.SendEvent(request)


async def _provide_input(raw: RawClient, execution_id: object, p: str) -> object:
    request = pb.ProvideInputRequest(execution_id=str(execution_id), name="ok", value_json=p)
    return await raw.flows.ProvideInput(request)


async def _create_schedule(raw: RawClient, _: object, p: str) -> object:
    return await raw.schedules.CreateSchedule(spb.CreateScheduleRequest(schedule=_schedule(p)))


async def _update_schedule(raw: RawClient, _: object, p: str) -> object:
    request = spb.UpdateScheduleRequest(schedule=_schedule(p), update_mask=["input_json"])
    return await raw.schedules.UpdateSchedule(request)


async def _trigger_schedule(raw: RawClient, _: object, p: str) -> object:
    request = spb.TriggerScheduleRequest(name="nightly", input_json=p)
    return await raw.schedules.TriggerSchedule(request)


async def _register(raw: RawClient, _: object, p: str) -> object:
    d = definition_pb2.WorkflowDefinition(name="declared")
    d.nodes.add().step.name = "s"
    d.schedules.add(name="declared.hourly", cron="0 * * * *", input_json=p)
    request = wpb.RegisterWorkflowsRequest(worker_id=raw.worker_id, workflows=[d])
    return await raw.workers.RegisterWorkflows(request)


async def _result(raw: RawClient, task: object, p: str) -> object:
    return await _complete(raw, wpb.TaskCompletion(lease=_lease(task), result_json=p))


async def _evaluation(raw: RawClient, task: object, p: str) -> object:
    completion = wpb.TaskCompletion(
        lease=_lease(task), result_json="1", evaluations={"route": wpb.Evaluation(value_json=p)}
    )
    return await _complete(raw, completion)


async def _fire_and_forget_child(raw: RawClient, task: object, p: str) -> object:
    child = wpb.ChildStart(index=0, workflow_name="single", input_json=p)
    return await _complete(raw, wpb.TaskCompletion(lease=_lease(task), children=[child]))


async def _waited_child(raw: RawClient, task: object, p: str) -> object:
    suspension = wpb.TaskSuspension(
        lease=_lease(task),
        children=[wpb.ChildStart(index=0, workflow_name="single", input_json=p)],
        child=wpb.ChildWait(index=0),
    )
    return await _suspend(raw, suspension)


async def _timeout_value(raw: RawClient, task: object, p: str) -> object:
    wait = wpb.EventWait(index=0, names=["go"], timeout_value_json=p, has_timeout_value=True)
    wait.timeout.FromSeconds(60)
    return await _suspend(raw, wpb.TaskSuspension(lease=_lease(task), events=wait))


# RPC -> (the field its refusal names, what exists before the call, the call).
RPCS: dict[str, tuple[str, Setup, Send]] = {
    "StartWorkflow": ("input_json", _nothing, _start),
    "StartWorkflows": ("requests[0]: input_json", _nothing, _start_many),
    "SendEvent": ("payload_json", _execution, _send_event),
    "ProvideInput": ("value_json", _execution, _provide_input),
    "CreateSchedule": ("input_json", _nothing, _create_schedule),
    "UpdateSchedule": ("input_json", _a_schedule, _update_schedule),
    "TriggerSchedule": ("input_json", _a_schedule, _trigger_schedule),
    "RegisterWorkflows": ("input_json of workflow 'declared': schedule", _nothing, _register),
    "CompleteTasks result": ("result_json of task", _leased, _result),
    "CompleteTasks evaluation": ("evaluation 'route' of task", _leased, _evaluation),
    "CompleteTasks child": ("input_json of child 0 of task", _leased, _fire_and_forget_child),
    "SuspendTasks child": ("input_json of child 0 of task", _leased, _waited_child),
    "SuspendTasks timeout value": ("timeout_value_json of task", _leased, _timeout_value),
}


@pytest.mark.parametrize("bad", BAD, ids=str)
@pytest.mark.parametrize("rpc", RPCS, ids=str)
async def test_every_json_field_refuses_what_is_outside_the_profile(
    raw: RawClient, database_url: str, rpc: str, bad: str
) -> None:
    field, setup, send = RPCS[rpc]
    payload, rule = BAD[bad]
    context = await setup(raw)
    before = await snapshot(database_url)
    err = await rpc_error(send(raw, context, payload))
    details = err.details() or ""
    assert err.code() == Code.INVALID_ARGUMENT, details
    assert field in details, details
    assert rule in details, details
    assert not [w for w in DATABASE_WORDS if w in details], details
    assert await snapshot(database_url) == before


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


# -- free text: NUL, which PostgreSQL cannot store ------------------------------------------


async def _cancel_reason(raw: RawClient, execution_id: object, text: str) -> object:
    request = pb.CancelExecutionRequest(execution_id=str(execution_id), reason=text)
    return await raw.flows.CancelExecution(request)


async def _idempotency_key(raw: RawClient, _: object, text: str) -> object:
    return await raw.start("single", idempotency_key=text)


async def _event_id(raw: RawClient, execution_id: object, text: str) -> object:
    request = pb.SendEventRequest(execution_id=str(execution_id), name="go", event_id=text)
    return await raw.flows.SendEvent(request)


async def _list_filter(raw: RawClient, _: object, text: str) -> object:
    return await raw.flows.ListExecutions(pb.ListExecutionsRequest(schedule_name=text))


async def _cron(raw: RawClient, _: object, text: str) -> object:
    schedule = _schedule("1")
    schedule.cron = text
    return await raw.schedules.CreateSchedule(spb.CreateScheduleRequest(schedule=schedule))


async def _input_prompt(raw: RawClient, task: object, text: str) -> object:
    wait = wpb.InputWait(index=0, name="ok", kind=common_pb2.INPUT_KIND_APPROVAL, prompt=text)
    return await _suspend(raw, wpb.TaskSuspension(lease=_lease(task), input=wait))


TEXTS: dict[str, tuple[str, Setup, Send]] = {
    "CancelExecution reason": ("reason", _execution, _cancel_reason),
    "StartWorkflow idempotency_key": ("idempotency_key", _nothing, _idempotency_key),
    "SendEvent event_id": ("event_id", _execution, _event_id),
    "ListExecutions schedule_name": ("schedule_name", _nothing, _list_filter),
    "CreateSchedule cron": ("cron", _nothing, _cron),
    "SuspendTasks input prompt": ("prompt of the input wait of task 1", _leased, _input_prompt),
}


@pytest.mark.parametrize("rpc", TEXTS, ids=str)
async def test_free_text_with_a_nul_character_is_refused_by_name(
    raw: RawClient, database_url: str, rpc: str
) -> None:
    field, setup, send = TEXTS[rpc]
    context = await setup(raw)
    before = await snapshot(database_url)
    err = await rpc_error(send(raw, context, "a\x00b"))
    details = err.details() or ""
    assert err.code() == Code.INVALID_ARGUMENT, details
    assert f"{field} must not contain the NUL character" in details
    assert await snapshot(database_url) == before


async def test_pause_reason_with_a_nul_character_is_refused(
    channel: grpc.aio.Channel, database_url: str
) -> None:
    before = await snapshot(database_url)
    err = await rpc_error(
        ogrpc.OperationsServiceStub(channel).PauseQueue(
            opb.PauseQueueRequest(queue="default", reason="a\x00b")
        )
    )
    assert err.code() == Code.INVALID_ARGUMENT, err.details()
    assert "reason must not contain the NUL character" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_a_step_error_with_a_nul_character_is_kept_readable(raw: RawClient) -> None:
    # The step's own exception text is not the caller's to fix: stored, NUL shown as U+FFFD.
    task = await _leased(raw)
    assert isinstance(task, wpb.Task)
    await raw.fail(task, "Boom\x00Error", "bad\x00byte", non_retryable=True)
    execution = await raw.get(task.execution_id)
    assert execution.status == common_pb2.EXECUTION_STATUS_FAILED
    assert execution.steps[0].error.message == "bad\ufffdbyte"
    assert execution.steps[0].error.type == "Boom\ufffdError"


# -- readers of a payload stored outside the profile ----------------------------------------

DEEP = "[" * 3000 + "]" * 3000  # what an older orchestrator stored (PostgreSQL takes it)


async def _store_deep(database_url: str, execution_id: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE durable.executions SET input = $2::jsonb, result = $2::jsonb WHERE id = $1",
            execution_id,
            DEEP,
        )
        await conn.execute(
            "UPDATE durable.step_attempts SET result = $2::jsonb WHERE execution_id = $1",
            execution_id,
            DEEP,
        )
    finally:
        await conn.close()


async def _deep_execution(raw: RawClient, database_url: str) -> str:
    task = await _leased(raw)
    assert isinstance(task, wpb.Task)
    await raw.complete(task, "1")
    await _store_deep(database_url, task.execution_id)
    return task.execution_id


async def test_readers_show_a_stored_payload_too_deep_to_decode_as_raw_text(
    raw: RawClient, orch: Orchestrator, database_url: str
) -> None:
    execution_id = await _deep_execution(raw, database_url)
    other = await raw.start("single", '{"fine": true}')
    async with Client(orch.address) as client:
        execution = await client.get_execution(execution_id, include_steps=True)
        page = await client.list_executions()
    assert isinstance(execution.input, UndecodableJSON)
    assert execution.input == DEEP
    assert "nested too deeply" in execution.input.error
    assert isinstance(execution.result, UndecodableJSON)
    assert isinstance(execution.steps[0].result, UndecodableJSON)
    by_id = {e.id: e for e in page.executions}
    assert isinstance(by_id[execution_id].input, UndecodableJSON)
    assert by_id[other].input == {"fine": True}


async def test_durable_get_prints_a_stored_payload_too_deep_to_decode(
    raw: RawClient, orch: Orchestrator, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execution_id = await _deep_execution(raw, database_url)
    code = await asyncio.to_thread(main, ["--address", orch.address, "get", execution_id])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["input"] == DEEP
    code = await asyncio.to_thread(main, ["--address", orch.address, "list"])
    assert code == 0
    assert execution_id in capsys.readouterr().out
