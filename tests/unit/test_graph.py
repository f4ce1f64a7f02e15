"""Execution graphs (views/graph.py and graph_text.py): layout, Mermaid, DOT, state overlay.

The layout of a workflow with every construct is compared with the checked texts in
``graph_expected/``: the bare definition, and two executions of it (one running, one
compensated after a failure).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durable import RetryPolicy, Workflow, branch, goto, parallel, step
from durable._definition import to_definition
from durable.v1 import definition_pb2
from durable_server.engine.definitions import Definition
from durable_server.store.rows import RunningStep, StepAttemptRow
from durable_server.views.graph import Key, NodeState, PendingWait, build_graph, compute_states
from durable_server.views.graph_text import render_dot, render_mermaid

EXPECTED = Path(__file__).parent / "graph_expected"
AT = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)


def _fn(name: str) -> Any:
    def run(data: Any) -> Any:
        return data

    run.__name__ = name
    return run


def refund(data: Any) -> Any:
    return data


def merge(data: Any, results: Any) -> Any:
    return results


def _every_construct() -> Workflow:
    wf = Workflow("every_construct")

    @wf.step
    def receive(order: Any) -> Any:
        return order

    @wf.step(
        retry=RetryPolicy(max_attempts=3),
        timeout=timedelta(seconds=30),
        compensate=step(refund, timeout=timedelta(minutes=5)),
    )
    def charge(order: Any) -> Any:
        return order

    wf.branch(
        "by_kind",
        on=lambda d: d["kind"],
        cases={"invoice": [_fn("pay"), _fn("archive")], "contract": [_fn("sign")], 3: []},
        default=[_fn("review")],
    )
    wf.parallel(
        "checks",
        {
            "fraud": [
                _fn("fraud_score"),
                branch(
                    "by_risk",
                    on=lambda d: d["risky"],
                    cases={True: [_fn("manual_check")], False: [_fn("auto_ok")]},
                ),
            ],
            "stock": [_fn("stock_check"), _fn("reserve")],
        },
    )
    wf.foreach(
        "notify",
        items="users",
        steps=[_fn("render"), _fn("send_email")],
        concurrency=5,
        on_error="collect",
        into=merge,
    )

    @wf.step
    def again_or_done(data: Any) -> Any:
        return goto("receive", data) if data.get("again") else data

    return wf


def _definition(wf: Workflow) -> Definition:
    return Definition.from_proto(to_definition(wf))


EVERY = _definition(_every_construct())


def _done(
    name: str,
    status: str = "completed",
    *,
    sequence: int = 1,
    attempt: int = 1,
    kind: str = "step",
    lane: str = "",
    error: str | None = None,
    retry_at: datetime | None = None,
) -> StepAttemptRow:
    return StepAttemptRow(
        step_name=name,
        sequence=sequence,
        attempt=attempt,
        status=status,
        result_json="{}" if status == "completed" else None,
        error_json=f'{{"type": "{error}", "message": "boom"}}' if error else None,
        worker_id="w1",
        started_at=AT,
        finished_at=AT,
        retry_at=retry_at,
        kind=kind,
        lane_path=lane,
    )


def _live(
    name: str,
    status: str = "running",
    *,
    sequence: int = 1,
    attempt: int = 1,
    kind: str = "step",
    lane: str = "",
) -> RunningStep:
    return RunningStep(name, sequence, attempt, "w1", AT, kind, lane, status)


# A running execution: the invoice case was taken; in the checks, manual_check waits for a
# person and reserve runs; the foreach has not started.
RUNNING_ATTEMPTS = [
    _done("receive", sequence=1),
    _done("charge", "failed", sequence=2, error="TimeoutError", retry_at=AT),
    _done("charge", sequence=2, attempt=2),
    _done("pay", sequence=3),
    _done("archive", sequence=4),
    _done("fraud_score", sequence=5, lane="checks/fraud"),
    _done("stock_check", sequence=6, lane="checks/stock"),
]
RUNNING_LIVE = [
    _live("manual_check", "waiting", sequence=7, lane="checks/fraud"),
    _live("reserve", sequence=8, lane="checks/stock"),
]
RUNNING_WAITS = [
    PendingWait("manual_check", "input", lane_path="checks/fraud", names=("risk_review",))
]

# A compensated execution: case 3 (empty) was taken, the foreach ran three items (one
# send_email failed, collected), then again_or_done failed and refund undid charge.
COMPENSATED_ATTEMPTS = [
    _done("receive", sequence=1),
    _done("charge", sequence=2),
    _done("fraud_score", sequence=3, lane="checks/fraud"),
    _done("auto_ok", sequence=4, lane="checks/fraud"),
    _done("stock_check", sequence=5, lane="checks/stock"),
    _done("reserve", sequence=6, lane="checks/stock"),
    *[_done("render", sequence=7 + i, lane=f"notify/{i}") for i in range(3)],
    _done("send_email", sequence=10, lane="notify/0"),
    _done("send_email", sequence=11, lane="notify/1"),
    _done("send_email", "failed", sequence=12, lane="notify/2", error="SMTPError"),
    _done("notify", sequence=13, kind="into"),
    _done("again_or_done", "failed", sequence=14, error="ValueError"),
    _done("refund", sequence=15, kind="compensation"),
]


def _scenario(name: str) -> tuple[Definition, dict[Key, NodeState] | None, str]:
    if name == "definition":
        return EVERY, None, ""
    if name == "running":
        states = compute_states(EVERY, "running", RUNNING_ATTEMPTS, RUNNING_LIVE, RUNNING_WAITS)
        return EVERY, states, "every_construct - execution e-1 (running)"
    states = compute_states(EVERY, "compensated", COMPENSATED_ATTEMPTS)
    return EVERY, states, "every_construct - execution e-2 (compensated)"


SCENARIOS = ("definition", "running", "compensated")


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize(("fmt", "render"), [("mmd", render_mermaid), ("dot", render_dot)])
def test_rendering_matches_the_checked_text(scenario: str, fmt: str, render: Any) -> None:
    definition, states, title = _scenario(scenario)
    text = render(build_graph(definition, states, title=title))
    expected = (EXPECTED / f"every_construct.{scenario}.{fmt}").read_text(encoding="utf-8")
    assert text == expected


def test_rendering_is_deterministic() -> None:
    again = _definition(_every_construct())
    assert again is not EVERY
    assert render_mermaid(build_graph(again)) == render_mermaid(build_graph(EVERY))
    assert render_dot(build_graph(again)) == render_dot(build_graph(EVERY))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_graphviz_accepts_the_dot_text(scenario: str) -> None:
    path = EXPECTED / f"every_construct.{scenario}.dot"
    done = subprocess.run(
        ["dot", "-Tsvg", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


# -- the layout ------------------------------------------------------------------------


def test_every_construct_is_laid_out() -> None:
    graph = build_graph(EVERY)
    shapes = {node_id: node.shape for node_id, node in graph.nodes.items()}
    assert shapes == {
        "wf_start": "start",
        "s_receive": "step",
        "s_charge": "step",
        "c_refund": "compensation",
        "b_by_kind": "decision",
        "s_pay": "step",
        "s_archive": "step",
        "s_sign": "step",
        "s_review": "step",
        "p_checks": "fork",
        "s_fraud_score": "step",
        "b_by_risk": "decision",
        "s_manual_check": "step",
        "s_auto_ok": "step",
        "s_stock_check": "step",
        "s_reserve": "step",
        "pj_checks": "join",
        "f_notify": "fork",
        "s_render": "step",
        "s_send_email": "step",
        "fj_notify": "into",
        "s_again_or_done": "step",
        "wf_end": "end",
    }
    edges = {(e.src, e.dst, e.label, e.dashed) for e in graph.edges}
    assert ("s_charge", "c_refund", "compensate", True) in edges
    # Each case leads on to what follows the branch; the empty case goes there directly.
    assert {(e.src, e.label) for e in graph.edges if e.dst == "p_checks"} == {
        ("s_archive", ""),
        ("s_sign", ""),
        ("b_by_kind", "3"),
        ("s_review", ""),
    }
    assert {(e.dst, e.label) for e in graph.edges if e.src == "p_checks"} == {
        ("s_fraud_score", "fraud"),
        ("s_stock_check", "stock"),
    }
    assert {e.src for e in graph.edges if e.dst == "pj_checks"} == {
        "s_manual_check",
        "s_auto_ok",
        "s_reserve",
    }
    assert graph.nodes["s_charge"].lines == ["charge", "retry x3, timeout 30s"]
    assert graph.nodes["c_refund"].lines == ["refund", "timeout 5m"]


def test_an_empty_workflow_is_start_then_end() -> None:
    # The SDK refuses such a workflow; a definition from elsewhere may still have no nodes.
    graph = build_graph(Definition.from_proto(definition_pb2.WorkflowDefinition(name="none")))
    assert list(graph.nodes) == ["wf_start", "wf_end"]
    assert [(e.src, e.dst) for e in graph.edges] == [("wf_start", "wf_end")]


def test_ids_keep_safe_characters_and_stay_unique() -> None:
    wf = Workflow("odd.names-here")
    wf.step(_fn("a.b"))
    wf.step(_fn("a-b"))
    wf.step(_fn("a_b"))
    graph = build_graph(_definition(wf))
    assert [n.id for n in graph.nodes.values()] == [
        "wf_start",
        "s_a_b",
        "s_a_b_2",
        "s_a_b_3",
        "wf_end",
    ]
    assert [n.title for n in graph.nodes.values()][1:4] == ["a.b", "a-b", "a_b"]
    assert 'digraph "odd.names-here" {' in render_dot(graph)


def test_case_keys_are_labelled_readably_and_escaped() -> None:
    wf = Workflow("keys")
    wf.step(_fn("first"))
    wf.branch(
        "pick",
        on=lambda d: d,
        cases={
            "plain": [_fn("a")],
            "3": [_fn("b")],
            3: [_fn("c")],
            "default": [_fn("d")],
            'say "hi" <b>#1': [_fn("e")],
            False: [_fn("f")],
        },
        default=[_fn("g")],
    )
    graph = build_graph(_definition(wf))
    labels = [e.label for e in graph.edges if e.src == "b_pick"]
    assert labels == ["plain", '"3"', "3", '"default"', 'say "hi" <b>#1', "false", "default"]
    mermaid = render_mermaid(graph)
    assert 'b_pick -->|"say #quot;hi#quot; #lt;b#gt;#35;1"| s_e' in mermaid
    assert 'b_pick -->|"#quot;3#quot;"| s_b' in mermaid
    dot = render_dot(graph)
    assert 'b_pick -> s_e [label="say \\"hi\\" <b>#1"];' in dot


def test_a_parallel_in_a_foreach_nests_clusters() -> None:
    wf = Workflow("nested")
    wf.foreach(
        "each",
        items="xs",
        steps=[_fn("prepare"), parallel("both", [_fn("left"), _fn("right")])],
    )
    graph = build_graph(_definition(wf))
    [outer] = [item for item in graph.items if not isinstance(item, str)]
    assert outer.id == "cl_f_each"
    assert outer.title == "foreach each (concurrency 10)"
    [inner] = [item for item in outer.items if not isinstance(item, str)]
    assert inner.id == "cl_p_both"
    assert inner.items == ["p_both", "s_left", "s_right", "pj_both"]
    mermaid = render_mermaid(graph)
    assert '    subgraph cl_f_each ["foreach each (concurrency 10)"]\n' in mermaid
    assert '        subgraph cl_p_both ["parallel both"]\n' in mermaid
    assert "  subgraph cluster_cl_f_each {\n    label=" in render_dot(graph)


# -- the overlay -----------------------------------------------------------------------


def _states(
    wf: Workflow,
    status: str,
    attempts: list[StepAttemptRow],
    live: list[RunningStep] | None = None,
    waits: list[PendingWait] | None = None,
) -> dict[Key, NodeState]:
    return compute_states(_definition(wf), status, attempts, live or [], waits or [])


def test_running_execution_states() -> None:
    states = compute_states(EVERY, "running", RUNNING_ATTEMPTS, RUNNING_LIVE, RUNNING_WAITS)
    assert states == {
        ("start", ""): NodeState("completed"),
        ("step", "receive"): NodeState("completed"),
        ("step", "charge"): NodeState("completed", ("2 attempts",)),
        ("branch", "by_kind"): NodeState("completed"),
        ("step", "pay"): NodeState("completed"),
        ("step", "archive"): NodeState("completed"),
        ("step", "sign"): NodeState("skipped"),  # another case was taken
        ("step", "review"): NodeState("skipped"),
        ("fork", "checks"): NodeState("completed"),
        ("step", "fraud_score"): NodeState("completed"),
        ("branch", "by_risk"): NodeState("completed"),
        ("step", "manual_check"): NodeState("waiting", ("waits for input risk_review",)),
        ("step", "auto_ok"): NodeState("skipped"),
        ("step", "stock_check"): NodeState("completed"),
        ("step", "reserve"): NodeState("running"),
        ("join", "checks"): NodeState("pending"),
        ("fork", "notify"): NodeState("pending"),
        ("step", "render"): NodeState("pending"),
        ("step", "send_email"): NodeState("pending"),
        ("join", "notify"): NodeState("pending"),
        ("step", "again_or_done"): NodeState("pending"),
        ("end", ""): NodeState("pending"),
    }  # no compensation is due: refund has no state


def test_compensated_execution_states() -> None:
    states = compute_states(EVERY, "compensated", COMPENSATED_ATTEMPTS)
    expected_changes = {
        ("branch", "by_kind"): NodeState("completed"),  # its (empty) case 3 was taken
        ("step", "pay"): NodeState("skipped"),
        ("step", "sign"): NodeState("skipped"),
        ("step", "review"): NodeState("skipped"),
        ("step", "manual_check"): NodeState("skipped"),
        ("step", "auto_ok"): NodeState("completed"),
        ("join", "checks"): NodeState("completed"),
        ("step", "render"): NodeState("completed", ("3 lanes: 3 completed",)),
        ("step", "send_email"): NodeState("failed", ("3 lanes: 2 completed, 1 failed",)),
        ("join", "notify"): NodeState("completed"),
        ("step", "again_or_done"): NodeState("failed", ("ValueError",)),
        ("compensation", "refund"): NodeState("completed"),
        ("end", ""): NodeState("failed", ("compensated",)),
    }
    for key, state in expected_changes.items():
        assert states[key] == state, key


def test_a_pending_execution_is_all_pending() -> None:
    states = compute_states(EVERY, "pending", [])
    assert set(states.values()) == {NodeState("pending")}
    assert ("compensation", "refund") not in states


def _line() -> Workflow:
    wf = Workflow("line")

    @wf.step(retry=RetryPolicy(max_attempts=5), compensate=refund)
    def first(data: Any) -> Any:
        return data

    @wf.step
    def second(data: Any) -> Any:
        return data

    @wf.step
    def third(data: Any) -> Any:
        return data

    return wf


def test_a_scheduled_retry_waits() -> None:
    states = _states(_line(), "running", [_done("first", "failed", error="E", retry_at=AT)])
    assert states[("step", "first")] == NodeState("waiting", ("retry scheduled",))


def test_a_failure_without_retry_fails() -> None:
    states = _states(
        _line(),
        "failed",
        [_done("first", "failed", error="E", retry_at=AT), _done("first", "failed", attempt=2)],
    )
    assert states[("step", "first")] == NodeState("failed", ("2 attempts",))
    assert states[("step", "second")] == NodeState("skipped")
    assert states[("compensation", "refund")] == NodeState("skipped")
    assert states[("end", "")] == NodeState("failed", ("failed",))


def test_a_timed_out_attempt_in_a_finished_execution_fails() -> None:
    states = _states(_line(), "timed_out", [_done("first", "timed_out", retry_at=AT)])
    assert states[("step", "first")] == NodeState("failed")
    assert states[("end", "")] == NodeState("failed", ("timed_out",))


def test_a_lost_attempt_is_ready_again() -> None:
    states = _states(_line(), "running", [_done("first", "lost")])
    assert states[("step", "first")] == NodeState("pending")
    states = _states(_line(), "running", [_done("first", "lost")], [_live("first", attempt=2)])
    assert states[("step", "first")] == NodeState("running", ("2 attempts",))


def test_goto_runs_are_counted_and_the_latest_run_counts() -> None:
    attempts = [_done("first", sequence=1), _done("second", sequence=2)]
    attempts += [_done("first", sequence=3), _done("second", "failed", sequence=4, error="E")]
    states = _states(_line(), "failed", attempts)
    assert states[("step", "first")] == NodeState("completed", ("2 runs",))
    assert states[("step", "second")] == NodeState("failed", ("2 runs", "E"))
    assert states[("step", "third")] == NodeState("skipped")


def test_a_step_jumped_over_is_skipped_while_running() -> None:
    # first returned goto("third"): second never ran, and never will in this pass.
    states = _states(_line(), "running", [_done("first")], [_live("third", sequence=2)])
    assert states[("step", "second")] == NodeState("skipped")
    assert states[("step", "third")] == NodeState("running")


def test_compensations_while_compensating() -> None:
    attempts = [_done("first"), _done("second", "failed", sequence=2, error="E")]
    states = _states(_line(), "compensating", attempts)
    assert states[("compensation", "refund")] == NodeState("pending")
    assert states[("end", "")] == NodeState("running", ("compensating",))
    live = [_live("refund", kind="compensation", sequence=3)]
    states = _states(_line(), "compensating", attempts, live)
    assert states[("compensation", "refund")] == NodeState("running")
    failed = [*attempts, _done("refund", "failed", sequence=3, kind="compensation", error="X")]
    states = _states(_line(), "compensation_failed", failed)
    assert states[("compensation", "refund")] == NodeState("failed", ("X",))
    assert states[("end", "")] == NodeState("failed", ("compensation_failed",))


def test_a_cancelled_execution_skips_the_rest() -> None:
    states = _states(_line(), "cancelled", [_done("first")])
    assert states[("step", "second")] == NodeState("skipped")
    assert states[("end", "")] == NodeState("skipped", ("cancelled",))


def _routed() -> Workflow:
    wf = Workflow("routed")
    wf.branch("pick", on=lambda d: d, cases={"a": [_fn("a")], "b": [_fn("b")]})
    wf.foreach("each", items="xs", steps=[_fn("item")], concurrency=2)
    return wf


def test_route_tasks_drive_the_control_node() -> None:
    states = _states(_routed(), "running", [], [_live("pick", kind="route")])
    assert states[("branch", "pick")] == NodeState("running")
    assert states[("step", "a")] == NodeState("pending")
    failed = [_done("pick", "failed", kind="route", error="KeyError")]
    states = _states(_routed(), "failed", failed)
    assert states[("branch", "pick")] == NodeState("failed", ("KeyError",))
    assert states[("step", "a")] == NodeState("skipped")
    assert states[("fork", "each")] == NodeState("skipped")


def test_foreach_lanes_are_counted() -> None:
    attempts = [_done("pick", kind="route"), _done("a", sequence=2)]
    attempts += [_done("item", sequence=3, lane="each/0"), _done("item", sequence=4, lane="each/1")]
    live = [_live("item", sequence=5, lane="each/2"), _live("item", "waiting", lane="each/3")]
    waits = [
        PendingWait("item", "sleep", lane_path="each/3", until=AT),
        PendingWait("item", "child", lane_path="each/4", child_workflow="sub"),
    ]
    states = _states(_routed(), "running", attempts, live, waits)
    assert states[("branch", "pick")] == NodeState("completed")
    assert states[("step", "b")] == NodeState("skipped")
    assert states[("fork", "each")] == NodeState("completed")
    assert states[("step", "item")] == NodeState(
        "running",
        (
            "4 lanes: 2 completed, 1 running, 1 waiting",
            "sleeps until 2030-01-02 09:30:00 UTC",
            "waits for child workflow sub",
        ),
    )
    assert states[("join", "each")] == NodeState("pending")
    done = [*attempts, _done("item", sequence=6, lane="each/2")]
    states = _states(_routed(), "completed", done)
    assert states[("join", "each")] == NodeState("completed")
    assert states[("end", "")] == NodeState("completed")


def test_a_fail_fast_group_that_failed_fails_its_join() -> None:
    attempts = [_done("a"), _done("item", "failed", sequence=2, lane="each/0", error="E")]
    states = _states(_routed(), "failed", attempts)
    assert states[("join", "each")] == NodeState("failed")


def test_wait_descriptions() -> None:
    def describe(kind: str, **kw: Any) -> str:
        return PendingWait("s", kind, **kw).describe()

    assert describe("event", names=("paid",)) == "waits for event paid"
    assert describe("event", names=("a", "b"), mode="any") == "waits for any of events a, b"
    assert describe("event", names=("a", "b"), mode="all") == "waits for all of events a, b"
    assert describe("input", names=("ok",)) == "waits for input ok"
    assert describe("sleep") == "sleeps"
    assert describe("child") == "waits for child workflow ?"


def test_many_waits_are_summed_up() -> None:
    waits = [PendingWait("first", "event", names=(f"e{i}",)) for i in range(5)]
    states = _states(_line(), "waiting", [], [_live("first", "waiting")], waits)
    assert states[("step", "first")].notes == (
        "waits for event e0",
        "waits for event e1",
        "waits for event e2",
        "and 2 more waits",
    )


def test_states_show_in_labels_and_classes() -> None:
    states = _states(_line(), "running", [_done("first")], [_live("second", sequence=2)])
    graph = build_graph(_definition(_line()), states)
    assert graph.nodes["s_first"].lines == ["first", "retry x5", "completed"]
    assert graph.nodes["wf_start"].lines == ["start"]  # control nodes: colour only
    mermaid = render_mermaid(graph)
    assert mermaid.endswith(
        "    classDef completed fill:#d3f9d8,stroke:#2b8a3e,color:#1b4332\n"
        "    classDef running fill:#d0ebff,stroke:#1971c2,color:#0b3d91\n"
        "    classDef pending fill:#ffffff,stroke:#868e96,color:#495057\n"
        "    class wf_start,s_first completed\n"
        "    class s_second running\n"
        "    class s_third,wf_end pending\n"
    )
    dot = render_dot(graph)
    assert (
        '  s_second [label="second\\nrunning", shape="box", style="rounded,filled", '
        'fillcolor="#d0ebff", color="#1971c2", fontcolor="#0b3d91"];\n'
    ) in dot
