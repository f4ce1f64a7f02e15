"""Read the scenarios, and name their workflows and queues (one rule for every adapter).

A scenario is one JSON file in ``scenarios/``, named after the file (``sequential.json``
is the scenario ``sequential``). The format is in ``conformance/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SCENARIO_DIR",
    "ScenarioError",
    "check_scenario",
    "child_workflow_name",
    "iter_ops",
    "load_scenarios",
    "queue_name",
    "uses_peer",
    "workflow_name",
]

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

Json = Any


def load_scenarios(directory: Path = SCENARIO_DIR) -> dict[str, dict[str, Json]]:
    """Every scenario in ``directory`` by name, in name order; each one checked.

    Raises:
        ScenarioError: A scenario does not follow the format.
    """
    scenarios = {}
    for path in sorted(directory.glob("*.json")):
        scenarios[path.stem] = json.loads(path.read_text())
        check_scenario(path.stem, scenarios[path.stem])
    return scenarios


def workflow_name(prefix: str, scenario: str) -> str:
    """The name of a scenario's workflow in one language: ``<prefix>.<scenario>``."""
    return f"{prefix}.{scenario}"


def child_workflow_name(prefix: str, scenario: str, child: str) -> str:
    """The name of one of a scenario's child workflows: ``<prefix>.<scenario>.<child>``."""
    return f"{prefix}.{scenario}.{child}"


def queue_name(prefix: str, scenario: str) -> str:
    """The queue of a scenario's workflows (its children included): ``<prefix>.<scenario>``."""
    return f"{prefix}.{scenario}"


class ScenarioError(ValueError):
    """A scenario file does not follow the format (an unknown key or op, a missing key)."""


_COMMON_OP_KEYS = {"op", "attempts", "when"}
_OP_KEYS = {
    "append": {"field", "value"},
    "set": {"field", "value"},
    "add": {"field", "value"},
    "mul": {"field", "value"},
    "record": {"field", "from"},
    "fail": {"type", "message", "non_retryable"},
    "sleep": {"ms"},
    "goto": {"target"},
    "durable_sleep": {"ms"},
    "wait_event": {"name", "field", "timeout_ms", "timeout_value"},
    "call_child": {"workflow", "field", "peer"},
}
_RECORDABLE = {"attempt", "sequence", "idempotency_key", "step_name", "lane_path", "execution_id"}
_NODE_KEYS = {
    "step": {"step", "do", "retry", "timeout_ms", "compensate"},
    "branch": {"branch", "on", "cases", "default"},
    "parallel": {"parallel", "branches", "on_error", "into"},
    "foreach": {"foreach", "items", "steps", "concurrency", "on_error", "into"},
}
_RETRY_KEYS = {
    "max_attempts",
    "backoff",
    "initial_delay_ms",
    "max_delay_ms",
    "multiplier",
    "jitter",
    "non_retryable_errors",
}
_SCENARIO_KEYS = {"description", "workflow", "children", "input", "events", "fault", "expect"}
_EXPECT_KEYS = {"status", "result", "error", "attempts", "children"}
_ATTEMPT_KEYS = {"step", "attempt", "status", "error", "kind", "lane", "worker"}
_FAULTS = {"kill_worker": {"kind", "step"}, "pause_worker": {"kind", "step", "then"}}


def _keys(where: str, obj: Json, allowed: set[str], required: Collection[str] = ()) -> None:
    if not isinstance(obj, dict):
        raise ScenarioError(f"{where}: expected an object, got {obj!r}")
    if unknown := set(obj) - allowed:
        raise ScenarioError(
            f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    if missing := set(required) - set(obj):
        raise ScenarioError(f"{where}: missing key(s) {sorted(missing)}")


def _check_ops(where: str, ops: Json) -> None:
    for i, op in enumerate(ops):
        kind = op.get("op") if isinstance(op, dict) else None
        if kind not in _OP_KEYS:
            raise ScenarioError(f"{where}.do[{i}]: unknown op {kind!r}; ops: {sorted(_OP_KEYS)}")
        _keys(f"{where}.do[{i}]", op, _OP_KEYS[kind] | _COMMON_OP_KEYS, {"op"})
        if kind == "record" and op.get("from") not in _RECORDABLE:
            raise ScenarioError(f"{where}.do[{i}]: record from one of {sorted(_RECORDABLE)}")


def _check_nodes(where: str, nodes: Json) -> None:
    for i, node in enumerate(nodes):
        here = f"{where}[{i}]"
        kinds = [k for k in _NODE_KEYS if isinstance(node, dict) and k in node]
        if len(kinds) != 1:
            raise ScenarioError(f"{here}: a node has exactly one of {sorted(_NODE_KEYS)}")
        _keys(here, node, _NODE_KEYS[kinds[0]])
        _check_ops(here, node.get("do", []))
        if "retry" in node:
            _keys(f"{here}.retry", node["retry"], _RETRY_KEYS)
        if "compensate" in node:
            _keys(f"{here}.compensate", node["compensate"], _NODE_KEYS["step"] - {"compensate"})
            _check_ops(f"{here}.compensate", node["compensate"].get("do", []))
        if "into" in node:
            _keys(f"{here}.into", node["into"], {"field", "do"})
            _check_ops(f"{here}.into", node["into"].get("do", []))
        for j, case in enumerate(node.get("cases", [])):
            _keys(f"{here}.cases[{j}]", case, {"key", "nodes"}, {"key", "nodes"})
            _check_nodes(f"{here}.cases[{j}].nodes", case["nodes"])
        _check_nodes(f"{here}.default", node.get("default") or [])
        for lane, lane_nodes in node.get("branches", {}).items():
            _check_nodes(f"{here}.branches.{lane}", lane_nodes)
        _check_nodes(f"{here}.steps", node.get("steps", []))


def check_scenario(name: str, scenario: Json) -> None:
    """Raise ScenarioError where ``scenario`` strays from the format (see README.md)."""
    _keys(name, scenario, _SCENARIO_KEYS, {"workflow", "expect"})
    workflows = {"workflow": scenario["workflow"], **scenario.get("children", {})}
    for key, spec in workflows.items():
        _keys(f"{name}.{key}", spec, {"nodes", "timeout_ms", "max_step_runs"}, {"nodes"})
        _check_nodes(f"{name}.{key}.nodes", spec["nodes"])
    expect = scenario["expect"]
    _keys(f"{name}.expect", expect, _EXPECT_KEYS, {"status"})
    for i, attempt in enumerate(expect.get("attempts", [])):
        required = {"step", "attempt", "status"}
        _keys(f"{name}.expect.attempts[{i}]", attempt, _ATTEMPT_KEYS, required)
    if "fault" in scenario:
        kind = scenario["fault"].get("kind")
        if kind not in _FAULTS:
            raise ScenarioError(f"{name}.fault: kind is one of {sorted(_FAULTS)}")
        _keys(f"{name}.fault", scenario["fault"], _FAULTS[kind], _FAULTS[kind])


def _iter_nodes(nodes: list[Json]) -> Iterator[Mapping[str, Json]]:
    for node in nodes:
        yield node
        if "compensate" in node:
            yield node["compensate"]
        if "into" in node:
            yield node["into"]
        for case in node.get("cases", []):
            yield from _iter_nodes(case["nodes"])
        yield from _iter_nodes(node.get("default") or [])
        for lane in node.get("branches", {}).values():
            yield from _iter_nodes(lane)
        yield from _iter_nodes(node.get("steps", []))


def iter_ops(scenario: Mapping[str, Json]) -> Iterator[Mapping[str, Json]]:
    """Every op of a scenario: its workflow's and its children's, at any depth."""
    workflows = [scenario["workflow"], *scenario.get("children", {}).values()]
    for workflow in workflows:
        for node in _iter_nodes(workflow["nodes"]):
            yield from node.get("do", [])


def uses_peer(scenario: Mapping[str, Json]) -> bool:
    """Whether a scenario calls a child workflow of the other language."""
    return any(op.get("peer") for op in iter_ops(scenario))
