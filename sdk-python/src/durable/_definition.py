"""Turn a :class:`~durable.Workflow` into its protobuf definition and content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from durable._converters import catch_up_to_proto, overlap_to_proto
from durable._dsl import Workflow
from durable._nodes import Branch, ErrorMode, Foreach, Node, Parallel, StepSpec
from durable._schedules import Cron
from durable.v1 import definition_pb2

__all__ = ["declared_schedule", "definition_hash", "node_to_proto", "to_definition"]

_ERROR_MODE: dict[ErrorMode, definition_pb2.ErrorMode.ValueType] = {
    "fail_fast": definition_pb2.ERROR_MODE_FAIL_FAST,
    "collect": definition_pb2.ERROR_MODE_COLLECT,
}


def to_definition(workflow: Workflow) -> definition_pb2.WorkflowDefinition:
    """The workflow as data, ready to register."""
    if not workflow.nodes:
        raise ValueError(f"workflow {workflow.name!r} has no steps")
    msg = definition_pb2.WorkflowDefinition(
        name=workflow.name,
        nodes=_nodes(workflow.nodes),
        queue=workflow.queue or "",
        max_step_runs=workflow.max_step_runs or 0,
        schedules=[declared_schedule(cron) for cron in workflow.schedules],
    )
    if workflow.timeout:
        msg.timeout.FromTimedelta(workflow.timeout)
    return msg


def declared_schedule(cron: Cron) -> definition_pb2.DeclaredSchedule:
    """A named schedule (see ``Workflow.schedules``) as the definition declares it."""
    if cron.name is None:
        raise ValueError(f"Cron({cron.expression!r}) has no name")
    return definition_pb2.DeclaredSchedule(
        name=cron.name,
        cron=cron.expression,
        timezone=cron.tz,
        input_json=cron.input_json,
        queue=cron.queue or "",
        priority=cron.priority,
        enabled=cron.enabled,
        catch_up=catch_up_to_proto(cron.catch_up),
        catch_up_limit=cron.catch_up_limit,
        overlap=overlap_to_proto(cron.overlap),
    )


def _nodes(nodes: Iterable[Node]) -> list[definition_pb2.Node]:
    return [node_to_proto(node) for node in nodes]


def node_to_proto(node: Node) -> definition_pb2.Node:
    """One node (and the nodes inside it) as its protobuf form."""
    if isinstance(node, StepSpec):
        return definition_pb2.Node(step=node.to_proto())
    if isinstance(node, Branch):
        return definition_pb2.Node(
            branch=definition_pb2.Branch(
                name=node.name,
                cases=[
                    definition_pb2.BranchCase(key_json=case.key_json, nodes=_nodes(case.nodes))
                    for case in node.cases
                ],
                default_nodes=_nodes(node.default or ()),
                has_default=node.default is not None,
            )
        )
    if isinstance(node, Parallel):
        return definition_pb2.Node(
            parallel=definition_pb2.Parallel(
                name=node.name,
                branches=[
                    definition_pb2.ParallelBranch(name=lane.name, nodes=_nodes(lane.nodes))
                    for lane in node.branches
                ],
                on_error=_ERROR_MODE[node.on_error],
                has_into=node.into is not None,
            )
        )
    if isinstance(node, Foreach):
        return definition_pb2.Node(
            foreach=definition_pb2.Foreach(
                name=node.name,
                nodes=_nodes(node.nodes),
                concurrency=node.concurrency,
                on_error=_ERROR_MODE[node.on_error],
                has_into=node.into is not None,
            )
        )
    raise TypeError(f"not a node: {node!r}")


def definition_hash(definition: definition_pb2.WorkflowDefinition) -> str:
    """The version of a definition: sha256 of its deterministic serialisation, in hex.

    The orchestrator computes the same value from the definition it receives.
    """
    return hashlib.sha256(definition.SerializeToString(deterministic=True)).hexdigest()
