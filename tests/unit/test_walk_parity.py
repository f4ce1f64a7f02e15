"""The SDK's walker and the orchestrator's agree, over definitions with every construct.

The navigation rules (docs/walk.md) are implemented twice: by the SDK (``durable._walk``,
which a worker uses to evaluate branch keys and foreach items ahead) and by the
orchestrator (``Definition.after`` and ``transitions.walk``, which decide the next task).
Each corpus workflow below is built with the DSL, sent through its proto form to the
orchestrator's parser, and both walkers are run over the same nodes and the same data:

- structure: the node after each node, the end of each lane, the goto rule (same
  sequence), the first task of every lane and of the execution, the compensations;
- walks: from every place a worker walks from (after a step or an into merge, at a route
  node, at a goto target), with data that takes every case, the default, no match and
  failing key or item functions. The evaluations the worker sends are exactly the ones
  the orchestrator consults; with them it never needs a route task; with any subset of
  them, the route tasks it asks for instead lead to the same next task.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from durable import Workflow, branch, foreach, parallel, step
from durable import _walk as sdk_walk
from durable._definition import to_definition
from durable._nodes import Branch, Foreach, Node, Parallel, StepSpec
from durable_server.api.convert import evaluations_from_proto
from durable_server.engine.definitions import (
    Definition,
    ForeachDef,
    NodeDef,
    ParallelDef,
    Seq,
)
from durable_server.engine.states import TaskKind
from durable_server.engine.transitions import (
    ROOT,
    EndLane,
    EnqueueTask,
    Evaluation,
    FailLane,
    Lane,
    Origin,
    StartGroup,
    lane_start,
    walk,
)
from durable_worker.outcome import evaluations_to_proto

ORIGIN = Origin("0190b8a4-6b1e-7c3a-9d2f-3c4b5a6d7e8f", "default", 0, "v")
LANE = Lane(7, 0, "g/0")


def _s(name: str, *, compensate: Callable[..., Any] | None = None) -> Any:
    def fn(data: Any) -> Any:
        return data

    return step(fn, name=name, compensate=compensate)


def _undo(name: str) -> Callable[..., Any]:
    def fn(result: Any) -> Any:
        return result

    fn.__name__ = name
    return fn


def _merge(data: Any, results: Any) -> Any:
    return results


def key(name: str) -> Callable[[Any], Any]:
    """A key function reading ``data[name]`` (KeyError or TypeError on other data)."""

    def on(data: Any) -> Any:
        return data[name]

    return on


# -- the corpus ----------------------------------------------------------------------------


def everything() -> Workflow:
    """A branch first, with a default; nested branch, parallel and foreach; compensations."""
    wf = Workflow("everything")
    wf.branch(
        "first",
        on=key("k"),
        cases={
            "a": [
                _s("a1", compensate=_undo("undo_a1")),
                branch("inner", on=key("sub"), cases={"x": [_s("in_x")], True: []}, default=[]),
            ],
            "b": [],
            1: [_s("one")],
        },
        default=[_s("dflt")],
    )
    wf.step(_s("charge", compensate=_undo("refund")))
    wf.parallel(
        "checks",
        {
            "plain": [_s("p1"), _s("p2")],
            "routed": [
                branch("pick", on=key("n"), cases={2: [_s("two")]}, default=[_s("other")]),
                _s("after_pick"),
            ],
            "fan": [foreach("inner_each", items="items", steps=[_s("ie")]), _s("after_fan")],
            "nested": [parallel("deep", {"l": [_s("dl")], "r": [_s("dr")]})],
        },
        into=_merge,
    )
    wf.branch("again", on=key("k"), cases={"a": [_s("again_a")]})
    wf.foreach(
        "each",
        items=key("items"),
        steps=[
            branch("per_item", on=key("n"), cases={1: [_s("item_one")]}, default=[]),
            _s("item_done"),
        ],
        into=_merge,
    )
    wf.step(_s("ship", compensate=_undo("unship")))
    wf.branch(
        "last",
        on=key("k"),
        cases={"a": [parallel("tail_group", [_s("t1"), _s("t2")])], "b": []},
    )
    return wf


def groups_first() -> Workflow:
    """A parallel first in the workflow, a foreach first in a lane, a foreach last."""
    wf = Workflow("groups_first")
    wf.parallel(
        "start",
        {
            "each_first": [foreach("loop", items="items", steps=[_s("body")])],
            "branch_first": [branch("b", on=key("k"), cases={"a": []}), _s("b_after")],
        },
    )
    wf.step(_s("middle"))
    wf.foreach("tail", items="items", steps=[parallel("per", [_s("x"), _s("y")])])
    return wf


def branches_in_a_row() -> Workflow:
    """Control nodes back to back, empty cases, a foreach first in the workflow."""
    wf = Workflow("row")
    wf.foreach("each", items="items", steps=[_s("e")], into=_merge)
    wf.branch("b1", on=key("k"), cases={"a": [branch("b2", on=len, cases={2: []})]})
    wf.branch("b3", on=key("n"), cases={1: []}, default=[_s("b3_default")])
    wf.foreach("loop", items=key("items"), steps=[_s("l")])
    wf.branch("b4", on=key("k"), cases={"a": []}, default=[])
    return wf


def single_step() -> Workflow:
    wf = Workflow("single")
    wf.step(_s("only"))
    return wf


CORPUS = {wf.name: wf for wf in (everything(), groups_first(), branches_in_a_row(), single_step())}

DATA: list[Any] = [
    {"k": "a", "sub": "x", "n": 1, "items": [1, 2]},
    {"k": "a", "sub": True, "n": 2, "items": []},
    {"k": "a", "sub": 1, "n": 2, "items": []},  # 1 is not the case true
    {"k": "a", "sub": "zzz", "n": 3, "items": [{"n": 1}]},
    {"k": "b", "n": 1, "items": [3]},
    {"k": 1, "n": True, "items": [1]},  # true is not the case 1
    {"k": True, "n": 2, "items": [1]},
    {"k": "none of the cases", "items": "not a list"},
    {"k": 1.5, "n": None},  # not a key type; no items
    {},  # every key function raises
    [1, 2],  # not an object
]


def definition_of(wf: Workflow) -> Definition:
    return Definition.from_proto(to_definition(wf))


DEFINITIONS = {name: definition_of(wf) for name, wf in CORPUS.items()}


def name_of(node: Node | NodeDef | None) -> str | None:
    return None if node is None else node.name


def _lanes(node: Node) -> Iterator[tuple[Node, ...]]:
    if isinstance(node, Branch):
        yield from (case.nodes for case in node.cases)
        if node.default is not None:
            yield node.default
    elif isinstance(node, Parallel):
        yield from (lane.nodes for lane in node.branches)
    elif isinstance(node, Foreach):
        yield node.nodes


def cases() -> Iterator[tuple[str, str]]:
    for name, wf in CORPUS.items():
        for node in wf.layout.nodes():
            yield name, node.name


CASES = list(cases())


# -- structure -----------------------------------------------------------------------------


def test_the_corpus_has_every_construct() -> None:
    kinds = {type(node).__name__ for wf in CORPUS.values() for node in wf.layout.nodes()}
    assert kinds == {"StepSpec", "Branch", "Parallel", "Foreach"}
    first_kinds = {type(wf.layout.top[0]).__name__ for wf in CORPUS.values()}
    assert first_kinds == {"StepSpec", "Branch", "Parallel", "Foreach"}
    assert any(
        isinstance(n, Parallel | Foreach) and n.into for wf in CORPUS.values() for n in wf.nodes
    )


@pytest.mark.parametrize(("workflow", "name"), CASES)
def test_the_same_node_comes_next(workflow: str, name: str) -> None:
    wf, definition = CORPUS[workflow], DEFINITIONS[workflow]
    assert name_of(sdk_walk.next_after(wf, name)) == name_of(definition.after(name))
    assert type(wf.layout.node(name)).__name__.lower().replace("stepspec", "step") == (
        type(definition.node(name)).__name__[:-3].lower()
    )


def test_the_same_nodes_share_a_sequence() -> None:
    for workflow, wf in CORPUS.items():
        definition = DEFINITIONS[workflow]
        names = [node.name for node in wf.layout.nodes()]
        for a, b in itertools.product(names, [*names, "nope"]):
            assert wf.layout.same_sequence(a, b) == definition.same_sequence(a, b), (a, b)


def _first_task(body: tuple[Node, ...]) -> tuple[TaskKind, str]:
    """A lane's first task by the SDK's tree: a step runs, anything else is routed."""
    first = body[0]
    return (TaskKind.STEP if isinstance(first, StepSpec) else TaskKind.ROUTE, first.name)


def _server_lanes(node: NodeDef) -> list[Seq]:
    if isinstance(node, ParallelDef):
        return [body for _, body in node.branches]
    if isinstance(node, ForeachDef):
        return [node.body]
    return []


def test_every_lane_starts_with_the_same_task() -> None:
    for workflow, wf in CORPUS.items():
        definition = DEFINITIONS[workflow]
        start = lane_start(ORIGIN, ROOT, definition.root, "{}")
        assert (start.kind, start.name) == _first_task(tuple(wf.layout.top))
        for node in wf.layout.nodes():
            if not isinstance(node, Parallel | Foreach):
                continue
            server = [
                lane_start(ORIGIN, LANE, body, None)
                for body in _server_lanes(definition.node(node.name))
            ]
            assert [(t.kind, t.name) for t in server] == [_first_task(b) for b in _lanes(node)]


def test_the_same_compensations() -> None:
    for workflow, wf in CORPUS.items():
        sdk = {s.compensation.name: s.name for s in wf.layout.steps() if s.compensation is not None}
        server = {c.name: c.step_name for c in DEFINITIONS[workflow].compensations.values()}
        assert sdk == server
    assert len(DEFINITIONS["everything"].compensations) == 3


# -- walks ---------------------------------------------------------------------------------


class Recording(Mapping[str, Evaluation]):
    """Evaluations that remember which ones the orchestrator looked up."""

    def __init__(self, evaluations: Mapping[str, Evaluation]) -> None:
        self._evaluations = dict(evaluations)
        self.asked: list[str] = []

    def __getitem__(self, name: str) -> Evaluation:
        return self._evaluations[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.asked.append(name)
        return self._evaluations.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._evaluations)

    def __len__(self) -> int:
        return len(self._evaluations)


def worker_evaluations(
    wf: Workflow, name: str, data: Any, *, inclusive: bool
) -> dict[str, Evaluation]:
    """What a worker sends, through the wire's conversions, as the orchestrator reads it."""
    evaluations = sdk_walk.evaluate(wf, name, data, inclusive=inclusive)
    return evaluations_from_proto(evaluations_to_proto(evaluations, 1 << 20))


Outcome = tuple[str, ...]


def outcome(effect: EnqueueTask | StartGroup | EndLane | FailLane) -> Outcome:
    """What a walk led to, in a form both sides can be compared on."""
    if isinstance(effect, EnqueueTask):
        return (effect.kind.value, effect.name, effect.input_json or "")
    if isinstance(effect, StartGroup):
        return ("group", effect.node.name, effect.input_json, effect.items_json or "")
    if isinstance(effect, EndLane):
        return ("end", effect.result_json)
    return ("fail", json.loads(effect.error_json)["node"])


def server_walk(
    definition: Definition,
    start: NodeDef | None,
    data_json: str,
    evaluations: Mapping[str, Evaluation],
) -> EnqueueTask | StartGroup | EndLane | FailLane:
    (effect,) = walk(definition, start, data_json, evaluations, ORIGIN, LANE)
    return effect


def settle(
    wf: Workflow, definition: Definition, effect: Any, data: Any, *, minimal: bool = False
) -> Outcome:
    """Run the route tasks the orchestrator asks for, as a worker would, to the next task.

    ``minimal``: answer each route with its own node's evaluation only (a worker that
    never evaluates ahead).
    """
    for _ in range(20):
        if not (isinstance(effect, EnqueueTask) and effect.kind is TaskKind.ROUTE):
            return outcome(effect)
        # A route task: the worker evaluates from the node itself and returns its input.
        assert effect.input_json is not None  # a walk's route task carries the walk's data
        routed = worker_evaluations(wf, effect.name, data, inclusive=True)
        if minimal:
            routed = {n: e for n, e in routed.items() if n == effect.name}
        effect = server_walk(definition, definition.node(effect.name), effect.input_json, routed)
    raise AssertionError("route tasks without end")


def sdk_stop(wf: Workflow, start: Node | None, evaluations: Mapping[str, Evaluation]) -> Outcome:
    """Where the SDK's tree says the walk goes, given the evaluations it made.

    Independent of the orchestrator's code: follows the SDK's ``next_after`` and
    ``Branch.choose``; used to check the orchestrator lands where the worker's walk stopped.
    """
    node = start
    while isinstance(node, Branch):
        evaluation = evaluations[node.name]
        if evaluation.error is not None:
            return ("fail", node.name)
        chosen = node.choose(evaluation.value_json or "null")
        if chosen is None:
            return ("fail", node.name)
        node = chosen[0] if chosen else sdk_walk.next_after(wf, node.name)
    if node is None:
        return ("end",)
    if isinstance(node, StepSpec):
        return ("step", node.name)
    if isinstance(node, Foreach) and evaluations[node.name].error is not None:
        return ("fail", node.name)
    return ("group", node.name)


def walk_starts(wf: Workflow, name: str) -> Iterator[tuple[str, bool]]:
    """Where workers walk from around node ``name``: (node, inclusive)."""
    node = wf.layout.node(name)
    if isinstance(node, StepSpec | Parallel | Foreach):
        # A step completed, or an into merge did. A group without into ends with the
        # orchestrator walking on with no evaluations: the empty subset below.
        yield name, False
    yield name, True  # a route task at the node, or a goto to it


@pytest.mark.parametrize(("workflow", "name"), CASES)
def test_both_walkers_agree(workflow: str, name: str) -> None:
    wf, definition = CORPUS[workflow], DEFINITIONS[workflow]
    for (start_name, inclusive), data in itertools.product(walk_starts(wf, name), DATA):
        data_json = json.dumps(data, separators=(",", ":"))
        sent = worker_evaluations(wf, start_name, data, inclusive=inclusive)
        start = definition.node(start_name) if inclusive else definition.after(start_name)
        recording = Recording(sent)
        full = server_walk(definition, start, data_json, recording)
        where = (start_name, inclusive, data)
        # The worker sent what the orchestrator needed, and nothing it did not look at.
        assert not (isinstance(full, EnqueueTask) and full.kind is TaskKind.ROUTE), where
        assert recording.asked == list(sent), where
        # It lands where the worker's walk stopped.
        sdk_start = wf.layout.node(start_name) if inclusive else sdk_walk.next_after(wf, start_name)
        expected = sdk_stop(wf, sdk_start, sent)
        got = outcome(full)
        assert (got[:1] if got[0] == "end" else got[:2]) == expected, where
        # Any subset of the evaluations leads to the same next task, through route tasks.
        for size in range(len(sent)):
            for subset in itertools.combinations(sent, size):
                partial = server_walk(definition, start, data_json, {n: sent[n] for n in subset})
                assert settle(wf, definition, partial, data) == got, (where, subset)
        nothing_ahead = server_walk(definition, start, data_json, {})
        assert settle(wf, definition, nothing_ahead, data, minimal=True) == got, where
