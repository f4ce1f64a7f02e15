"""Every control-flow construct end to end: PostgreSQL, the orchestrator, a worker process.

The workflows are in :mod:`tests.e2e.control_flows`; one worker process runs them all.
Each test checks the result and the recorded history (attempts, kinds, lanes).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from durable.v1 import common_pb2 as S
from durable.v1 import workflow_service_pb2 as pb
from tests.faults.procs import worker_process
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

FLOWS = "tests.e2e.control_flows"
DONE = {
    S.EXECUTION_STATUS_COMPLETED,
    S.EXECUTION_STATUS_FAILED,
    S.EXECUTION_STATUS_COMPENSATED,
    S.EXECUTION_STATUS_COMPENSATION_FAILED,
}


@pytest.fixture
async def raw(database_url: str, tmp_path: Path) -> AsyncIterator[RawClient]:
    async with (
        running_orchestrator(database_url) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
        worker_process(
            orch.address,
            "cf-worker",
            tmp_path,
            step_log=tmp_path / "steps.log",
            module=FLOWS,
            concurrency=8,
            # Not "nobody_polls_this": the children started there never run.
            args=["--queue", "default"],
        ),
    ):
        yield RawClient(channel)


async def run(raw: RawClient, workflow: str, data: Any) -> pb.Execution:
    execution_id = await raw.start(workflow, json.dumps(data))

    async def ended() -> pb.Execution | None:
        got = await raw.get(execution_id)
        return got if got.status in DONE else None

    return await wait_until(ended, timeout=30)


def steps(execution: pb.Execution, *, kind: int = S.TASK_KIND_STEP) -> list[tuple[str, str]]:
    """(step name, lane) of each completed attempt of ``kind``, in sequence order."""
    return [
        (a.step_name, a.lane_path)
        for a in sorted(execution.steps, key=lambda a: (a.sequence, a.attempt))
        if a.kind == kind and a.status == S.STEP_ATTEMPT_STATUS_COMPLETED
    ]


async def test_goto_loops_back_until_done(raw: RawClient) -> None:
    ex = await run(raw, "cf_goto", {"limit": 4})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"final": 4, "seen": [1, 2, 3, 4]}
    assert [name for name, _ in steps(ex)] == ["init", "bump", "bump", "bump", "bump", "report"]


async def test_a_goto_loop_that_never_ends_hits_the_step_run_limit(raw: RawClient) -> None:
    ex = await run(raw, "cf_runaway", None)
    assert ex.status == S.EXECUTION_STATUS_FAILED
    assert ex.error.type == "StepRunLimit"
    assert "more than 25 step runs" in ex.error.message
    assert len(steps(ex)) == 25


@pytest.mark.parametrize(
    ("kind", "trail"),
    [
        ("invoice", ["classify", "pay_invoice", "archive_invoice", "file_away"]),
        ("contract", ["classify", "sign_contract", "file_away"]),
        (7, ["classify", "lucky_seven", "file_away"]),
        ("fax", ["classify", "manual_review", "file_away"]),
    ],
)
async def test_branch_runs_the_matching_case_then_continues(
    raw: RawClient, kind: Any, trail: list[str]
) -> None:
    ex = await run(raw, "cf_branch", {"kind": kind})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"trail": trail}
    assert [name for name, _ in steps(ex)] == trail
    # The worker that finished "classify" evaluated the branch: no extra round trip.
    assert steps(ex, kind=S.TASK_KIND_ROUTE) == []


async def test_branch_without_a_matching_case_or_default_fails_clearly(raw: RawClient) -> None:
    ex = await run(raw, "cf_branch_strict", {"kind": "unknown"})
    assert ex.status == S.EXECUTION_STATUS_FAILED
    assert ex.error.type == "BranchNoMatch"
    assert "'only_known' has no case for key \"unknown\"" in ex.error.message


async def test_parallel_runs_each_branch_as_its_own_lane(raw: RawClient) -> None:
    ex = await run(raw, "cf_parallel", {"id": 3, "amount": 250})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {
        "approved": True,
        "stock": {"order": 3, "in_stock": True, "reserved": True},
    }
    assert sorted(steps(ex)) == [
        ("decide", ""),
        ("fraud_check", "checks/fraud"),
        ("load_order", ""),
        ("reserve", "checks/stock"),
        ("stock_check", "checks/stock"),
    ]


async def test_parallel_collect_with_into_sees_every_outcome(raw: RawClient) -> None:
    ex = await run(raw, "cf_parallel_collect", {"id": 9})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"id": 9, "ok": {"good": "fetched 9"}, "failed": ["bad"]}
    assert steps(ex, kind=S.TASK_KIND_INTO) == [("sources", "")]


async def test_parallel_fail_fast_fails_with_the_failing_branch(raw: RawClient) -> None:
    ex = await run(raw, "cf_parallel_failfast", {"id": 1})
    assert ex.status == S.EXECUTION_STATUS_FAILED
    assert ex.error.type == "ParallelFailed"
    assert "branch 'bad' of parallel 'sources' failed" in ex.error.message
    # The failing lane's own error comes with it.
    assert ex.error.HasField("cause")
    assert ex.error.cause.type == "NonRetryableError"
    assert "the service is gone" in ex.error.cause.message
    assert "fetch_broken" in ex.error.cause.traceback


async def test_foreach_runs_each_item_and_keeps_item_order(raw: RawClient) -> None:
    numbers = [5, 3, 8, 1, 9, 2, 7]
    ex = await run(raw, "cf_foreach", {"numbers": numbers})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {
        "sum": sum(n * n for n in numbers),
        "order": numbers,
    }
    lanes = sorted(lane for name, lane in steps(ex) if name == "square")
    assert lanes == sorted(f"square_all/{i}" for i in range(len(numbers)))


async def test_a_foreach_with_fewer_items_than_its_concurrency(raw: RawClient) -> None:
    ex = await run(raw, "cf_foreach", {"numbers": [4, 6]})  # concurrency=3
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"sum": 52, "order": [4, 6]}


async def test_an_into_merge_that_returns_a_goto_runs_the_group_again(raw: RawClient) -> None:
    ex = await run(raw, "cf_into_goto", {"pages": 3})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"pages": 3, "seen": [0, 1000, 10, 1010, 20, 1020]}
    intos = [a for a in ex.steps if a.kind == S.TASK_KIND_INTO]
    assert [a.status for a in intos] == [S.STEP_ATTEMPT_STATUS_COMPLETED] * 3
    assert [name for name, _ in steps(ex)] == ["first_page", *["fetch"] * 6, "summary"]


async def test_foreach_over_no_items_continues_with_an_empty_list(raw: RawClient) -> None:
    ex = await run(raw, "cf_foreach", {"numbers": []})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"sum": 0, "order": []}


async def test_control_nodes_first_in_a_lane_are_routed_by_a_worker(raw: RawClient) -> None:
    ex = await run(raw, "cf_nested", {"left": "x", "right": "y", "trail": []})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {
        "left": {"left": "x", "right": "y", "trail": ["left_x"]},
        "right": {"left": "x", "right": "y", "trail": ["right_other"]},
    }
    # The workflow starts with a group, and each lane with a branch: nothing had evaluated
    # them, so a worker was asked to (a ROUTE task each).
    assert sorted(steps(ex, kind=S.TASK_KIND_ROUTE)) == [
        ("lanes", ""),
        ("left_pick", "lanes/left"),
        ("right_pick", "lanes/right"),
    ]


async def test_a_failing_third_step_compensates_in_reverse_order(raw: RawClient) -> None:
    ex = await run(raw, "cf_saga", {"id": 5})
    assert ex.status == S.EXECUTION_STATUS_COMPENSATED, ex.error
    # The error is the failure that started the compensation, as the README says.
    assert ex.error.type == "NonRetryableError"
    assert ex.error.message.startswith("step 'ship' failed")
    assert "no courier" in ex.error.message
    assert [n for n, _ in steps(ex)] == ["reserve_stock", "charge_card"]
    comps = [
        (a.step_name, json.loads(a.result_json))
        for a in sorted(ex.steps, key=lambda a: a.sequence)
        if a.kind == S.TASK_KIND_COMPENSATION
    ]
    assert comps == [("refund", {"refunded": "ch-5"}), ("release_stock", {"released": "res-5"})]


async def test_a_failing_compensation_ends_compensation_failed_after_the_others_ran(
    raw: RawClient,
) -> None:
    ex = await run(raw, "cf_saga", {"id": 6, "refund_fails": True})
    assert ex.status == S.EXECUTION_STATUS_COMPENSATION_FAILED
    comps = [
        (a.step_name, a.attempt, a.status)
        for a in sorted(ex.steps, key=lambda a: (a.sequence, a.attempt))
        if a.kind == S.TASK_KIND_COMPENSATION
    ]
    assert comps == [
        ("refund", 1, S.STEP_ATTEMPT_STATUS_FAILED),
        ("refund", 2, S.STEP_ATTEMPT_STATUS_FAILED),
        ("release_stock", 1, S.STEP_ATTEMPT_STATUS_COMPLETED),
    ]
    assert "no courier" in ex.error.message


# -- child workflows ------------------------------------------------------------------------


async def children_of(raw: RawClient, parent_id: str) -> list[pb.Execution]:
    reply = await raw.flows.ListChildren(pb.ListChildrenRequest(parent_execution_id=parent_id))
    return list(reply.executions)


async def test_call_and_start_children_from_a_step(raw: RawClient) -> None:
    ex = await run(raw, "cf_parent", {"n": 4})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    result = json.loads(ex.result_json)
    assert result["called"] == {"child_saw": 40}
    assert "the child failed on purpose" in result["failure"]
    kids = await children_of(raw, ex.id)
    assert len(kids) == 3
    assert {k.parent_execution_id for k in kids} == {ex.id}
    assert result["fired"] in {k.id for k in kids}
    by_status = sorted(S.ExecutionStatus.Name(k.status) for k in kids)
    # The fired child may still be running when the parent completes; it is linked either way.
    assert by_status.count("EXECUTION_STATUS_FAILED") == 1
    # The step suspended twice (once per call) and ran three times; recorded once.
    assert [name for name, _ in steps(ex)] == ["call_children"]


async def test_a_retried_parent_step_does_not_start_a_second_child(raw: RawClient) -> None:
    ex = await run(raw, "cf_parent_retry", {"n": 2})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"result": {"child_saw": 20}, "attempt": 3}
    attempts = [(a.attempt, a.status) for a in ex.steps if a.step_name == "call_then_flake"]
    assert attempts == [
        (1, S.STEP_ATTEMPT_STATUS_FAILED),
        (2, S.STEP_ATTEMPT_STATUS_FAILED),
        (3, S.STEP_ATTEMPT_STATUS_COMPLETED),
    ]
    kids = await children_of(raw, ex.id)
    assert len(kids) == 1
    assert kids[0].status == S.EXECUTION_STATUS_COMPLETED


async def test_a_call_that_times_out_returns_the_timeout_value_and_cancels_the_child(
    raw: RawClient,
) -> None:
    ex = await run(raw, "cf_parent_timeout", {"timeout_ms": 200})
    assert ex.status == S.EXECUTION_STATUS_COMPLETED, ex.error
    assert json.loads(ex.result_json) == {"got": {"gave_up": True}}
    [kid] = await children_of(raw, ex.id)
    assert kid.status == S.EXECUTION_STATUS_CANCELLED
    assert "stopped waiting" in kid.error.message


async def test_cancelling_a_waiting_parent_cancels_its_children(raw: RawClient) -> None:
    parent_id = await raw.start("cf_parent_waits", json.dumps({"n": 1}))

    async def waiting() -> pb.Execution | None:
        got = await raw.get(parent_id)
        return got if got.status == S.EXECUTION_STATUS_WAITING else None

    parked = await wait_until(waiting)
    [attempt] = parked.steps
    assert attempt.status == S.STEP_ATTEMPT_STATUS_WAITING
    assert attempt.worker_id == ""  # no worker is held while it waits
    [kid] = await children_of(raw, parent_id)
    assert kid.status == S.EXECUTION_STATUS_PENDING

    await raw.flows.CancelExecution(pb.CancelExecutionRequest(execution_id=parent_id))
    [kid] = await children_of(raw, parent_id)
    assert kid.status == S.EXECUTION_STATUS_CANCELLED
    assert "cancelled with its parent" in kid.error.message
