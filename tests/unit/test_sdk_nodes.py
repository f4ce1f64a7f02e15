"""Control-flow nodes in the DSL: building, checking and turning them into a definition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import (
    Goto,
    RetryPolicy,
    StepContext,
    Workflow,
    branch,
    foreach,
    goto,
    parallel,
    seconds,
    step,
)
from durable._definition import definition_hash, to_definition
from durable._nodes import Branch, Foreach, Parallel, StepFunction, StepSpec
from durable.v1 import definition_pb2 as d
from tests.helpers.aio import yield_to_loop


def classify(doc: Any) -> Any:
    return doc


def refund(charged: Any) -> Any:
    return {"refunded": charged}


@step(retry=RetryPolicy(max_attempts=3), timeout=seconds(30), compensate=refund)
def charge(data: Any) -> Any:
    return {"charged": data}


def ship(data: Any) -> Any:
    return data


def sign(data: Any) -> Any:
    return data


def manual(data: Any) -> Any:
    return data


def fraud_check(data: Any) -> Any:
    return data


def stock_check(data: Any) -> Any:
    return data


def reserve(data: Any) -> Any:
    return data


def merge(data: Any, results: Any) -> Any:
    return {"data": data, "results": results}


def send_email(user: Any) -> Any:
    return user


def finish(data: Any) -> Any:
    return data


def build(max_step_runs: int | None = 1000) -> Workflow:
    """The workflow of the issue's example, rebuilt fresh each time."""
    wf = Workflow("docs", max_step_runs=max_step_runs)
    wf.step(classify)
    wf.branch(
        "by_kind",
        on=lambda doc: doc["kind"],
        cases={"invoice": [charge, ship], "contract": [sign]},
        default=[manual],
    )
    wf.parallel("checks", {"fraud": [fraud_check], "stock": [stock_check, reserve]}, into=merge)
    wf.foreach("notify", items=lambda d: d["users"], steps=[send_email], concurrency=50)
    wf.step(finish)
    return wf


# -- step() ------------------------------------------------------------------------------


def test_a_step_wrapped_function_is_still_the_function() -> None:
    assert isinstance(charge, StepFunction)
    assert charge(5) == {"charged": 5}
    assert charge.__name__ == "charge"
    assert charge.__wrapped__ is charge._fn
    spec = charge.spec
    assert (spec.name, spec.retry, spec.timeout) == (
        "charge",
        RetryPolicy(max_attempts=3),
        seconds(30),
    )
    assert spec.compensation is not None
    assert spec.compensation.name == "refund"
    assert spec.compensation.retry is None
    assert spec.compensation.fn is refund


def test_step_without_options_and_with_a_name() -> None:
    plain = step(ship)
    assert plain.spec.name == "ship"
    assert plain.spec.retry is None
    again = step(charge, name="charge_again")  # keeps charge's other options
    assert again.spec.name == "charge_again"
    assert again.spec.retry == RetryPolicy(max_attempts=3)
    assert again.spec.compensation == charge.spec.compensation
    assert again(1) == {"charged": 1}


def test_step_async_and_context() -> None:
    @step
    async def fetch(data: Any, ctx: StepContext) -> Any:
        await yield_to_loop()
        return ctx.step_name

    assert fetch.spec.is_async
    assert fetch.spec.takes_context


def test_a_compensation_wrapped_by_step_has_its_own_options() -> None:
    undo = step(refund, name="undo_charge", retry=RetryPolicy(max_attempts=5), timeout=seconds(3))
    wf = Workflow("wf")
    wf.step(compensate=undo)(ship)
    comp = wf.get_step("ship").compensation
    assert comp is not None
    assert (comp.name, comp.retry, comp.timeout) == (
        "undo_charge",
        RetryPolicy(max_attempts=5),
        seconds(3),
    )
    assert wf.get_compensation("undo_charge") is comp
    msg = to_definition(wf).nodes[0].step.compensation
    assert msg.name == "undo_charge"
    assert msg.retry.max_attempts == 5
    assert msg.timeout.ToTimedelta() == seconds(3)


def test_bad_compensations() -> None:
    def nothing() -> None:
        pass

    with pytest.raises(ValueError, match="a compensation cannot have a compensation"):
        step(ship, compensate=charge)
    with pytest.raises(ValueError, match=r"compensation 'nothing' must take the result of the"):
        step(ship, compensate=nothing)
    with pytest.raises(ValueError, match=r"compensation name '<lambda>' is invalid.*name="):
        step(ship, compensate=lambda r: r)
    wf = Workflow("wf")
    with pytest.raises(
        ValueError,
        match="the name 'ship' is used twice: step at the top level and compensation of step "
        "'ship' at the top level",
    ):
        wf.step(compensate=ship)(ship)


def test_bad_step_options() -> None:
    with pytest.raises(ValueError, match="step 'ship': timeout must be positive"):
        step(ship, timeout=timedelta(0))
    with pytest.raises(ValueError, match="step 'ship': retry must be a RetryPolicy"):
        step(ship, retry=3)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=r"step name '<lambda>' is invalid.*step\(fn, name=...\)"):
        step(lambda d: d)
    assert step(lambda d: d, name="anon").spec.name == "anon"
    with pytest.raises(ValueError, match="a step must be a function, got int"):
        step(3)  # type: ignore[call-overload]


def test_wf_step_takes_a_step_wrapped_function() -> None:
    wf = Workflow("wf")
    assert wf.step(charge) is charge
    assert wf.get_step("charge") == charge.spec
    patient = step(ship, retry=RetryPolicy(max_attempts=4))
    assert wf.step(name="ship_slowly", timeout=seconds(1))(patient) is patient
    slow = wf.get_step("ship_slowly")
    assert (slow.fn, slow.retry, slow.timeout) == (ship, RetryPolicy(max_attempts=4), seconds(1))
    assert [s.name for s in wf.steps] == ["charge", "ship_slowly"]


def test_wf_step_compensation_names_clash_across_steps() -> None:
    wf = Workflow("wf")
    wf.step(charge)
    with pytest.raises(
        ValueError,
        match="the name 'refund' is used twice: compensation of step 'charge' at the top level "
        "and compensation of step 'charge_again' at the top level",
    ):
        wf.step(charge, name="charge_again")  # type: ignore[call-overload]


# -- goto --------------------------------------------------------------------------------


def test_goto_values() -> None:
    jump = goto("bump", {"n": 1})
    assert isinstance(jump, Goto)
    assert (jump.target, jump.data) == ("bump", {"n": 1})
    assert jump == Goto("bump", {"n": 1})
    assert jump != Goto("bump", {"n": 2})
    assert repr(jump) == "goto('bump', {'n': 1})"
    assert goto("x").data is None
    with pytest.raises(ValueError, match="goto target name 'a b' is invalid"):
        goto("a b")


# -- branch ------------------------------------------------------------------------------


def test_branch_node() -> None:
    node = branch("pick", on=lambda d: d, cases={"a": [ship], 3: [charge, sign], True: []})
    assert isinstance(node, Branch)
    assert [(c.key, c.key_json) for c in node.cases] == [("a", '"a"'), (3, "3"), (True, "true")]
    assert [n.name for n in node.cases[1].nodes] == ["charge", "sign"]
    assert node.cases[1].nodes[0] == charge.spec
    assert node.default is None
    assert node.choose('"a"') == node.cases[0].nodes
    assert node.choose("true") == ()
    assert node.choose("1") is None  # no match, no default
    with_default = branch("pick", on=len, cases={"a": [ship]}, default=[])
    assert with_default.choose('"b"') == ()


def test_branch_key_json_is_compact_and_ascii() -> None:
    node = branch("pick", on=len, cases={"é x": [ship]})
    assert node.cases[0].key_json == '"\\u00e9 x"'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cases": {}}, "branch 'pick' has no cases"),
        ({"cases": {1.5: [ship]}}, r"case key 1.5 is a float; use a str, int or bool"),
        ({"cases": {None: [ship]}}, "case key None is a NoneType"),
        ({"cases": [ship]}, "cases must be a dict"),
        ({"cases": {"a": ship}}, r"branch 'pick' case \"a\" must be a list of steps"),
        ({"cases": {"a": "ship"}}, r"must be a list of steps and nodes, got str"),
        ({"cases": {"a": [3]}}, r"must hold step functions and nodes .*, got int"),
        ({"cases": {"a": [ship]}, "on": "kind"}, "branch 'pick': on must be a function"),
        ({"cases": {"a": [ship]}, "on": merge}, "on must take one positional parameter"),
        ({"cases": {"a": [ship]}, "default": ship}, r"branch 'pick' default must be a list"),
        (
            {"cases": {"a": [ship], "b": [ship]}},
            r"branch 'pick': the name 'ship' is used twice: step in branch 'pick' case \"a\" "
            r"and step in branch 'pick' case \"b\"",
        ),
        (
            {"cases": {"a": [step(ship, name="pick")]}},
            r"the name 'pick' is used twice: the branch itself and step in branch 'pick' case",
        ),
    ],
)
def test_bad_branches(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("on", lambda d: d)
    with pytest.raises(ValueError, match=message):
        branch("pick", **kwargs)


def test_async_key_functions_are_refused() -> None:
    async def key(data: Any) -> str:
        return "a"

    with pytest.raises(ValueError, match="on must be a plain function, not async"):
        branch("pick", on=key, cases={"a": [ship]})
    with pytest.raises(ValueError, match="items must be a plain function, not async"):
        foreach("each", items=key, steps=[ship])


def test_bad_node_names() -> None:
    with pytest.raises(ValueError, match="branch name 'a b' is invalid"):
        branch("a b", on=len, cases={"a": [ship]})
    with pytest.raises(ValueError, match="parallel name '' is invalid"):
        parallel("", [ship])
    with pytest.raises(ValueError, match="parallel branch name 'x/y' is invalid"):
        parallel("p", {"x/y": [ship]})
    with pytest.raises(ValueError, match="foreach name '1x' is invalid"):
        foreach("1x", items="k", steps=[ship])


# -- parallel ----------------------------------------------------------------------------


def test_parallel_node() -> None:
    node = parallel("checks", {"fraud": [fraud_check], "stock": [stock_check, reserve]})
    assert isinstance(node, Parallel)
    assert [(b.name, [n.name for n in b.nodes]) for b in node.branches] == [
        ("fraud", ["fraud_check"]),
        ("stock", ["stock_check", "reserve"]),
    ]
    assert (node.on_error, node.into) == ("fail_fast", None)


def test_parallel_from_a_list_names_each_branch_after_its_node() -> None:
    inner = branch("inner", on=len, cases={1: [ship]})
    node = parallel("checks", [fraud_check, step(stock_check, name="stock"), inner])
    assert [b.name for b in node.branches] == ["fraud_check", "stock", "inner"]
    assert node.branches[2].nodes == (inner,)


def test_parallel_into_and_collect() -> None:
    async def merge_ctx(data: Any, results: Any, ctx: StepContext) -> Any:
        return results

    node = parallel("p", [ship], into=merge_ctx, on_error="collect")
    assert node.on_error == "collect"
    assert node.into is not None
    assert (node.into.fn, node.into.is_async, node.into.takes_context) == (merge_ctx, True, True)
    plain = parallel("p", [ship], into=merge)
    assert plain.into is not None
    assert (plain.into.is_async, plain.into.takes_context) == (False, False)


@pytest.mark.parametrize(
    ("branches", "kwargs", "message"),
    [
        ({}, {}, "parallel 'p' has no branches"),
        ([], {}, "parallel 'p' has no branches"),
        ({"a": []}, {}, "parallel 'p': branch 'a' is empty"),
        ([ship, ship], {}, "parallel 'p' has two branches named 'ship'"),
        (
            {"a": [ship], "b": [ship]},
            {},
            r"the name 'ship' is used twice: step in parallel 'p' branch 'a' and step in "
            r"parallel 'p' branch 'b'",
        ),
        ([ship], {"on_error": "ignore"}, "on_error must be 'fail_fast' or 'collect'"),
        ([ship], {"into": ship}, r"into must take the input and the results .* takes 1"),
        ([ship], {"into": charge}, "into must be a plain function"),
        ([ship], {"into": "merge"}, "into must be a plain function"),
    ],
)
def test_bad_parallels(branches: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parallel("p", branches, **kwargs)


# -- foreach -----------------------------------------------------------------------------


def test_foreach_node() -> None:
    node = foreach("notify", items="users", steps=[send_email])
    assert isinstance(node, Foreach)
    assert (node.items, node.concurrency, node.on_error, node.into) == (
        "users",
        10,
        "fail_fast",
        None,
    )
    assert [n.name for n in node.nodes] == ["send_email"]
    assert foreach("n", items=len, steps=[ship], concurrency=1).concurrency == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": []}, "foreach 'each' has no steps"),
        ({"steps": ship}, "foreach 'each' steps must be a list"),
        ({"concurrency": 0}, r"concurrency must be an int >= 1, got 0"),
        ({"concurrency": 2.5}, r"concurrency must be an int >= 1, got 2.5"),
        ({"concurrency": True}, r"concurrency must be an int >= 1, got True"),
        ({"items": ""}, "items must be a function or a non-empty key"),
        ({"items": 3}, "items must be a function of the input, got int"),
        ({"on_error": "FAIL_FAST"}, "on_error must be 'fail_fast' or 'collect'"),
        ({"steps": [step(ship, name="each")]}, "the name 'each' is used twice"),
    ],
)
def test_bad_foreach(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("items", "users")
    kwargs.setdefault("steps", [ship])
    with pytest.raises(ValueError, match=message):
        foreach("each", **kwargs)


# -- the workflow ------------------------------------------------------------------------


def test_nodes_are_added_in_declaration_order() -> None:
    wf = build()
    assert [n.name for n in wf.nodes] == ["classify", "by_kind", "checks", "notify", "finish"]
    assert [s.name for s in wf.steps] == [
        "classify",
        "charge",
        "ship",
        "sign",
        "manual",
        "fraud_check",
        "stock_check",
        "reserve",
        "send_email",
        "finish",
    ]
    assert wf.get_step("reserve").fn is reserve
    assert wf.get_step("charge") == charge.spec
    assert isinstance(wf.get_node("by_kind"), Branch)
    assert wf.get_compensation("refund").fn is refund
    with pytest.raises(KeyError):
        wf.get_step("by_kind")  # a node, not a step
    with pytest.raises(KeyError):
        wf.get_compensation("charge")
    assert repr(wf) == (
        "Workflow('docs', nodes=['classify', 'by_kind', 'checks', 'notify', 'finish'])"
    )


def test_wf_node_methods_return_the_node() -> None:
    wf = Workflow("wf")
    node = wf.foreach("each", items="xs", steps=[ship], into=merge, on_error="collect")
    assert wf.nodes == [node]
    assert isinstance(wf.parallel("p", [sign]), Parallel)
    assert isinstance(wf.branch("b", on=len, cases={0: [manual]}), Branch)


def test_names_must_be_unique_in_the_whole_workflow() -> None:
    wf = build()
    with pytest.raises(
        ValueError,
        match=r"workflow 'docs': the name 'ship' is used twice: step in branch 'by_kind' case "
        r"\"invoice\" and step in parallel 'more' branch 'x' > branch 'deep' default",
    ):
        wf.parallel("more", {"x": [branch("deep", on=len, cases={1: [sign2]}, default=[ship])]})
    with pytest.raises(ValueError, match="the name 'checks' is used twice: parallel at the top"):
        wf.foreach("checks", items="x", steps=[sign2])
    with pytest.raises(
        ValueError, match="the name 'notify' is used twice: foreach at the top level and step"
    ):
        wf.step(name="notify")(sign2)
    with pytest.raises(ValueError, match="the name 'refund' is used twice"):
        wf.step(refund)
    # Nothing refused was added.
    assert [n.name for n in wf.nodes] == ["classify", "by_kind", "checks", "notify", "finish"]
    wf.step(sign2)


def sign2(data: Any) -> Any:
    return data


def test_parallel_branch_names_may_repeat_across_groups() -> None:
    wf = Workflow("wf")
    wf.parallel("one", {"a": [ship]})
    wf.parallel("two", {"a": [sign]})
    assert [b.name for b in wf.get_node("two").branches] == ["a"]  # type: ignore[union-attr]


def test_the_same_node_object_cannot_be_placed_twice() -> None:
    node = foreach("each", items="xs", steps=[ship])
    with pytest.raises(ValueError, match="the name 'each' is used twice"):
        parallel("p", {"a": [node], "b": [node]})


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, 2**31])
def test_bad_max_step_runs(bad: Any) -> None:
    with pytest.raises(ValueError, match="workflow 'wf': max_step_runs must be an int >= 1"):
        Workflow("wf", max_step_runs=bad)


# -- the definition ----------------------------------------------------------------------


def test_definition_shape() -> None:
    msg = to_definition(build())
    assert msg.max_step_runs == 1000
    assert [n.WhichOneof("kind") for n in msg.nodes] == [
        "step",
        "branch",
        "parallel",
        "foreach",
        "step",
    ]
    by_kind = msg.nodes[1].branch
    assert by_kind.name == "by_kind"
    assert [(c.key_json, [n.step.name for n in c.nodes]) for c in by_kind.cases] == [
        ('"invoice"', ["charge", "ship"]),
        ('"contract"', ["sign"]),
    ]
    assert by_kind.has_default
    assert [n.step.name for n in by_kind.default_nodes] == ["manual"]
    charge_msg = by_kind.cases[0].nodes[0].step
    assert charge_msg.retry.max_attempts == 3
    assert charge_msg.timeout.ToTimedelta() == seconds(30)
    assert charge_msg.compensation == d.Compensation(name="refund")
    checks = msg.nodes[2].parallel
    assert (checks.name, checks.on_error, checks.has_into) == (
        "checks",
        d.ERROR_MODE_FAIL_FAST,
        True,
    )
    assert [(b.name, [n.step.name for n in b.nodes]) for b in checks.branches] == [
        ("fraud", ["fraud_check"]),
        ("stock", ["stock_check", "reserve"]),
    ]
    notify = msg.nodes[3].foreach
    assert (notify.name, notify.concurrency, notify.on_error, notify.has_into) == (
        "notify",
        50,
        d.ERROR_MODE_FAIL_FAST,
        False,
    )
    assert [n.step.name for n in notify.nodes] == ["send_email"]


def test_definition_of_a_branch_without_default_and_collecting_groups() -> None:
    wf = Workflow("wf")
    wf.branch("b", on=len, cases={1: [], False: [ship]})
    wf.foreach("f", items="xs", steps=[sign], on_error="collect", into=merge)
    wf.parallel("p", [manual], on_error="collect")
    b, f, p = to_definition(wf).nodes
    assert not b.branch.has_default
    assert list(b.branch.default_nodes) == []
    assert [(c.key_json, len(c.nodes)) for c in b.branch.cases] == [("1", 0), ("false", 1)]
    assert (f.foreach.on_error, f.foreach.has_into) == (d.ERROR_MODE_COLLECT, True)
    assert (p.parallel.on_error, p.parallel.has_into) == (d.ERROR_MODE_COLLECT, False)


def test_nested_definition() -> None:
    wf = Workflow("wf")
    wf.parallel(
        "lanes",
        {
            "left": [branch("pick", on=len, cases={"x": [ship]}, default=[])],
            "right": [foreach("each", items="xs", steps=[sign, manual])],
        },
    )
    (node,) = to_definition(wf).nodes
    left, right = node.parallel.branches
    (pick,) = left.nodes
    assert pick.branch.name == "pick"
    assert pick.branch.has_default
    assert [n.step.name for n in right.nodes[0].foreach.nodes] == ["sign", "manual"]


def test_definition_hash_is_stable_and_follows_the_tree() -> None:
    first = definition_hash(to_definition(build()))
    assert first == definition_hash(to_definition(build()))
    assert first != definition_hash(to_definition(build(max_step_runs=999)))
    assert first != definition_hash(to_definition(build(max_step_runs=None)))
    other = build()
    other.step(sign2)
    assert first != definition_hash(to_definition(other))


def test_a_step_spec_can_be_placed_directly() -> None:
    spec = StepSpec(
        name="raw",
        fn=ship,
        takes_context=False,
        is_async=False,
        retry=None,
        timeout=None,
    )
    node = foreach("each", items="xs", steps=[spec])
    assert node.nodes == (spec,)
