"""Static navigation: what comes after a node, and the control nodes met on the way."""

from __future__ import annotations

import json
from typing import Any

import pytest

from durable import Workflow, branch, foreach, parallel
from durable._serde import JSONSerializationError
from durable._walk import END, Evaluation, evaluate, needs_evaluation, next_after


def _s(name: str) -> Any:
    def fn(data: Any) -> Any:
        return data

    fn.__name__ = name
    return fn


def kind_of(data: Any) -> Any:
    return data["kind"]


def boom(data: Any) -> Any:
    raise RuntimeError("no kind today")


def build() -> Workflow:
    r"""A workflow with every kind of sequence.

    top:   start, route, after_route, checks, each, done
    route: "a" -> [in_a, nested]; "b" -> []; 3 -> [three]; true -> [yes]; (no default)
    nested: "x" -> [in_x]; default -> []
    checks: fraud -> [f1, f2]; stock -> [pick]
    pick: 1 -> [p1]; default -> [pd]
    each: [e1, e2] over data["items"]
    """
    wf = Workflow("walk")
    wf.step(_s("start"))
    wf.branch(
        "route",
        on=kind_of,
        cases={
            "a": [
                _s("in_a"),
                branch("nested", on=lambda d: d["sub"], cases={"x": [_s("in_x")]}, default=[]),
            ],
            "b": [],
            3: [_s("three")],
            True: [_s("yes")],
        },
    )
    wf.step(_s("after_route"))
    wf.parallel(
        "checks",
        {
            "fraud": [_s("f1"), _s("f2")],
            "stock": [branch("pick", on=len, cases={1: [_s("p1")]}, default=[_s("pd")])],
        },
    )
    wf.foreach("each", items="items", steps=[_s("e1"), _s("e2")])
    wf.step(_s("done"))
    return wf


WF = build()


def names(node: Any) -> str | None:
    return None if node is END else node.name


@pytest.mark.parametrize(
    ("name", "after"),
    [
        ("start", "route"),
        ("route", "after_route"),
        ("in_a", "nested"),
        ("nested", "after_route"),  # past the end of case "a": after the branch
        ("in_x", "after_route"),  # past the end of a case in a case: out twice
        ("three", "after_route"),
        ("after_route", "checks"),
        ("f1", "f2"),
        ("f2", None),  # past the end of a parallel branch: the lane is done
        ("p1", None),  # a case's end inside a parallel branch: after pick, which is its end
        ("pd", None),
        ("pick", None),
        ("checks", "each"),
        ("e1", "e2"),
        ("e2", None),  # past the end of a foreach body
        ("each", "done"),
        ("done", None),  # past the end of the top level
    ],
)
def test_next_after(name: str, after: str | None) -> None:
    assert names(next_after(WF, name)) == after


def test_same_sequence() -> None:
    layout = WF.layout
    assert layout.same_sequence("start", "done")
    assert layout.same_sequence("done", "route")
    assert layout.same_sequence("f2", "f1")
    assert layout.same_sequence("in_a", "nested")
    assert not layout.same_sequence("in_a", "route")
    assert not layout.same_sequence("f1", "pick")  # other lane of the same group
    assert not layout.same_sequence("start", "nope")
    assert layout.place("f2").owner is WF.get_node("checks")
    assert layout.place("start").owner is None
    assert layout.place("start").sequence is layout.top


def test_unknown_names_are_key_errors() -> None:
    with pytest.raises(KeyError):
        next_after(WF, "nope")
    with pytest.raises(KeyError):
        evaluate(WF, "nope", {}, inclusive=True)


def ev(value: Any) -> Evaluation:
    return Evaluation(value_json=json.dumps(value, separators=(",", ":")))


def test_a_step_before_a_step_needs_nothing() -> None:
    assert evaluate(WF, "after_route", {"kind": "a"}, inclusive=False) == {}
    assert not needs_evaluation(WF, "after_route", inclusive=False)
    assert evaluate(WF, "start", {}, inclusive=True) == {}
    assert evaluate(WF, "done", {}, inclusive=False) == {}  # the end
    assert evaluate(WF, "f2", {}, inclusive=False) == {}  # a lane's end


def test_a_branch_records_its_key_and_stops_at_the_case_step() -> None:
    assert needs_evaluation(WF, "start", inclusive=False)
    assert evaluate(WF, "start", {"kind": "a"}, inclusive=False) == {"route": ev("a")}
    assert evaluate(WF, "start", {"kind": 3}, inclusive=False) == {"route": ev(3)}
    assert evaluate(WF, "start", {"kind": True}, inclusive=False) == {"route": ev(True)}


def test_an_empty_case_continues_after_the_branch() -> None:
    got = evaluate(WF, "start", {"kind": "b"}, inclusive=False)
    assert got == {"route": ev("b")}  # then after_route, a step: stop


def test_a_nested_branch_is_evaluated_with_the_same_input() -> None:
    got = evaluate(WF, "in_a", {"kind": "a", "sub": "x"}, inclusive=False)
    assert got == {"nested": ev("x")}
    # nested's default is empty: after nested comes after_route (a step).
    assert evaluate(WF, "in_a", {"sub": "y"}, inclusive=False) == {"nested": ev("y")}


def test_branches_in_a_row() -> None:
    wf = Workflow("row")
    wf.step(_s("s0"))
    wf.branch("first", on=kind_of, cases={"go": [branch("inner", on=len, cases={3: []})]})
    wf.branch("second", on=lambda d: d["n"], cases={1: []}, default=[_s("s1")])
    wf.foreach("loop", items=lambda d: d["xs"], steps=[_s("s2")])
    data = {"kind": "go", "n": 1, "xs": [1, 2]}
    assert evaluate(wf, "s0", data, inclusive=False) == {
        "first": ev("go"),
        "inner": ev(3),  # len(data): the input passes through every branch
        "second": ev(1),
        "loop": ev([1, 2]),
    }
    # second's default holds a step: the walk stops there.
    assert evaluate(wf, "s0", {**data, "n": 5}, inclusive=False) == {
        "first": ev("go"),
        "inner": ev(3),
        "second": ev(5),
    }
    # inner matches nothing and has no default: the walk stops at it.
    assert evaluate(wf, "s0", {"kind": "go", "extra": 1}, inclusive=False) == {
        "first": ev("go"),
        "inner": ev(2),
    }


def test_no_match_and_no_default_stops() -> None:
    assert evaluate(WF, "start", {"kind": "zzz"}, inclusive=False) == {"route": ev("zzz")}


def test_a_default_is_taken_when_no_case_matches() -> None:
    # From pick itself (a route), len({}) == 0 matches nothing: default [pd], a step.
    assert evaluate(WF, "pick", {}, inclusive=True) == {"pick": ev(0)}


def test_a_failing_key_function_is_an_error_evaluation() -> None:
    wf = Workflow("bad")
    wf.step(_s("s0"))
    wf.branch("b", on=boom, cases={"a": []})
    got = evaluate(wf, "s0", {}, inclusive=False)
    error = got["b"].error
    assert got["b"].value_json is None
    assert isinstance(error, RuntimeError)
    assert str(error) == "no kind today"
    assert error.__traceback__ is not None


@pytest.mark.parametrize(
    ("key", "type_name"), [(1.5, "float"), (None, "NoneType"), (["a"], "list")]
)
def test_a_key_that_is_not_str_int_or_bool_is_an_error(key: Any, type_name: str) -> None:
    got = evaluate(WF, "route", {"kind": key}, inclusive=True)
    error = got["route"].error
    assert isinstance(error, TypeError)
    assert str(error) == f"branch 'route' key must be a str, int or bool, got {type_name}"


def test_a_missing_key_raised_by_the_lambda_is_an_error() -> None:
    error = evaluate(WF, "route", {}, inclusive=True)["route"].error
    assert isinstance(error, KeyError)


def test_foreach_records_its_items_and_stops() -> None:
    got = evaluate(WF, "checks", {"items": [1, {"a": (2, 3)}]}, inclusive=False)
    assert got == {"each": Evaluation(value_json='[1,{"a":[2,3]}]')}  # through the JSON boundary
    assert evaluate(WF, "each", {"items": ()}, inclusive=True) == {"each": ev([])}


@pytest.mark.parametrize(
    ("data", "error_type", "message"),
    [
        ({"items": {"a": 1}}, TypeError, "foreach 'each' items must be a list, got dict"),
        ({"items": "abc"}, TypeError, "foreach 'each' items must be a list, got str"),
        ({}, ValueError, "foreach 'each' items: the input has no key 'items'"),
        (
            [1],
            TypeError,
            "foreach 'each' items: the input is a list, not an object with the key 'items'",
        ),
        ({"items": [object()]}, JSONSerializationError, "foreach 'each' items: value of type"),
    ],
)
def test_foreach_item_errors(data: Any, error_type: type[Exception], message: str) -> None:
    got = evaluate(WF, "each", data, inclusive=True)
    error = got["each"].error
    assert isinstance(error, error_type)
    assert str(error).startswith(message)


def test_foreach_items_from_a_function() -> None:
    node = foreach("each", items=lambda d: d * 2, steps=[_s("x")])
    wf = Workflow("f")
    wf.foreach("each", items=node.items, steps=[_s("y")])
    assert evaluate(wf, "each", [1], inclusive=True) == {"each": ev([1, 1])}


def test_goto_targets_are_walked_inclusive() -> None:
    # A goto to the branch itself evaluates it; to a step, nothing.
    assert evaluate(WF, "route", {"kind": 3}, inclusive=True) == {"route": ev(3)}
    assert evaluate(WF, "after_route", {"kind": 3}, inclusive=True) == {}


def test_a_parallel_group_stops_the_walk() -> None:
    assert evaluate(WF, "after_route", {}, inclusive=False) == {}
    assert not needs_evaluation(WF, "checks", inclusive=True)
    wf = Workflow("p")
    wf.parallel("p", [_s("x")])
    assert evaluate(wf, "p", {}, inclusive=True) == {}


def test_a_route_from_a_parallel_lane_start() -> None:
    # The orchestrator asks for the first node of a lane with a ROUTE task.
    assert evaluate(WF, "pick", [1], inclusive=True) == {"pick": ev(1)}


def test_parallel_inside_a_case_stops() -> None:
    wf = Workflow("pc")
    wf.branch("b", on=kind_of, cases={"p": [parallel("g", [_s("x")])]})
    assert evaluate(wf, "b", {"kind": "p"}, inclusive=True) == {"b": ev("p")}
