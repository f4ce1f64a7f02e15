"""Workflow definitions as the engine reads them, and a cache of them by version.

A version is the sha256 of a definition, so a version's definition never changes and
the cache is safe to share by every request on every replica.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from durable._definition import definition_hash
from durable._retry import NO_RETRY, RetryPolicy
from durable.v1 import definition_pb2

__all__ = ["Definition", "DefinitionCache", "StepDef"]


@dataclass(frozen=True)
class StepDef:
    """One step of a definition."""

    name: str
    index: int
    retry: RetryPolicy
    timeout_secs: float | None


@dataclass(frozen=True)
class Definition:
    """A parsed workflow definition version."""

    name: str
    version: str
    steps: tuple[StepDef, ...]
    timeout_secs: float | None
    queue: str | None
    proto: definition_pb2.WorkflowDefinition

    @classmethod
    def from_proto(cls, msg: definition_pb2.WorkflowDefinition) -> Definition:
        """Parse a definition; its version is computed here, never trusted from a client."""
        steps = tuple(
            StepDef(
                name=s.name,
                index=i,
                retry=RetryPolicy.from_proto(s.retry) if s.HasField("retry") else NO_RETRY,
                timeout_secs=(s.timeout.ToTimedelta().total_seconds() or None)
                if s.HasField("timeout")
                else None,
            )
            for i, s in enumerate(msg.steps)
        )
        timeout = msg.timeout.ToTimedelta().total_seconds() if msg.HasField("timeout") else 0
        return cls(
            name=msg.name,
            version=definition_hash(msg),
            steps=steps,
            timeout_secs=timeout or None,
            queue=msg.queue or None,
            proto=msg,
        )

    def step(self, name: str) -> StepDef:
        """The step called ``name``; KeyError if it is not in this version."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def after(self, name: str) -> StepDef | None:
        """The step that follows ``name``, or None if ``name`` is the last."""
        index = self.step(name).index + 1
        return self.steps[index] if index < len(self.steps) else None


class DefinitionCache:
    """Definitions by version, loaded from the store on a miss."""

    def __init__(self, load: Callable[[str], Awaitable[bytes | None]]) -> None:
        self._load = load
        self._by_version: dict[str, Definition] = {}

    def put(self, definition: Definition) -> None:
        """Remember a definition (after registration)."""
        self._by_version[definition.version] = definition

    async def get(self, version: str) -> Definition | None:
        """The definition of ``version``, or None if no such version is stored."""
        found = self._by_version.get(version)
        if found is None:
            raw = await self._load(version)
            if raw is None:
                return None
            found = Definition.from_proto(definition_pb2.WorkflowDefinition.FromString(raw))
            self._by_version[version] = found
        return found
