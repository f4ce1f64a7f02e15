"""Workflows with every control-flow construct, run by a worker process in the e2e tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from durable import NonRetryableError, RetryPolicy, StepContext, Workflow, branch, goto, step
from durable.errors import ChildWorkflowError

# -- goto: a loop that counts up, and one that never ends ----------------------------------

counter = Workflow("cf_goto")


@counter.step
def init(data: dict[str, Any]) -> dict[str, Any]:
    return {"n": 0, "limit": data["limit"], "seen": []}


@counter.step
def bump(data: dict[str, Any]) -> Any:
    n = data["n"] + 1
    state = {**data, "n": n, "seen": [*data["seen"], n]}
    return goto("bump", state) if n < data["limit"] else state


@counter.step
def report(data: dict[str, Any]) -> dict[str, Any]:
    return {"final": data["n"], "seen": data["seen"]}


runaway = Workflow("cf_runaway", max_step_runs=25)


@runaway.step
def spin(data: Any) -> Any:
    return goto("spin", data)


# -- branch -------------------------------------------------------------------------------

documents = Workflow("cf_branch")


@documents.step
def classify(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "trail": ["classify"]}


def _visit(name: str) -> Any:
    def visit(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "trail": [*doc["trail"], name]}

    visit.__name__ = name
    return visit


documents.branch(
    "by_kind",
    on=lambda d: d["kind"],
    cases={
        "invoice": [_visit("pay_invoice"), _visit("archive_invoice")],
        "contract": [_visit("sign_contract")],
        7: [_visit("lucky_seven")],
    },
    default=[_visit("manual_review")],
)


@documents.step
def file_away(doc: dict[str, Any]) -> dict[str, Any]:
    return {"trail": [*doc["trail"], "file_away"]}


strict = Workflow("cf_branch_strict")


@strict.step
def look(doc: dict[str, Any]) -> dict[str, Any]:
    return doc


strict.branch("only_known", on=lambda d: d["kind"], cases={"known": [_visit("handle_known")]})


# -- parallel -----------------------------------------------------------------------------

checks = Workflow("cf_parallel")


@checks.step
def load_order(order: dict[str, Any]) -> dict[str, Any]:
    return {"id": order["id"], "amount": order["amount"]}


def fraud_check(order: dict[str, Any]) -> dict[str, Any]:
    return {"risk": "low" if order["amount"] < 1000 else "high"}


def stock_check(order: dict[str, Any]) -> dict[str, Any]:
    return {"order": order["id"], "in_stock": True}


def reserve(stock: dict[str, Any]) -> dict[str, Any]:
    return {**stock, "reserved": True}


checks.parallel("checks", {"fraud": [fraud_check], "stock": [stock_check, reserve]})


@checks.step
def decide(results: dict[str, Any]) -> dict[str, Any]:
    return {"approved": results["fraud"]["risk"] == "low", "stock": results["stock"]}


gather = Workflow("cf_parallel_collect")


def fetch_ok(data: dict[str, Any]) -> str:
    return f"fetched {data['id']}"


def fetch_broken(data: dict[str, Any]) -> str:
    raise NonRetryableError("the service is gone")


def merge(data: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": data["id"],
        "ok": {k: v["value"] for k, v in results.items() if v["ok"]},
        "failed": sorted(k for k, v in results.items() if not v["ok"]),
    }


gather.parallel(
    "sources", {"good": [fetch_ok], "bad": [fetch_broken]}, on_error="collect", into=merge
)

failfast = Workflow("cf_parallel_failfast")
failfast.parallel(
    "sources",
    {
        "good": [step(fetch_ok, name="fetch_ok_ff")],
        "bad": [step(fetch_broken, name="fetch_broken_ff")],
    },
)


# -- foreach ------------------------------------------------------------------------------

squares = Workflow("cf_foreach")


def square(item: int, ctx: StepContext) -> dict[str, Any]:
    return {"item": item, "square": item * item, "lane": ctx.lane_path}


squares.foreach("square_all", items=lambda d: d["numbers"], steps=[square], concurrency=3)


@squares.step
def total(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"sum": sum(r["square"] for r in results), "order": [r["item"] for r in results]}


# -- foreach whose into merge loops back with a goto -----------------------------------------

pages = Workflow("cf_into_goto")


@pages.step
def first_page(data: dict[str, Any]) -> dict[str, Any]:
    return {"page": 0, "pages": data["pages"], "seen": []}


def fetch(item: int) -> int:
    return item * 10


def next_page(data: dict[str, Any], results: list[dict[str, Any]]) -> Any:
    fetched = [r["value"] for r in results]
    state = {**data, "page": data["page"] + 1, "seen": [*data["seen"], *fetched]}
    return goto("fetch_page", state) if state["page"] < data["pages"] else state


pages.foreach(
    "fetch_page", items=lambda d: [d["page"], d["page"] + 100], steps=[fetch], into=next_page
)


@pages.step
def summary(state: dict[str, Any]) -> dict[str, Any]:
    return {"pages": state["page"], "seen": state["seen"]}


# -- nested: a branch inside each parallel lane ---------------------------------------------

nested = Workflow("cf_nested")
nested.parallel(
    "lanes",
    {
        "left": [
            branch(
                "left_pick",
                on=lambda d: d["left"],
                cases={"x": [_visit("left_x")]},
                default=[_visit("left_other")],
            )
        ],
        "right": [
            branch(
                "right_pick",
                on=lambda d: d["right"],
                cases={"x": [_visit("right_x")]},
                default=[_visit("right_other")],
            )
        ],
    },
)


# -- compensations ------------------------------------------------------------------------

saga = Workflow("cf_saga")


def release_stock(reserved: dict[str, Any]) -> dict[str, Any]:
    return {"released": reserved["reservation"]}


def refund(charged: dict[str, Any]) -> dict[str, Any]:
    if charged.get("refund_fails"):
        raise RuntimeError("the refund API is down")
    return {"refunded": charged["charge"]}


@saga.step(compensate=release_stock)
def reserve_stock(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "reservation": f"res-{order['id']}"}


REFUND_RETRY = RetryPolicy(max_attempts=2, initial_delay=timedelta(0), jitter=0.0)


@saga.step(compensate=step(refund, retry=REFUND_RETRY))
def charge_card(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "charge": f"ch-{data['id']}"}


@saga.step
def ship(data: dict[str, Any]) -> dict[str, Any]:
    raise NonRetryableError("no courier for this address")


# -- child workflows ------------------------------------------------------------------------

child = Workflow("cf_child")


@child.step
def child_work(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("fail"):
        raise NonRetryableError("the child failed on purpose")
    return {"child_saw": data["n"] * 10}


# Started on a queue no worker polls: it never runs, so its parent waits until it gives up.
stuck_child = Workflow("cf_stuck_child", queue="nobody_polls_this")


@stuck_child.step
def never_runs(data: Any) -> Any:
    return data


parent = Workflow("cf_parent")


@parent.step
def call_children(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    called = ctx.call_workflow("cf_child", {"n": data["n"]})
    fired = ctx.start_workflow("cf_child", {"n": 0})
    try:
        ctx.call_workflow("cf_child", {"n": 1, "fail": True})
        failure = None
    except ChildWorkflowError as exc:
        failure = exc.message if hasattr(exc, "message") else str(exc)
    return {"called": called, "fired": fired, "failure": failure}


retrying_parent = Workflow("cf_parent_retry")


@retrying_parent.step(retry=RetryPolicy(max_attempts=3, initial_delay=timedelta(0), jitter=0.0))
def call_then_flake(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    result = ctx.call_workflow("cf_child", {"n": data["n"]})
    if ctx.attempt < 3:
        raise RuntimeError(f"flaky after the child finished (attempt {ctx.attempt})")
    return {"result": result, "attempt": ctx.attempt}


impatient_parent = Workflow("cf_parent_timeout")


@impatient_parent.step
def call_with_timeout(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    got = ctx.call_workflow(
        "cf_stuck_child",
        data,
        timeout=timedelta(milliseconds=data["timeout_ms"]),
        timeout_value={"gave_up": True},
    )
    return {"got": got}


waiting_parent = Workflow("cf_parent_waits")


@waiting_parent.step
def wait_forever(data: dict[str, Any], ctx: StepContext) -> Any:
    return ctx.call_workflow("cf_stuck_child", data)
