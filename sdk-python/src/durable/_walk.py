"""Static navigation of a workflow's node tree, by the rules the orchestrator uses.

Every node lives in a sequence: the top level, a branch case (or default), a parallel
branch or a foreach body. After a node comes the next node of its sequence; past the
end of a branch case comes whatever comes after the branch; past the end of a parallel
branch, a foreach body or the top level comes the end (:data:`END`, ``None``): the lane,
or the execution, is done.

:func:`evaluate` runs the user's branch keys and foreach item lists met on the way from
a node to the next step, so the orchestrator (which never runs user code) learns them
with the result that leads there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from durable import _serde
from durable._nodes import (
    Branch,
    Foreach,
    Node,
    Parallel,
    StepSpec,
    check_unique,
    is_branch_key,
    key_json,
    named_places,
)

if TYPE_CHECKING:
    from durable._dsl import Workflow

__all__ = [
    "END",
    "Evaluation",
    "Layout",
    "Place",
    "evaluate",
    "needs_evaluation",
    "next_after",
]

END: Final = None
"""What comes after the last node of a lane: nothing."""


@dataclass(frozen=True)
class Place:
    """Where a node sits: its sequence, its index there and the node owning the sequence.

    ``owner`` is None at the top level (``sequence`` is then the workflow's own list,
    which grows as nodes are declared).
    """

    node: Node
    sequence: Sequence[Node]
    index: int
    owner: Branch | Parallel | Foreach | None


class Layout:
    """A workflow's nodes and where each one is, by name; filled as nodes are declared.

    Args:
        owner: Names the workflow in error messages, e.g. ``"workflow 'docs'"``.
    """

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self.top: list[Node] = []
        self._places: dict[str, Place] = {}
        self._compensations: dict[str, StepSpec] = {}
        self._names: dict[str, str] = {}

    def add(self, node: Node) -> None:
        """Append ``node`` to the top level; ValueError if a name in it is already used."""
        names = dict(self._names)
        check_unique(named_places([node]), names, self._owner)
        self._names = names
        self.top.append(node)
        self._index(node, self.top, len(self.top) - 1, None)

    def _index(
        self,
        node: Node,
        sequence: Sequence[Node],
        index: int,
        owner: Branch | Parallel | Foreach | None,
    ) -> None:
        self._places[node.name] = Place(node, sequence, index, owner)
        if isinstance(node, StepSpec):
            if node.compensation is not None:
                self._compensations[node.compensation.name] = node.compensation
            return
        lanes: list[Sequence[Node]]
        if isinstance(node, Branch):
            lanes = [case.nodes for case in node.cases]
            if node.default is not None:
                lanes.append(node.default)
        elif isinstance(node, Parallel):
            lanes = [lane.nodes for lane in node.branches]
        else:
            lanes = [node.nodes]
        for lane in lanes:
            for i, child in enumerate(lane):
                self._index(child, lane, i, node)

    # -- lookups -----------------------------------------------------------------------

    def place(self, name: str) -> Place:
        """Where the node called ``name`` is; KeyError if there is none."""
        return self._places[name]

    def node(self, name: str) -> Node:
        """The node called ``name``, at any depth; KeyError if there is none."""
        return self._places[name].node

    def compensation(self, name: str) -> StepSpec:
        """The compensation called ``name``; KeyError if there is none."""
        return self._compensations[name]

    def nodes(self) -> Iterator[Node]:
        """Every node, depth first in declaration order."""
        return (place.node for place in self._places.values())

    def steps(self) -> list[StepSpec]:
        """Every step (compensations excluded), depth first in declaration order."""
        return [node for node in self.nodes() if isinstance(node, StepSpec)]

    # -- navigation --------------------------------------------------------------------

    def next_after(self, name: str) -> Node | None:
        """The node that runs after the node ``name`` finishes, or END."""
        place = self._places[name]
        if place.index + 1 < len(place.sequence):
            return place.sequence[place.index + 1]
        if isinstance(place.owner, Branch):
            return self.next_after(place.owner.name)
        return END

    def same_sequence(self, name: str, other: str) -> bool:
        """True if the nodes ``name`` and ``other`` are in one sequence (a goto's rule)."""
        a, b = self._places.get(name), self._places.get(other)
        return a is not None and b is not None and a.sequence is b.sequence


@dataclass(frozen=True)
class Evaluation:
    """A control node's answer: a branch key or foreach item list as JSON, or an error.

    Attributes:
        value_json: The branch's key (compact JSON) or the foreach's items (a JSON array).
        error: What the user's function raised (or why its value is unusable).
    """

    value_json: str | None = None
    error: Exception | None = None


def next_after(workflow: Workflow, name: str) -> Node | None:
    """The node that runs after the node ``name`` of ``workflow`` finishes, or END."""
    return workflow.layout.next_after(name)


def needs_evaluation(workflow: Workflow, name: str, *, inclusive: bool) -> bool:
    """True if walking from ``name`` meets a control node to evaluate at all.

    Lets a caller skip decoding a result it would only decode for :func:`evaluate`.
    """
    layout = workflow.layout
    start = layout.node(name) if inclusive else layout.next_after(name)
    return isinstance(start, Branch | Foreach)


def evaluate(workflow: Workflow, name: str, data: Any, *, inclusive: bool) -> dict[str, Evaluation]:
    """Evaluate the control nodes met walking from node ``name`` with ``data`` as input.

    The walk starts at the node (``inclusive``) or at the one after it, and goes on:

    - a step, a parallel group or the end: stop;
    - a branch: record its key, go into the chosen case's first node (past an empty
      case: after the branch); no matching case and no default, or an error: stop;
    - a foreach: record its item list; stop.

    ``data`` is the input all along (a branch passes its input to its case). It should
    have crossed the JSON boundary already, as the next step would see it.

    Returns:
        Node name -> its evaluation, in the order met.
    """
    layout = workflow.layout
    node = layout.node(name) if inclusive else layout.next_after(name)
    out: dict[str, Evaluation] = {}
    while node is not None:
        if isinstance(node, Branch):
            evaluation, chosen = _branch(node, data)
            out[node.name] = evaluation
            if chosen is None:
                break
            node = chosen[0] if chosen else layout.next_after(node.name)
        elif isinstance(node, Foreach):
            out[node.name] = _items(node, data)
            break
        else:
            break
    return out


def _branch(node: Branch, data: Any) -> tuple[Evaluation, tuple[Node, ...] | None]:
    """The branch's key, and the nodes it leads to (None: stop here)."""
    try:
        key = node.on(data)
    except Exception as exc:
        return Evaluation(error=exc), None
    if not is_branch_key(key):
        error = TypeError(
            f"branch {node.name!r} key must be a str, int or bool, got {type(key).__name__}"
        )
        return Evaluation(error=error), None
    text = key_json(key)
    return Evaluation(value_json=text), node.choose(text)


def _items(node: Foreach, data: Any) -> Evaluation:
    """The foreach's item list as a JSON array."""
    what = f"foreach {node.name!r} items"
    try:
        if isinstance(node.items, str):
            if not isinstance(data, dict):
                raise TypeError(
                    f"{what}: the input is a {type(data).__name__}, not an object with the "
                    f"key {node.items!r}"
                )
            if node.items not in data:
                raise ValueError(f"{what}: the input has no key {node.items!r}")
            items = data[node.items]
        else:
            items = node.items(data)
    except Exception as exc:
        return Evaluation(error=exc)
    if not isinstance(items, list | tuple):
        return Evaluation(error=TypeError(f"{what} must be a list, got {type(items).__name__}"))
    try:
        return Evaluation(value_json=_serde.dumps(items))
    except _serde.JSONSerializationError as exc:
        return Evaluation(error=_serde.JSONSerializationError(f"{what}: {exc}"))
