"""Execution graphs: a workflow definition as a flowchart, with an execution's state on it.

Pure: nothing here does I/O. :func:`compute_states` reads an execution's attempts (recorded,
running and waiting) and pending waits into a state per node; :func:`build_graph` lays the
definition out as a :class:`Graph` (optionally with those states);
:mod:`durable_server.views.graph_text` writes it as a Mermaid flowchart or a Graphviz
digraph.

The layout: a start and an end node; a node per step; a branch as a decision node with one
edge per case, labelled with its key (or ``default``), each case flowing on to whatever
follows the branch; a parallel group as a cluster with a fork, one path per branch
(labelled with the branch's name) and a join; a foreach as a cluster
``foreach <name> (concurrency N)`` around its body, between a fork and a join (the join is
the ``into`` task when the group has one); a compensation as a node linked to its step by a
dashed edge. Waits and child workflows happen inside steps, so they show as notes on the
step that waits. Ids derive from node names and everything is emitted in definition order:
the same definition and execution always give the same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from durable_server.engine.definitions import (
    BranchDef,
    CompensationDef,
    Definition,
    ForeachDef,
    NodeDef,
    ParallelDef,
    Seq,
    StepDef,
)
from durable_server.store.rows import RunningStep, StepAttemptRow

__all__ = [
    "STATES",
    "Cluster",
    "Graph",
    "GraphEdge",
    "GraphNode",
    "Key",
    "NodeState",
    "PendingWait",
    "build_graph",
    "compute_states",
]

STATES: Final = ("completed", "running", "waiting", "failed", "skipped", "pending")
"""Every state a node can be in, in the order legends and counts list them."""

# The state of a node that several lanes ran: the first of these that any lane is in.
_PRIORITY: Final = ("running", "waiting", "pending", "failed", "completed", "skipped")
_ACTIVE_STATES: Final = frozenset({"running", "waiting", "pending"})
_LIVE_EXECUTION: Final = frozenset({"pending", "running", "waiting"})
_MAX_WAIT_NOTES = 3

Key = tuple[str, str]
"""What a state belongs to: ("step" | "compensation" | "branch" | "fork" | "join", name),
("start", "") or ("end", "")."""


# -- the model -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState:
    """A node's state and the notes shown under it (counts, attempts, waits)."""

    state: str
    notes: tuple[str, ...] = ()


@dataclass
class GraphNode:
    """One node. ``shape`` is start, end, step, compensation, decision, fork, join or into."""

    id: str
    shape: str
    title: str
    details: tuple[str, ...] = ()
    state: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def lines(self) -> list[str]:
        """The label, one line each: title, options, then (for tasks) state and notes."""
        out = [self.title, *self.details]
        if self.state is not None and self.shape in _TASK_SHAPES:
            out.append(self.state)
        out.extend(self.notes)
        return out


_TASK_SHAPES: Final = frozenset({"step", "compensation", "into"})


@dataclass(frozen=True)
class GraphEdge:
    """An edge; ``dashed`` for compensations."""

    src: str
    dst: str
    label: str = ""
    dashed: bool = False


@dataclass
class Cluster:
    """A box around a parallel group or a foreach: its node ids and nested clusters."""

    id: str
    title: str
    items: list[str | Cluster] = field(default_factory=list)


@dataclass
class Graph:
    """A laid-out workflow: nodes by id (in order), edges (in order), the top-level items."""

    name: str
    nodes: dict[str, GraphNode] = field(default_factory=dict)
    edges: list[GraphEdge] = field(default_factory=list)
    items: list[str | Cluster] = field(default_factory=list)
    title: str = ""  # shown above the graph; the name when empty


# -- overlay: attempts -> states -------------------------------------------------------


@dataclass(frozen=True)
class PendingWait:
    """What a suspended task waits for now (a ``waits`` row with its task)."""

    step_name: str
    kind: str  # sleep | event | input | child
    task_kind: str = "step"
    lane_path: str = ""
    names: tuple[str, ...] = ()  # the events, or the input's name
    mode: str = "one"  # for events: one | any | all
    child_workflow: str | None = None
    until: datetime | None = None  # a sleep's end

    @classmethod
    def from_record(cls, r: Any) -> PendingWait:
        """Build from a ``wait_list_for_execution`` record."""
        names: tuple[str, ...] = tuple(r["event_names"] or ())
        if r["input_name"]:
            names = (r["input_name"],)
        return cls(
            step_name=r["step_name"],
            kind=r["kind"],
            task_kind=r["task_kind"],
            lane_path=r["lane_path"],
            names=names,
            mode=r["mode"] or "one",
            child_workflow=r["child_workflow"],
            until=r["deadline_at"],
        )

    def describe(self) -> str:
        """E.g. ``waits for event contract.signed``."""
        if self.kind == "sleep":
            if self.until is None:
                return "sleeps"
            return f"sleeps until {self.until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        if self.kind == "event":
            if self.mode == "one" and len(self.names) == 1:
                return f"waits for event {self.names[0]}"
            return f"waits for {self.mode} of events {', '.join(self.names)}"
        if self.kind == "input":
            return f"waits for input {', '.join(self.names)}"
        if self.kind == "child":
            return f"waits for child workflow {self.child_workflow or '?'}"
        return f"waits ({self.kind})"


@dataclass(frozen=True)
class _Run:
    """One attempt, recorded or live, as the overlay sees it."""

    lane: str
    sequence: int
    attempt: int
    status: str
    retry_scheduled: bool
    error_type: str


def _error_type(error_json: str | None) -> str:
    if not error_json:
        return ""
    try:
        doc = json.loads(error_json)
    except ValueError:
        return ""
    return str(doc.get("type", "")) if isinstance(doc, dict) else ""


def compute_states(
    definition: Definition,
    execution_status: str,
    attempts: Sequence[StepAttemptRow],
    running: Sequence[RunningStep] = (),
    waits: Sequence[PendingWait] = (),
) -> dict[Key, NodeState]:
    """The state of every node of ``definition`` in an execution.

    A task node (step, compensation, ``into``) takes the state of its latest attempt per
    lane: ``running``/``waiting`` while a task is leased or parked; ``completed``;
    ``failed`` (``waiting`` when a retry is scheduled; a lost attempt is ``pending``, ready
    again); over several lanes, the first of running, waiting, pending, failed, completed,
    with the counts in a note. A node that never ran is ``skipped`` when the execution is
    past it (finished or compensating, a later node of its lane ran, or another case of
    its branch was taken) and ``pending`` otherwise. Control nodes are ``completed`` once
    reached; a join once its lanes are done.
    """
    return _Overlay(definition, execution_status, attempts, running, waits).states()


class _Overlay:
    def __init__(
        self,
        definition: Definition,
        status: str,
        attempts: Sequence[StepAttemptRow],
        running: Sequence[RunningStep],
        waits: Sequence[PendingWait],
    ) -> None:
        self.definition = definition
        self.status = status
        self.forward_done = status not in _LIVE_EXECUTION
        self.active = status in _LIVE_EXECUTION or status == "compensating"
        self.runs: dict[tuple[str, str], list[_Run]] = {}
        for a in attempts:
            self._add(
                a.kind,
                a.step_name,
                _Run(
                    a.lane_path,
                    a.sequence,
                    a.attempt,
                    a.status,
                    a.retry_at is not None,
                    _error_type(a.error_json),
                ),
            )
        for r in running:
            self._add(
                r.kind, r.step_name, _Run(r.lane_path, r.sequence, r.attempt, r.status, False, "")
            )
        self.waits: dict[tuple[str, str], list[str]] = {}
        for w in waits:
            notes = self.waits.setdefault((w.task_kind, w.step_name), [])
            text = w.describe()
            if text not in notes:
                notes.append(text)
        self.out: dict[Key, NodeState] = {}
        self._names: dict[str, frozenset[str]] = {}

    def _add(self, kind: str, name: str, run: _Run) -> None:
        self.runs.setdefault((kind, name), []).append(run)

    def states(self) -> dict[Key, NodeState]:
        started = self.status != "pending" or bool(self.runs)
        self.out[("start", "")] = NodeState("completed" if started else "pending")
        self._seq(self.definition.root, away=False, after=False)
        self.out[("end", "")] = self._end()
        return self.out

    # -- reachability -------------------------------------------------------------------

    def _subtree(self, node: NodeDef) -> frozenset[str]:
        """The names of ``node`` and every node inside it."""
        found = self._names.get(node.name)
        if found is None:
            names = {node.name}
            for seq in _inner(node):
                for inner in seq.nodes:
                    names |= self._subtree(inner)
            found = frozenset(names)
            self._names[node.name] = found
        return found

    def _reached(self, node: NodeDef) -> bool:
        """Whether any task of ``node`` (or inside it) has run or runs."""
        return any(
            (kind, name) in self.runs
            for name in self._subtree(node)
            for kind in ("step", "route", "into")
        )

    def _unreached(self, away: bool) -> NodeState:
        return NodeState("skipped" if self.forward_done or away else "pending")

    # -- walking the definition ---------------------------------------------------------

    def _seq(self, seq: Seq, *, away: bool, after: bool) -> list[str]:
        """Put the states of ``seq``'s nodes; return them (compensations aside).

        ``away``: the sequence was not taken (another case of its branch was). ``after``:
        something after the sequence ran, so it is behind the execution.
        """
        reached = [self._reached(n) for n in seq.nodes]
        out: list[str] = []
        for i, node in enumerate(seq.nodes):
            later = after or any(reached[i + 1 :])
            out.extend(self._node(node, away=away, after=later))
        return out

    def _node(self, node: NodeDef, *, away: bool, after: bool) -> list[str]:
        if isinstance(node, StepDef):
            state = self._task("step", node.name) or self._unreached(away or after)
            self.out[("step", node.name)] = state
            if node.compensation is not None:
                comp = self._compensation(node.compensation.name, state.state)
                if comp is not None:
                    self.out[("compensation", node.compensation.name)] = comp
            return [state.state]
        if isinstance(node, BranchDef):
            return self._branch(node, away=away, after=after)
        return self._group(node, away=away, after=after)

    def _branch(self, node: BranchDef, *, away: bool, after: bool) -> list[str]:
        cases = list(node.cases.values())
        if node.default is not None:
            cases.append(node.default)
        taken = [any(self._reached(n) for n in case.nodes) for case in cases]
        route = self._task("route", node.name)
        decided = any(taken) or after or (route is not None and route.state == "completed")
        out: list[str] = []
        for case, was_taken in zip(cases, taken, strict=True):
            out.extend(self._seq(case, away=away or (decided and not was_taken), after=after))
        if route is not None and route.state != "completed":
            decision = NodeState(route.state, route.notes)
        elif decided:
            decision = NodeState("completed")
        else:
            decision = self._unreached(away)
        self.out[("branch", node.name)] = decision
        return [decision.state, *out]

    def _group(self, node: ParallelDef | ForeachDef, *, away: bool, after: bool) -> list[str]:
        route = self._task("route", node.name)
        into = self._task("into", node.name) if node.has_into else None
        reached = self._reached(node) or after
        lanes_after = after or into is not None
        out: list[str] = []
        for seq in _inner(node):
            out.extend(self._seq(seq, away=away, after=lanes_after))
        if route is not None and route.state != "completed":
            fork = NodeState(route.state, route.notes)
        elif reached:
            fork = NodeState("completed")
        else:
            fork = self._unreached(away)
        self.out[("fork", node.name)] = fork
        join: NodeState
        if into is not None:
            join = into
        elif node.has_into:
            join = self._unreached(away or after)
        elif after:
            join = NodeState("completed")
        elif not reached:
            join = self._unreached(away)
        elif any(s in _ACTIVE_STATES for s in out):
            join = NodeState("pending")
        elif node.fail_fast and "failed" in out:
            join = NodeState("failed")
        elif self.forward_done and self.status != "completed" and "skipped" in out:
            join = NodeState("skipped")
        else:
            join = NodeState("completed")
        self.out[("join", node.name)] = join
        return [fork.state, *out, join.state]

    def _compensation(self, name: str, step_state: str) -> NodeState | None:
        found = self._task("compensation", name)
        if found is not None:
            return found
        if self.status == "compensating" and step_state == "completed":
            return NodeState("pending")
        if self.forward_done:
            return NodeState("skipped")
        return None  # nothing failed: no compensation is due

    def _end(self) -> NodeState:
        status = self.status
        if status == "completed":
            return NodeState("completed")
        if status in ("failed", "timed_out", "compensated", "compensation_failed"):
            return NodeState("failed", (status,))
        if status == "cancelled":
            return NodeState("skipped", (status,))
        if status == "compensating":
            return NodeState("running", (status,))
        return NodeState("pending")

    # -- one task node ------------------------------------------------------------------

    def _task(self, kind: str, name: str) -> NodeState | None:
        """The state of the attempts of ``kind`` at ``name``, or None when it never ran."""
        runs = self.runs.get((kind, name))
        if not runs:
            return None
        by_lane: dict[str, list[_Run]] = {}
        for run in runs:
            by_lane.setdefault(run.lane, []).append(run)
        lanes = {lane: self._lane_state(lane_runs) for lane, lane_runs in by_lane.items()}
        present = set(lanes.values())
        state = next(s for s in _PRIORITY if s in present)
        notes: list[str] = []
        if len(lanes) > 1:
            counts = [f"{sum(1 for s in lanes.values() if s == st)} {st}" for st in STATES]
            notes.append(
                f"{len(lanes)} lanes: " + ", ".join(c for c in counts if not c.startswith("0 "))
            )
        else:
            sequences = {r.sequence for r in runs}
            if len(sequences) > 1:
                notes.append(f"{len(sequences)} runs")
            if len(runs) > len(sequences):
                notes.append(f"{len(runs)} attempts")
            last = _latest(runs)
            if state == "failed" and last.error_type:
                notes.append(last.error_type)
            if state == "waiting" and last.status in ("failed", "timed_out"):
                notes.append("retry scheduled")
        waits = self.waits.get((kind, name), [])
        notes.extend(waits[:_MAX_WAIT_NOTES])
        if len(waits) > _MAX_WAIT_NOTES:
            notes.append(f"and {len(waits) - _MAX_WAIT_NOTES} more waits")
        return NodeState(state, tuple(notes))

    def _lane_state(self, runs: Sequence[_Run]) -> str:
        last = _latest(runs)
        if last.status in ("running", "waiting", "completed"):
            return last.status
        if last.status == "lost":
            return "pending" if self.active else "failed"  # ready to run again
        if last.retry_scheduled and self.active:
            return "waiting"
        return "failed"


def _latest(runs: Iterable[_Run]) -> _Run:
    return max(runs, key=lambda r: (r.sequence, r.attempt, r.status in ("running", "waiting")))


def _inner(node: NodeDef) -> Iterator[Seq]:
    """The sequences directly inside ``node``, in definition order."""
    if isinstance(node, BranchDef):
        yield from node.cases.values()
        if node.default is not None:
            yield node.default
    elif isinstance(node, ParallelDef):
        for _, seq in node.branches:
            yield seq
    elif isinstance(node, ForeachDef):
        yield node.body


# -- layout ----------------------------------------------------------------------------

Exit = tuple[str, str]  # a node id, and the label of the edge that leaves it


def build_graph(
    definition: Definition, states: Mapping[Key, NodeState] | None = None, *, title: str = ""
) -> Graph:
    """Lay ``definition`` out as a graph, with ``states`` (from :func:`compute_states`)."""
    graph = _Builder(definition, states or {}).build()
    graph.title = title
    return graph


class _Builder:
    def __init__(self, definition: Definition, states: Mapping[Key, NodeState]) -> None:
        self.definition = definition
        self.states = states
        self.graph = Graph(definition.name)
        self.taken: set[str] = set()

    def build(self) -> Graph:
        top = self.graph.items
        start = self._node(top, ("start", ""), "wf_start", "start", "start")
        exits = self._seq(self.definition.root, [(start, "")], top)
        end = self._node(top, ("end", ""), "wf_end", "end", "end")
        self._link(exits, end)
        return self.graph

    def _id(self, base: str) -> str:
        """A unique id made of ``base`` (names may hold '.' and '-': ids keep [A-Za-z0-9_])."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", base)
        found, n = base, 1
        while found in self.taken:
            n += 1
            found = f"{base}_{n}"
        self.taken.add(found)
        return found

    def _node(
        self,
        items: list[str | Cluster],
        key: Key,
        base: str,
        shape: str,
        title: str,
        details: tuple[str, ...] = (),
    ) -> str:
        node_id = self._id(base)
        state = self.states.get(key)
        self.graph.nodes[node_id] = GraphNode(
            node_id,
            shape,
            title,
            details,
            state.state if state is not None else None,
            state.notes if state is not None else (),
        )
        items.append(node_id)
        return node_id

    def _edge(self, src: str, dst: str, label: str = "", *, dashed: bool = False) -> None:
        self.graph.edges.append(GraphEdge(src, dst, label, dashed))

    def _link(self, exits: Iterable[Exit], dst: str) -> None:
        for src, label in exits:
            self._edge(src, dst, label)

    def _seq(self, seq: Seq, entries: list[Exit], items: list[str | Cluster]) -> list[Exit]:
        """Add ``seq``'s nodes after ``entries``; return where the flow leaves it."""
        for node in seq.nodes:
            entries = self._add(node, entries, items)
        return entries

    def _add(self, node: NodeDef, entries: list[Exit], items: list[str | Cluster]) -> list[Exit]:
        """Add one node (and what is inside it) after ``entries``; return its exits."""
        if isinstance(node, StepDef):
            step = self._node(
                items, ("step", node.name), "s_" + node.name, "step", node.name, _options(node)
            )
            self._link(entries, step)
            comp = node.compensation
            if comp is not None:
                undo = self._node(
                    items,
                    ("compensation", comp.name),
                    "c_" + comp.name,
                    "compensation",
                    comp.name,
                    _options(comp),
                )
                self._edge(step, undo, "compensate", dashed=True)
            return [(step, "")]
        if isinstance(node, BranchDef):
            decision = self._node(
                items, ("branch", node.name), "b_" + node.name, "decision", node.name
            )
            self._link(entries, decision)
            exits: list[Exit] = []
            for key_json, case in node.cases.items():
                exits.extend(self._seq(case, [(decision, _key_label(key_json))], items))
            if node.default is not None:
                exits.extend(self._seq(node.default, [(decision, "default")], items))
            return exits
        if isinstance(node, ParallelDef):
            title = f"parallel {node.name}" + _mode(node.fail_fast)
            cluster = Cluster(self._id("cl_p_" + node.name), title)
            items.append(cluster)
            fork = self._node(cluster.items, ("fork", node.name), "p_" + node.name, "fork", "fork")
            self._link(entries, fork)
            lanes = [self._seq(body, [(fork, name)], cluster.items) for name, body in node.branches]
            join = self._join(cluster, node, "pj_")
            for exits in lanes:
                self._link(exits, join)
            return [(join, "")]
        title = f"foreach {node.name} (concurrency {node.concurrency})" + _mode(node.fail_fast)
        cluster = Cluster(self._id("cl_f_" + node.name), title)
        items.append(cluster)
        fork = self._node(cluster.items, ("fork", node.name), "f_" + node.name, "fork", "fork")
        self._link(entries, fork)
        body = self._seq(node.body, [(fork, "each item")], cluster.items)
        join = self._join(cluster, node, "fj_")
        self._link(body, join)
        return [(join, "")]

    def _join(self, cluster: Cluster, node: ParallelDef | ForeachDef, prefix: str) -> str:
        if node.has_into:
            return self._node(
                cluster.items, ("join", node.name), prefix + node.name, "into", "into"
            )
        return self._node(cluster.items, ("join", node.name), prefix + node.name, "join", "join")


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _options(node: StepDef | CompensationDef) -> tuple[str, ...]:
    """A step's (or compensation's) retry and timeout, as one detail line."""
    parts = []
    if node.retry.max_attempts > 1:
        parts.append(f"retry x{node.retry.max_attempts}")
    if node.timeout_secs:
        parts.append(f"timeout {_duration(node.timeout_secs)}")
    return (", ".join(parts),) if parts else ()


def _mode(fail_fast: bool) -> str:
    return "" if fail_fast else " [collect]"


def _key_label(key_json: str) -> str:
    """A case key as its edge shows it: strings bare, unless they would read as another key."""
    try:
        value = json.loads(key_json)
    except ValueError:
        return key_json
    if not isinstance(value, str) or not value or value == "default":
        return key_json
    try:
        json.loads(value)
    except ValueError:
        return value
    return key_json  # e.g. the string "3", not the integer 3
