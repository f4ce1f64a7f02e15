"""Workflow definitions as the engine reads them, and a cache of them by version.

A definition is a tree: sequences of nodes (steps, branches, parallel groups, foreach).
Every node has a name unique in the workflow, and ``Definition`` indexes where each one
sits, so the engine can answer "what comes after this node?" without walking the tree.

A version is the sha256 of a definition, so a version's definition never changes and
the cache is safe to share by every request on every replica.

Branch case keys are indexed by their canonical text (:func:`canonical_key`), so a key
matches whichever JSON writer produced it; the stored definition, and so its version,
keeps the bytes the worker sent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from durable import RetryPolicy
from durable._shared import NO_RETRY, definition_hash
from durable.v1 import definition_pb2

__all__ = [
    "BranchDef",
    "CompensationDef",
    "Definition",
    "DefinitionCache",
    "ForeachDef",
    "NodeDef",
    "ParallelDef",
    "Seq",
    "StepDef",
    "canonical_key",
]

DEFAULT_FOREACH_CONCURRENCY = 10


def canonical_key(key_json: str) -> str:
    r"""The canonical JSON text of a branch key (a string, an integer or a boolean).

    Compact, UTF-8, and with only the escapes JSON requires: ``\"``, ``\\``, and
    ``\b \f \n \r \t`` or ``\u00xx`` for other characters below U+0020; every other
    character as itself. So ``"caf\u00e9"`` (Python's default writer) and ``"café"``
    (JavaScript's) are one key. Any other text (a float, an object, not JSON) is returned
    unchanged: it is no key, and matches none.
    """
    try:
        value = json.loads(key_json)
    except ValueError:
        return key_json
    if isinstance(value, str | int):  # bool is an int
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return key_json


def _cases(branch: definition_pb2.Branch, seq: Callable[..., Seq]) -> dict[str, Seq]:
    """A branch's cases by canonical key (the first of two that canonicalise alike)."""
    cases: dict[str, Seq] = {}
    for case in branch.cases:
        cases.setdefault(canonical_key(case.key_json), seq(case.nodes, case_of=branch.name))
    return cases


def _secs(msg: object, name: str) -> float | None:
    if not msg.HasField(name):  # type: ignore[attr-defined]
        return None
    return getattr(msg, name).ToTimedelta().total_seconds() or None


def _policy(msg: object) -> RetryPolicy:
    if not msg.HasField("retry"):  # type: ignore[attr-defined]
        return NO_RETRY
    return RetryPolicy.from_proto(msg.retry)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CompensationDef:
    """The compensation of a step."""

    name: str
    step_name: str
    retry: RetryPolicy
    timeout_secs: float | None


@dataclass(frozen=True)
class StepDef:
    """A step: user code run by a worker."""

    name: str
    retry: RetryPolicy
    timeout_secs: float | None
    compensation: CompensationDef | None


@dataclass(frozen=True)
class BranchDef:
    """A branch: a worker computes a key; the matching case runs."""

    name: str
    cases: dict[str, Seq]
    default: Seq | None


@dataclass(frozen=True)
class ParallelDef:
    """A parallel group: one lane per branch, all from the group's input."""

    name: str
    branches: tuple[tuple[str, Seq], ...]
    fail_fast: bool
    has_into: bool


@dataclass(frozen=True)
class ForeachDef:
    """A foreach: one lane per item of a list a worker computes."""

    name: str
    body: Seq
    concurrency: int
    fail_fast: bool
    has_into: bool


NodeDef = StepDef | BranchDef | ParallelDef | ForeachDef


@dataclass(frozen=True, eq=False)
class Seq:
    """A sequence of nodes. ``case_of`` names the branch whose case it is, if any."""

    nodes: tuple[NodeDef, ...]
    case_of: str | None = None
    lane_of: str | None = None  # the parallel or foreach whose lane it is
    index: dict[str, int] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Definition:
    """A parsed workflow definition version."""

    name: str
    version: str
    root: Seq
    timeout_secs: float | None
    queue: str | None
    max_step_runs: int | None
    proto: definition_pb2.WorkflowDefinition
    nodes: dict[str, NodeDef]
    where: dict[str, Seq]
    compensations: dict[str, CompensationDef]

    @classmethod
    def from_proto(cls, msg: definition_pb2.WorkflowDefinition) -> Definition:
        """Parse a definition; its version is computed here, never trusted from a client."""
        nodes: dict[str, NodeDef] = {}
        where: dict[str, Seq] = {}
        compensations: dict[str, CompensationDef] = {}

        def seq(items: object, *, case_of: str | None = None, lane_of: str | None = None) -> Seq:
            parsed = tuple(node(n) for n in items)  # type: ignore[attr-defined]
            s = Seq(parsed, case_of=case_of, lane_of=lane_of)
            for i, n in enumerate(parsed):
                s.index[n.name] = i
                where[n.name] = s
            return s

        def node(n: definition_pb2.Node) -> NodeDef:
            kind = n.WhichOneof("kind")
            parsed: NodeDef
            if kind == "step":
                st = n.step
                comp = None
                if st.HasField("compensation"):
                    c = st.compensation
                    comp = CompensationDef(c.name, st.name, _policy(c), _secs(c, "timeout"))
                    compensations[c.name] = comp
                parsed = StepDef(st.name, _policy(st), _secs(st, "timeout"), comp)
            elif kind == "branch":
                b = n.branch
                parsed = BranchDef(
                    b.name,
                    _cases(b, seq),
                    seq(b.default_nodes, case_of=b.name) if b.has_default else None,
                )
            elif kind == "parallel":
                p = n.parallel
                parsed = ParallelDef(
                    p.name,
                    tuple((br.name, seq(br.nodes, lane_of=p.name)) for br in p.branches),
                    p.on_error != definition_pb2.ERROR_MODE_COLLECT,
                    p.has_into,
                )
            elif kind == "foreach":
                f = n.foreach
                parsed = ForeachDef(
                    f.name,
                    seq(f.nodes, lane_of=f.name),
                    f.concurrency or DEFAULT_FOREACH_CONCURRENCY,
                    f.on_error != definition_pb2.ERROR_MODE_COLLECT,
                    f.has_into,
                )
            else:
                raise ValueError(f"a node of workflow {msg.name!r} has no kind")
            nodes[parsed.name] = parsed
            return parsed

        root = seq(msg.nodes)
        timeout = msg.timeout.ToTimedelta().total_seconds() if msg.HasField("timeout") else 0
        return cls(
            name=msg.name,
            version=definition_hash(msg),
            root=root,
            timeout_secs=timeout or None,
            queue=msg.queue or None,
            max_step_runs=msg.max_step_runs or None,
            proto=msg,
            nodes=nodes,
            where=where,
            compensations=compensations,
        )

    @property
    def first(self) -> NodeDef:
        """The node an execution starts with."""
        return self.root.nodes[0]

    def node(self, name: str) -> NodeDef:
        """The node called ``name``; KeyError if it is not in this version."""
        return self.nodes[name]

    def step(self, name: str) -> StepDef:
        """The step called ``name``; KeyError if there is no such step."""
        found = self.nodes[name]
        if not isinstance(found, StepDef):
            raise KeyError(name)
        return found

    def after(self, name: str) -> NodeDef | None:
        """The node that runs after ``name`` in its lane; None at the lane's end.

        Past the end of a branch case, execution continues after the branch.
        """
        s = self.where[name]
        i = s.index[name] + 1
        if i < len(s.nodes):
            return s.nodes[i]
        if s.case_of is not None:
            return self.after(s.case_of)
        return None

    def same_sequence(self, a: str, b: str) -> bool:
        """Whether nodes ``a`` and ``b`` sit in the same sequence (a goto's rule)."""
        return b in self.where and self.where[a] is self.where[b]


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
