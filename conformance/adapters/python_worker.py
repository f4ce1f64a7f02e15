"""The Python adapter: the scenarios' workflows built with the Python SDK, for ``durable-worker``.

Run from the repository root::

    CONFORMANCE_SCENARIOS=sequential,branch durable-worker conformance.adapters.python_worker

Environment:

- ``CONFORMANCE_PREFIX`` (default ``py``), ``CONFORMANCE_PEER_PREFIX`` (default ``ts``): the
  first part of this language's and the other language's workflow names;
- ``CONFORMANCE_SCENARIOS``: comma-separated scenario names to build (default: all);
- ``CONFORMANCE_STEP_LOG``: a file to which every run of a step, into or compensation
  appends one JSON line (``event`` ``start`` then ``end``, with the process id, the
  execution, sequence, attempt, step name, lane and idempotency key).

Each workflow becomes a global of this module, which is how ``durable-worker`` finds it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from conformance.scenario_files import (
    child_workflow_name,
    load_scenarios,
    queue_name,
    workflow_name,
)
from durable import (
    NonRetryableError,
    RetryPolicy,
    StepContext,
    Workflow,
    branch,
    foreach,
    goto,
    parallel,
    step,
)

Json = Any
Node = Mapping[str, Json]

PREFIX = os.environ.get("CONFORMANCE_PREFIX", "py")
PEER_PREFIX = os.environ.get("CONFORMANCE_PEER_PREFIX", "ts")
STEP_LOG = os.environ.get("CONFORMANCE_STEP_LOG", "")


# -- ops ----------------------------------------------------------------------------------


def _log_run(ctx: StepContext, event: str) -> None:
    if not STEP_LOG:
        return
    line = {
        "event": event,
        "pid": os.getpid(),
        "execution_id": ctx.execution_id,
        "sequence": ctx.sequence,
        "attempt": ctx.attempt,
        "step": ctx.step_name,
        "lane": ctx.lane_path,
        "key": ctx.idempotency_key,
        "time": time.time(),
    }
    with open(STEP_LOG, "a") as log:
        log.write(json.dumps(line) + "\n")


_ERROR_CLASSES: dict[tuple[str, bool], type[Exception]] = {}


def _error(op: Node) -> Exception:
    """An exception whose class is named ``op["type"]`` (the error type the worker reports)."""
    non_retryable = bool(op.get("non_retryable"))
    key = (op["type"], non_retryable)
    if key not in _ERROR_CLASSES:
        base = NonRetryableError if non_retryable else Exception
        _ERROR_CLASSES[key] = type(op["type"], (base,), {})
    return _ERROR_CLASSES[key](op.get("message", f"{op['type']} raised by the scenario"))


def _applies(op: Node, value: Json, ctx: StepContext) -> bool:
    if "attempts" in op and ctx.attempt not in op["attempts"]:
        return False
    when = op.get("when")
    if when is None:
        return True
    actual = value.get(when["field"]) if isinstance(value, dict) else None
    if "eq" in when:
        return bool(actual == when["eq"])
    if "ne" in when:
        return bool(actual != when["ne"])
    return bool(actual < when["lt"])


def _context_value(ctx: StepContext, name: str) -> Json:
    return {
        "attempt": ctx.attempt,
        "sequence": ctx.sequence,
        "idempotency_key": ctx.idempotency_key,
        "step_name": ctx.step_name,
        "lane_path": ctx.lane_path,
        "execution_id": ctx.execution_id,
    }[name]


def _child_name(scenario: str, op: Node) -> str:
    return child_workflow_name(PEER_PREFIX if op.get("peer") else PREFIX, scenario, op["workflow"])


def _with(value: Json, field: str, new: Json) -> Json:
    return {**value, field: new}


async def _apply(scenario: str, ops: Sequence[Node], value: Json, ctx: StepContext) -> Json:
    """Run ``ops`` on ``value``: the step's result (or a goto)."""
    for op in ops:
        if not _applies(op, value, ctx):
            continue
        kind = op["op"]
        field = op.get("field", "trail")
        if kind == "append":
            value = _with(value, field, [*value.get(field, []), op["value"]])
        elif kind == "set":
            value = _with(value, field, op["value"])
        elif kind == "add":
            value = _with(value, field, value.get(field, 0) + op["value"])
        elif kind == "mul":
            value = _with(value, field, value.get(field, 0) * op["value"])
        elif kind == "record":
            value = _with(value, field, _context_value(ctx, op["from"]))
        elif kind == "fail":
            raise _error(op)
        elif kind == "sleep":
            await asyncio.sleep(op["ms"] / 1000)
        elif kind == "goto":
            return goto(op["target"], value)
        elif kind == "durable_sleep":
            ctx.sleep(timedelta(milliseconds=op["ms"]))
        elif kind == "wait_event":
            timeout = {}
            if "timeout_ms" in op:
                timeout["timeout"] = timedelta(milliseconds=op["timeout_ms"])
            if "timeout_value" in op:
                timeout["timeout_value"] = op["timeout_value"]
            value = _with(value, field, ctx.wait_for_event(op["name"], **timeout))
        elif kind == "call_child":
            value = _with(value, field, ctx.call_workflow(_child_name(scenario, op), value))
        else:
            raise ValueError(f"scenario {scenario}: unknown op {kind!r}")
    return value


def _runner(scenario: str, ops: Sequence[Node]) -> Callable[[Json, StepContext], Any]:
    async def run(value: Json, ctx: StepContext) -> Json:
        _log_run(ctx, "start")
        try:
            return await _apply(scenario, ops, value, ctx)
        finally:
            _log_run(ctx, "end")

    return run


def _outcomes(results: Json) -> Json:
    """Lane outcomes with each error cut to its type: what a scenario can expect exactly."""

    def one(outcome: Json) -> Json:
        return outcome["value"] if outcome["ok"] else {"error": outcome["error"]["type"]}

    if isinstance(results, list):
        return [one(o) for o in results]
    return {name: one(o) for name, o in results.items()}


def _into(scenario: str, spec: Node) -> Callable[[Json, Json, StepContext], Any]:
    async def into(data: Json, results: Json, ctx: StepContext) -> Json:
        _log_run(ctx, "start")
        try:
            merged = _with(data, spec.get("field", "results"), _outcomes(results))
            return await _apply(scenario, spec.get("do", []), merged, ctx)
        finally:
            _log_run(ctx, "end")

    return into


# -- nodes --------------------------------------------------------------------------------


def _retry(spec: Node | None) -> RetryPolicy | None:
    if spec is None:
        return None
    return RetryPolicy(
        max_attempts=spec.get("max_attempts", 3),
        backoff=spec.get("backoff", "fixed"),
        initial_delay=timedelta(milliseconds=spec.get("initial_delay_ms", 0)),
        max_delay=timedelta(milliseconds=spec.get("max_delay_ms", 0)),
        multiplier=spec.get("multiplier", 2.0),
        jitter=spec.get("jitter", 0.0),
        non_retryable_errors=spec.get("non_retryable_errors", ()),
    )


def _timeout(spec: Node) -> timedelta | None:
    return timedelta(milliseconds=spec["timeout_ms"]) if "timeout_ms" in spec else None


def _step_options(scenario: str, node: Node) -> dict[str, Any]:
    options: dict[str, Any] = {
        "name": node["step"],
        "retry": _retry(node.get("retry")),
        "timeout": _timeout(node),
    }
    if "compensate" in node:
        comp = node["compensate"]
        options["compensate"] = step(
            _runner(scenario, comp.get("do", [])),
            name=comp["step"],
            retry=_retry(comp.get("retry")),
            timeout=_timeout(comp),
        )
    return options


def _group_options(scenario: str, node: Node) -> dict[str, Any]:
    options: dict[str, Any] = {"on_error": node.get("on_error", "fail_fast")}
    if "into" in node:
        options["into"] = _into(scenario, node["into"])
    return options


def _nested(scenario: str, nodes: Sequence[Node]) -> list[Any]:
    return [_node(scenario, node) for node in nodes]


def _node(scenario: str, node: Node) -> Any:
    """A node inside a branch, parallel or foreach."""
    if "step" in node:
        return step(_runner(scenario, node.get("do", [])), **_step_options(scenario, node))
    return _control(scenario, node, branch, parallel, foreach)


def _control(
    scenario: str, node: Node, make_branch: Any, make_parallel: Any, make_foreach: Any
) -> Any:
    if "branch" in node:
        default = node.get("default")
        field = node["on"]
        return make_branch(
            node["branch"],
            on=lambda data: data[field],
            cases={case["key"]: _nested(scenario, case["nodes"]) for case in node["cases"]},
            default=None if default is None else _nested(scenario, default),
        )
    if "parallel" in node:
        lanes = {name: _nested(scenario, nodes) for name, nodes in node["branches"].items()}
        return make_parallel(node["parallel"], lanes, **_group_options(scenario, node))
    if "foreach" in node:
        return make_foreach(
            node["foreach"],
            items=node["items"],
            steps=_nested(scenario, node["steps"]),
            concurrency=node.get("concurrency", 10),
            **_group_options(scenario, node),
        )
    raise ValueError(f"scenario {scenario}: a node without step/branch/parallel/foreach: {node}")


def build_workflow(scenario: str, name: str, spec: Node) -> Workflow:
    """The workflow ``spec`` (a scenario's ``workflow`` or one of its ``children``)."""
    wf = Workflow(
        name,
        queue=queue_name(PREFIX, scenario),
        timeout=_timeout(spec),
        max_step_runs=spec.get("max_step_runs"),
    )
    for node in spec["nodes"]:
        if "step" in node:
            wf.step(_runner(scenario, node.get("do", [])), **_step_options(scenario, node))
        else:
            _control(scenario, node, wf.branch, wf.parallel, wf.foreach)
    return wf


def build_all(selected: Sequence[str] = ()) -> list[Workflow]:
    """The workflows of the ``selected`` scenarios (all when empty), children included."""
    workflows = []
    for scenario, data in load_scenarios().items():
        if selected and scenario not in selected:
            continue
        workflows.append(
            build_workflow(scenario, workflow_name(PREFIX, scenario), data["workflow"])
        )
        for child, spec in data.get("children", {}).items():
            workflows.append(
                build_workflow(scenario, child_workflow_name(PREFIX, scenario, child), spec)
            )
    return workflows


_SELECTED = [s for s in os.environ.get("CONFORMANCE_SCENARIOS", "").split(",") if s]
for _workflow in build_all(_SELECTED):
    globals()[f"workflow_{_workflow.name.replace('.', '_')}"] = _workflow
