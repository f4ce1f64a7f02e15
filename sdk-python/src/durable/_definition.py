"""Turn a :class:`~durable.Workflow` into its protobuf definition and content hash."""

from __future__ import annotations

import hashlib

from durable._dsl import Workflow
from durable.v1 import definition_pb2

__all__ = ["definition_hash", "to_definition"]


def to_definition(workflow: Workflow) -> definition_pb2.WorkflowDefinition:
    """The workflow as data, ready to register."""
    if not workflow.steps:
        raise ValueError(f"workflow {workflow.name!r} has no steps")
    msg = definition_pb2.WorkflowDefinition(
        name=workflow.name,
        steps=[s.to_proto() for s in workflow.steps],
        queue=workflow.queue or "",
    )
    if workflow.timeout:
        msg.timeout.FromTimedelta(workflow.timeout)
    return msg


def definition_hash(definition: definition_pb2.WorkflowDefinition) -> str:
    """The version of a definition: sha256 of its deterministic serialisation, in hex.

    The orchestrator computes the same value from the definition it receives.
    """
    return hashlib.sha256(definition.SerializeToString(deterministic=True)).hexdigest()
