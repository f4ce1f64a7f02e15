"""Waits at the protocol level, on the manual clock: sleeps, events, inputs, timeouts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from datetime import timedelta

import asyncpg
import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc import StatusCode as Code

from durable import Workflow, hours, step
from durable.v1 import common_pb2 as S
from durable.v1 import worker_service_pb2 as wpb
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.raw import RawClient, snapshot
from tests.helpers.wait import wait_until

waiter = Workflow("waiter")


@waiter.step
def hold(data: object) -> object:
    return data


bounded = Workflow("bounded_waiter", timeout=hours(1))


@bounded.step
def hold_bounded(data: object) -> object:
    return data


split = Workflow("split_waiter")
split.step(step(hold, name="prep"))
split.parallel("both", {"slow": [step(hold, name="slow")], "quick": [step(hold, name="quick")]})


@pytest.fixture
async def raw(channel: grpc.aio.Channel) -> RawClient:
    client = RawClient(channel)
    await client.register(waiter, bounded, split)
    return client


def _secs(n: float) -> Duration:
    d = Duration()
    d.FromTimedelta(timedelta(seconds=n))
    return d


async def _suspend(raw: RawClient, task: wpb.Task, **wait: object) -> None:
    suspension = wpb.TaskSuspension(
        lease=wpb.TaskLease(task_id=task.task_id, lease_token=task.lease_token), **wait
    )
    await raw.workers.SuspendTasks(
        wpb.SuspendTasksRequest(worker_id=raw.worker_id, suspensions=[suspension])
    )


async def _started(raw: RawClient, workflow: str = "waiter") -> tuple[str, wpb.Task]:
    execution_id = await raw.start(workflow, "{}")
    [task] = await raw.poll(wait=2)
    return execution_id, task


async def _woken(raw: RawClient) -> wpb.Task:
    """The parked step, ready again: poll until it comes back."""

    async def again() -> wpb.Task | None:
        tasks = await raw.poll()
        return tasks[0] if tasks else None

    return await wait_until(again)


async def _rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


def _send(
    raw: RawClient, execution_id: str, name: str, payload: str = "", event_id: str = ""
) -> Awaitable[pb.SendEventResponse]:
    return raw.flows.SendEvent(
        pb.SendEventRequest(
            execution_id=execution_id, name=name, payload_json=payload, event_id=event_id
        )
    )


def _answer(raw: RawClient, execution_id: str, name: str, value: str) -> Awaitable[object]:
    return raw.flows.ProvideInput(
        pb.ProvideInputRequest(execution_id=execution_id, name=name, value_json=value)
    )


async def _count(database_url: str, table: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM durable.{table}"))
    finally:
        await conn.close()


# -- sleep ----------------------------------------------------------------------------------


async def test_a_one_day_sleep_ends_when_the_clock_passes_a_day(
    raw: RawClient, orch: Orchestrator, manual_clock: ManualClock
) -> None:
    execution_id, task = await _started(raw)
    await _suspend(raw, task, sleep=wpb.SleepWait(index=0, duration=_secs(86_400)))
    parked = await raw.get(execution_id)
    assert parked.status == S.EXECUTION_STATUS_WAITING
    assert [a.status for a in parked.steps] == [S.STEP_ATTEMPT_STATUS_WAITING]

    manual_clock.advance(timedelta(days=1) - timedelta(seconds=1))
    assert await orch.engine.fire_timers() == 0  # not yet
    assert await raw.poll() == []
    manual_clock.advance(timedelta(seconds=1))  # the timer loop wakes on the clock
    again = await _woken(raw)
    assert (again.task_id, again.attempt) == (task.task_id, task.attempt)
    assert json.loads(again.memo_json) == {"0": {"ok": True, "value": None}}
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_RUNNING


async def test_sleep_until_a_past_time_does_not_wait(raw: RawClient) -> None:
    _, task = await _started(raw)
    past = wpb.SleepWait(index=0)
    past.until_time.FromSeconds(0)
    await _suspend(raw, task, sleep=past)
    again = await _woken(raw)
    assert json.loads(again.memo_json) == {"0": {"ok": True, "value": None}}


# -- events ---------------------------------------------------------------------------------


async def test_an_event_sent_before_the_wait_is_kept_and_taken_when_it_begins(
    raw: RawClient,
) -> None:
    execution_id, task = await _started(raw)
    reply = await _send(raw, execution_id, "paid", '{"amount": 5}')
    assert reply.delivered is False
    kept = await raw.get(execution_id)
    assert [(e.name, json.loads(e.payload_json)) for e in kept.unconsumed_events] == [
        ("paid", {"amount": 5})
    ]
    await _suspend(raw, task, events=wpb.EventWait(index=0, names=["paid"]))
    again = await _woken(raw)
    assert json.loads(again.memo_json) == {"0": {"ok": True, "value": {"amount": 5}}}
    assert list((await raw.get(execution_id)).unconsumed_events) == []


async def test_an_event_sent_to_a_waiting_step_wakes_it(raw: RawClient) -> None:
    execution_id, task = await _started(raw)
    await _suspend(raw, task, events=wpb.EventWait(index=3, names=["paid"]))
    listed = await raw.flows.ListPendingEvents(pb.ListPendingEventsRequest(name="paid"))
    assert [(w.execution_id, list(w.names)) for w in listed.waits] == [(execution_id, ["paid"])]
    reply = await _send(raw, execution_id, "paid", '"ok"')
    assert reply.delivered is True
    again = await _woken(raw)
    assert json.loads(again.memo_json) == {"3": {"ok": True, "value": "ok"}}
    listed = await raw.flows.ListPendingEvents(pb.ListPendingEventsRequest())
    assert list(listed.waits) == []


async def test_a_late_event_after_the_timeout_does_not_resurrect_the_wait(
    raw: RawClient, manual_clock: ManualClock
) -> None:
    execution_id, task = await _started(raw)
    wait = wpb.EventWait(
        index=0,
        names=["shipped"],
        timeout=_secs(10),
        timeout_value_json='"lost"',
        has_timeout_value=True,
    )
    await _suspend(raw, task, events=wait)
    manual_clock.advance(timedelta(seconds=10))
    again = await _woken(raw)
    assert json.loads(again.memo_json) == {"0": {"ok": True, "value": "lost", "timed_out": True}}
    reply = await _send(raw, execution_id, "shipped", '"finally"')
    assert reply.delivered is False
    assert await raw.poll() == []  # nothing woke a second time
    await raw.complete(again, '"done"')
    done = await raw.get(execution_id)
    assert done.status == S.EXECUTION_STATUS_COMPLETED
    assert json.loads(done.result_json) == "done"


async def test_a_timeout_without_a_value_is_an_error(
    raw: RawClient, manual_clock: ManualClock
) -> None:
    _, task = await _started(raw)
    await _suspend(raw, task, events=wpb.EventWait(index=0, names=["x"], timeout=_secs(5)))
    manual_clock.advance(timedelta(seconds=5))
    again = await _woken(raw)
    outcome = json.loads(again.memo_json)["0"]
    assert outcome["ok"] is False
    assert outcome["error"]["type"] == "EventTimeout"


async def test_wait_for_any_returns_which_event_came(raw: RawClient) -> None:
    execution_id, task = await _started(raw)
    wait = wpb.EventWait(index=0, names=["approved", "rejected"], mode=S.EVENT_WAIT_MODE_ANY)
    await _suspend(raw, task, events=wait)
    await _send(raw, execution_id, "rejected", '{"by": "ana"}')
    again = await _woken(raw)
    assert json.loads(again.memo_json)["0"]["value"] == {
        "event": "rejected",
        "payload": {"by": "ana"},
    }


async def test_wait_for_all_collects_every_event_whenever_it_came(raw: RawClient) -> None:
    execution_id, task = await _started(raw)
    await _send(raw, execution_id, "legal", '"ok"')  # before the wait: kept
    wait = wpb.EventWait(index=0, names=["legal", "finance"], mode=S.EVENT_WAIT_MODE_ALL)
    await _suspend(raw, task, events=wait)
    listed = await raw.flows.ListPendingEvents(pb.ListPendingEventsRequest())
    assert [list(w.received) for w in listed.waits] == [["legal"]]
    # A second "legal" is not needed by the wait: it is kept for a later one.
    assert (await _send(raw, execution_id, "legal", '"twice"')).delivered is False
    assert await raw.poll() == []
    await _send(raw, execution_id, "finance", '"fine"')
    again = await _woken(raw)
    assert json.loads(again.memo_json)["0"]["value"] == {"legal": "ok", "finance": "fine"}
    assert [e.name for e in (await raw.get(execution_id)).unconsumed_events] == ["legal"]


async def test_events_for_unknown_or_finished_executions_are_refused(
    raw: RawClient, database_url: str
) -> None:
    err = await _rpc_error(_send(raw, "0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", "x"))
    assert err.code() == Code.NOT_FOUND
    execution_id, task = await _started(raw)
    await raw.complete(task, '"done"')
    before = await snapshot(database_url)
    err = await _rpc_error(_send(raw, execution_id, "x", "1"))
    assert err.code() == Code.FAILED_PRECONDITION
    assert "is completed" in (err.details() or "")
    err = await _rpc_error(_send(raw, execution_id, "bad name!", "1"))
    assert err.code() == Code.INVALID_ARGUMENT
    err = await _rpc_error(_send(raw, execution_id, "x", "{oops"))
    assert err.code() == Code.INVALID_ARGUMENT
    assert await snapshot(database_url) == before


@pytest.mark.parametrize("name", ["paid\n", "café", "2fa", "a b", "x" * 129])
async def test_event_and_input_names_follow_the_rule_of_names(
    raw: RawClient, database_url: str, name: str
) -> None:
    execution_id, _ = await _started(raw)
    before = await snapshot(database_url)
    for call in (_send(raw, execution_id, name, "1"), _answer(raw, execution_id, name, "1")):
        err = await _rpc_error(call)
        assert err.code() == Code.INVALID_ARGUMENT
        assert err.details() == (
            f"name {name!r} is invalid: use 1-128 characters from ASCII letters, digits, "
            "'_', '-', '.', starting with a letter or '_'"
        )
    assert await snapshot(database_url) == before


async def test_a_send_retried_with_its_event_id_is_taken_once(
    raw: RawClient, database_url: str
) -> None:
    execution_id, _ = await _started(raw)
    first = await _send(raw, execution_id, "paid", '{"n": 1}', event_id="hook-1")
    assert (first.delivered, first.duplicate) == (False, False)
    again = await _send(raw, execution_id, "paid", '{"n": 1}', event_id="hook-1")
    assert (again.delivered, again.duplicate) == (False, True)
    kept = await raw.get(execution_id)
    assert [e.name for e in kept.unconsumed_events] == ["paid"]  # kept once, not twice
    # Another id is another event; the same id on another execution is unrelated too.
    other = await _send(raw, execution_id, "paid", '{"n": 2}', event_id="hook-2")
    assert other.duplicate is False
    assert len((await raw.get(execution_id)).unconsumed_events) == 2
    assert await _count(database_url, "event_receipts") == 2


async def test_a_retried_send_that_finished_the_execution_answers_as_the_first(
    raw: RawClient, database_url: str
) -> None:
    execution_id, task = await _started(raw)
    await _suspend(raw, task, events=wpb.EventWait(index=0, names=["paid"]))
    first = await _send(raw, execution_id, "paid", '"ok"', event_id="pay-7")
    assert (first.delivered, first.duplicate) == (True, False)
    woken = await _woken(raw)
    await raw.complete(woken, '"done"')
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_COMPLETED
    before = await snapshot(database_url)
    # The caller never saw the first answer and retries: no FAILED_PRECONDITION, no change.
    again = await _send(raw, execution_id, "paid", '"ok"', event_id="pay-7")
    assert (again.delivered, again.duplicate) == (True, True)
    # A new id is a new event, and the finished execution refuses it.
    err = await _rpc_error(_send(raw, execution_id, "paid", '"ok"', event_id="pay-8"))
    assert err.code() == Code.FAILED_PRECONDITION
    err = await _rpc_error(_send(raw, execution_id, "paid", "1", event_id="x" * 256))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "event_id" in (err.details() or "")
    assert await snapshot(database_url) == before


async def test_concurrent_sends_with_one_event_id_deliver_once(raw: RawClient) -> None:
    execution_id, task = await _started(raw)
    await _suspend(raw, task, events=wpb.EventWait(index=0, names=["paid"]))
    replies = await asyncio.gather(
        *(_send(raw, execution_id, "paid", f"{i}", event_id="same") for i in range(8))
    )
    assert sorted(r.duplicate for r in replies) == [False] + [True] * 7
    assert all(r.delivered for r in replies)
    woken = await _woken(raw)
    assert list((await raw.get(execution_id)).unconsumed_events) == []
    assert len(json.loads(woken.memo_json)) == 1


async def test_an_execution_whose_last_running_branch_ends_while_another_waits_is_waiting(
    raw: RawClient,
) -> None:
    execution_id, prep = await _started(raw, "split_waiter")
    await raw.complete(prep, "{}")
    tasks = {t.lane_path: t for t in await raw.poll(wait=2)}
    assert set(tasks) == {"both/slow", "both/quick"}
    await _suspend(raw, tasks["both/slow"], events=wpb.EventWait(index=0, names=["go"]))
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_RUNNING  # quick runs
    await raw.complete(tasks["both/quick"], '"q"')
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_WAITING
    await _send(raw, execution_id, "go", '"now"')
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_RUNNING
    again = await _woken(raw)
    await raw.complete(again, '"s"')
    done = await raw.get(execution_id)
    assert done.status == S.EXECUTION_STATUS_COMPLETED
    assert json.loads(done.result_json) == {"quick": "q", "slow": "s"}


# -- human input ----------------------------------------------------------------------------


async def test_an_approval_is_listed_checked_and_answered_once(
    raw: RawClient, database_url: str
) -> None:
    execution_id, task = await _started(raw)
    wait = wpb.InputWait(
        index=0,
        name="manager",
        kind=S.INPUT_KIND_APPROVAL,
        prompt="Pay 5000 EUR?",
        timeout=_secs(3600),
    )
    await _suspend(raw, task, input=wait)
    listed = await raw.flows.ListPendingInputs(pb.ListPendingInputsRequest())
    [pending] = listed.inputs
    assert (pending.execution_id, pending.name, pending.kind, pending.prompt) == (
        execution_id,
        "manager",
        S.INPUT_KIND_APPROVAL,
        "Pay 5000 EUR?",
    )
    assert pending.HasField("deadline_at")

    before = await snapshot(database_url)
    err = await _rpc_error(_answer(raw, execution_id, "manager", '"yes"'))
    assert err.code() == Code.INVALID_ARGUMENT
    assert "takes true or false" in (err.details() or "")
    err = await _rpc_error(_answer(raw, execution_id, "boss", "true"))
    assert err.code() == Code.FAILED_PRECONDITION
    assert "no pending input named 'boss' (pending: 'manager')" in (err.details() or "")
    assert await snapshot(database_url) == before

    await _answer(raw, execution_id, "manager", '{"approved": true, "comment": "fine"}')
    again = await _woken(raw)
    assert json.loads(again.memo_json)["0"]["value"] == {"approved": True, "comment": "fine"}
    err = await _rpc_error(_answer(raw, execution_id, "manager", "true"))
    assert err.code() == Code.FAILED_PRECONDITION
    assert list((await raw.flows.ListPendingInputs(pb.ListPendingInputsRequest())).inputs) == []


@pytest.mark.parametrize(
    ("wait", "bad", "message", "good"),
    [
        (
            wpb.InputWait(kind=S.INPUT_KIND_SINGLE_CHOICE, choices=["red", "blue"]),
            '"green"',
            "takes one of ['red', 'blue']",
            '"blue"',
        ),
        (
            wpb.InputWait(kind=S.INPUT_KIND_MULTI_CHOICE, choices=["a", "b", "c"]),
            '["a", "a"]',
            "list of distinct choices",
            '["c", "a"]',
        ),
        (wpb.InputWait(kind=S.INPUT_KIND_FREE_TEXT), "3", "takes a string", '"three"'),
        (
            wpb.InputWait(
                kind=S.INPUT_KIND_FORM,
                fields=[
                    S.InputField(name="iban", type="string", required=True),
                    S.InputField(name="amount", type="number", required=False),
                ],
            ),
            '{"amount": 3}',
            "missing required field(s) ['iban']",
            '{"iban": "DE00", "amount": 2.5}',
        ),
    ],
    ids=["single-choice", "multi-choice", "free-text", "form"],
)
async def test_answers_must_fit_the_kind(
    raw: RawClient, wait: wpb.InputWait, bad: str, message: str, good: str
) -> None:
    execution_id, task = await _started(raw)
    wait.index, wait.name = 0, "ask"
    await _suspend(raw, task, input=wait)
    err = await _rpc_error(_answer(raw, execution_id, "ask", bad))
    assert err.code() == Code.INVALID_ARGUMENT
    assert message in (err.details() or "")
    await _answer(raw, execution_id, "ask", good)
    again = await _woken(raw)
    assert json.loads(again.memo_json)["0"]["value"] == json.loads(good)


# -- cancel and timeouts while waiting ---------------------------------------------------------


async def test_cancelling_a_waiting_execution_cleans_up_its_waits_and_timers(
    raw: RawClient, database_url: str
) -> None:
    execution_id, task = await _started(raw)
    wait = wpb.InputWait(index=0, name="ok", kind=S.INPUT_KIND_APPROVAL, timeout=_secs(60))
    await _suspend(raw, task, input=wait)
    assert await _count(database_url, "waits") == 1
    assert await _count(database_url, "timers") == 1
    await raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=execution_id))
    assert (await raw.get(execution_id)).status == S.EXECUTION_STATUS_CANCELLED
    for table in ("waits", "timers", "tasks"):
        assert await _count(database_url, table) == 0, table
    assert list((await raw.flows.ListPendingInputs(pb.ListPendingInputsRequest())).inputs) == []


async def test_the_workflow_timeout_applies_while_waiting(
    raw: RawClient, manual_clock: ManualClock, database_url: str
) -> None:
    execution_id, task = await _started(raw, "bounded_waiter")
    await _suspend(raw, task, sleep=wpb.SleepWait(index=0, duration=_secs(86_400)))
    manual_clock.advance(timedelta(hours=1))

    async def timed_out() -> bool:
        return (await raw.get(execution_id)).status == S.EXECUTION_STATUS_TIMED_OUT

    await wait_until(timed_out)
    assert await _count(database_url, "waits") == 0


async def test_an_event_sent_while_the_wait_begins_is_never_lost(raw: RawClient) -> None:
    # The send and the suspension race: whichever commits first, the step must wake once
    # with the payload (both lock the execution's row, so one sees the other's row).
    started = [await _started(raw) for _ in range(20)]
    await asyncio.gather(
        *(
            coro
            for n, (execution_id, task) in enumerate(started)
            for coro in (
                _suspend(raw, task, events=wpb.EventWait(index=0, names=["go"])),
                _send(raw, execution_id, "go", str(n)),
            )
        )
    )
    woken: dict[str, object] = {}

    async def all_woken() -> bool:
        for t in await raw.poll(max_tasks=20):
            woken[t.execution_id] = json.loads(t.memo_json)["0"]["value"]
        return len(woken) == len(started)

    await wait_until(all_woken)
    assert woken == {execution_id: n for n, (execution_id, _) in enumerate(started)}
    for execution_id, _ in started:
        assert list((await raw.get(execution_id)).unconsumed_events) == []
