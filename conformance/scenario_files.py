"""Read the scenarios, and name their workflows and queues (one rule for every adapter).

A scenario is one JSON file in ``scenarios/``, named after the file (``sequential.json``
is the scenario ``sequential``). The format is in ``conformance/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SCENARIO_DIR",
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
    """Every scenario in ``directory`` by name, in name order."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def workflow_name(prefix: str, scenario: str) -> str:
    """The name of a scenario's workflow in one language: ``<prefix>.<scenario>``."""
    return f"{prefix}.{scenario}"


def child_workflow_name(prefix: str, scenario: str, child: str) -> str:
    """The name of one of a scenario's child workflows: ``<prefix>.<scenario>.<child>``."""
    return f"{prefix}.{scenario}.{child}"


def queue_name(prefix: str, scenario: str) -> str:
    """The queue of a scenario's workflows (its children included): ``<prefix>.<scenario>``."""
    return f"{prefix}.{scenario}"


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
