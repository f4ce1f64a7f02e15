"""The nodes a workflow is made of: steps, branches, parallel groups and foreach loops.

A workflow is a sequence of nodes; a branch case, a parallel branch and a foreach body
are sequences of their own, so nodes nest. Build nested nodes with the module-level
functions and place them in the lists of another node::

    @step(retry=RetryPolicy(max_attempts=3), compensate=refund)
    def charge(data): ...

    wf.branch("by_kind", on=lambda d: d["kind"], cases={"invoice": [charge, ship]})
    wf.parallel("checks", {"fraud": [fraud_check], "stock": [stock_check]})
    wf.foreach("notify", items="users", steps=[send_email], concurrency=50)

In a list, a plain function is a step with default options; a function wrapped by
:func:`step` keeps its options. Nodes are immutable once built. Mistakes raise
``ValueError`` here, at definition time.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import (
    Any,
    Final,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
    overload,
)

from durable._retry import RetryPolicy
from durable.v1 import definition_pb2

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Branch",
    "BranchCase",
    "BranchKey",
    "ErrorMode",
    "Foreach",
    "Goto",
    "IntoSpec",
    "Node",
    "NodeLike",
    "Parallel",
    "ParallelBranch",
    "StepFunction",
    "StepSpec",
    "branch",
    "check_name",
    "check_unique",
    "foreach",
    "goto",
    "is_branch_key",
    "key_json",
    "make_step",
    "named_places",
    "parallel",
    "step",
    "to_nodes",
]

P = ParamSpec("P")
R = TypeVar("R")

ErrorMode = Literal["fail_fast", "collect"]
"""What a failing lane does: ``"fail_fast"`` fails the group, ``"collect"`` records it."""
BranchKey: TypeAlias = str | int | bool
"""A branch case key (``bool`` is an ``int`` too; the JSON text tells them apart)."""

DEFAULT_CONCURRENCY = 10
"""Foreach lanes running at the same time, at most, unless told otherwise."""

_ERROR_MODES: tuple[ErrorMode, ...] = ("fail_fast", "collect")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")  # the whole name (fullmatch)
NAME_RULE: Final = (
    "use 1-128 characters from ASCII letters, digits, '_', '-', '.', starting with a letter or '_'"
)
"""The rule of every name: workflows, steps, queues, events, inputs (as the orchestrator's)."""


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid workflow, step, queue, event or input name.

    Raises:
        ValueError: It is not, with the name and :data:`NAME_RULE` in the message.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} is invalid: {NAME_RULE}")
    return name


def is_branch_key(value: object) -> bool:
    """True for a value that can be a branch key: a str, an int or a bool."""
    return isinstance(value, str | int)  # bool is an int


def key_json(key: BranchKey) -> str:
    """A branch key as compact JSON: the text keys are compared as."""
    return json.dumps(key, separators=(",", ":"))


# -- functions and their shapes --------------------------------------------------------


def _positional(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    """The positional parameters of ``fn``; None when its signature cannot be read."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _takes_context(fn: Callable[..., Any], inputs: int, what: str, takes: str) -> bool:
    """True if ``fn`` takes a StepContext after its ``inputs`` values; ValueError otherwise."""
    params = _positional(fn)
    if params is None:
        return False
    required = [p for p in params if p.default is p.empty]
    if len(params) < inputs or len(required) > inputs + 1:
        ordinal = ("first", "second", "third")[inputs]
        raise ValueError(
            f"{what} must take {takes} and optionally a StepContext as its {ordinal}; "
            f"it takes {len(params)} positional parameter(s)"
        )
    return len(params) > inputs


def _check_key_function(fn: object, what: str) -> Callable[[Any], Any]:
    """``fn`` if it is a plain (not async) function of one value; ValueError otherwise."""
    if not callable(fn):
        raise ValueError(f"{what} must be a function of the input, got {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        raise ValueError(f"{what} must be a plain function, not async")
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        raise ValueError(f"{what} must take one positional parameter (the input)") from None
    except ValueError:
        pass  # no signature to check (some builtins)
    return fn


def _check_timeout(timeout: timedelta | None, what: str) -> timedelta | None:
    if timeout is not None and timeout <= timedelta(0):
        raise ValueError(f"{what}: timeout must be positive, got {timeout}")
    return timeout


def _check_error_mode(on_error: str, what: str) -> ErrorMode:
    for mode in _ERROR_MODES:
        if on_error == mode:
            return mode
    raise ValueError(f"{what}: on_error must be 'fail_fast' or 'collect', got {on_error!r}")


# -- steps -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSpec:
    """A step as the worker runs it: its function and its options.

    A compensation is a StepSpec too (with no compensation of its own): it receives the
    result of the step it undoes, and its retry policy and timeout are its own.
    """

    name: str
    fn: Callable[..., Any]
    takes_context: bool
    is_async: bool
    retry: RetryPolicy | None
    timeout: timedelta | None
    compensation: StepSpec | None = None

    def to_proto(self) -> definition_pb2.Step:
        """The step's part of the workflow definition."""
        msg = definition_pb2.Step(name=self.name)
        if self.retry is not None:
            msg.retry.CopyFrom(self.retry.to_proto())
        if self.timeout:
            msg.timeout.FromTimedelta(self.timeout)
        if self.compensation is not None:
            comp = self.compensation
            msg.compensation.name = comp.name
            if comp.retry is not None:
                msg.compensation.retry.CopyFrom(comp.retry.to_proto())
            if comp.timeout:
                msg.compensation.timeout.FromTimedelta(comp.timeout)
        return msg


class StepFunction(Generic[P, R]):
    """A function wrapped by :func:`step`: callable as before, carrying its step options.

    Put it in a node's list (or decorate it with ``@wf.step``) to use it as a step.

    Attributes:
        spec: The step it makes.
    """

    spec: StepSpec
    __name__: str
    __qualname__: str
    __wrapped__: Callable[P, R]

    def __init__(self, spec: StepSpec, fn: Callable[P, R]) -> None:
        functools.update_wrapper(self, fn)
        self.spec = spec
        self._fn = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<step {self.spec.name!r}>"


def make_step(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    compensate: Callable[..., Any] | None = None,
    kind: Literal["step", "compensation"] = "step",
) -> StepSpec:
    """The step made of ``fn``; for a :class:`StepFunction`, options given here win."""
    base = fn.spec if isinstance(fn, StepFunction) else None
    func = base.fn if base is not None else fn
    if not callable(func):
        raise ValueError(f"a {kind} must be a function, got {type(fn).__name__}")
    default_name = base.name if base is not None else getattr(func, "__name__", "")
    try:
        step_name = check_name(kind, name or default_name)
    except ValueError as exc:
        if name:
            raise
        raise ValueError(f"{exc}; give it a name with step(fn, name=...)") from None
    what = f"{kind} {step_name!r}"
    if retry is None and base is not None:
        retry = base.retry
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValueError(f"{what}: retry must be a RetryPolicy")
    if timeout is None and base is not None:
        timeout = base.timeout
    _check_timeout(timeout, what)
    compensation = base.compensation if base is not None else None
    if compensate is not None:
        compensation = make_step(compensate, kind="compensation")
    if kind == "compensation" and compensation is not None:
        raise ValueError(f"{what}: a compensation cannot have a compensation")
    takes = (
        "the previous result as its first parameter"
        if kind == "step"
        else "the result of the step it undoes as its first parameter"
    )
    return StepSpec(
        name=step_name,
        fn=func,
        takes_context=_takes_context(func, 1, what, takes),
        is_async=inspect.iscoroutinefunction(func),
        retry=retry,
        timeout=timeout,
        compensation=compensation,
    )


class _StepDecorator(Protocol):
    def __call__(self, fn: Callable[P, R], /) -> StepFunction[P, R]: ...


@overload
def step(
    fn: Callable[P, R],
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    compensate: Callable[..., Any] | None = None,
) -> StepFunction[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    compensate: Callable[..., Any] | None = None,
) -> _StepDecorator: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    compensate: Callable[..., Any] | None = None,
) -> Any:
    """Give a function step options without placing it in a workflow.

    Use as ``@step(retry=...)`` on a function, or inline in a node's list, e.g.
    ``step(charge, name="charge_again")``. The result is still callable as the plain
    function. ``compensate`` is run to undo the step when a later step fails for good;
    wrap it with ``step(...)`` to give the compensation its own retry policy and timeout.

    Args:
        fn: The step function (takes the previous result, optionally a StepContext).
        name: The step's name (unique in the workflow); the function's name by default.
        retry: Its retry policy; unset means one attempt.
        timeout: Its per-attempt timeout.
        compensate: Its compensation: a function of this step's result.
    """

    def wrap(func: Callable[..., Any]) -> StepFunction[..., Any]:
        spec = make_step(func, name=name, retry=retry, timeout=timeout, compensate=compensate)
        raw = func._fn if isinstance(func, StepFunction) else func
        return StepFunction(spec, raw)

    if fn is not None:
        return wrap(fn)
    return wrap


# -- goto ------------------------------------------------------------------------------


class Goto:
    """A step's (or an into merge's) result that jumps: execution continues at ``target``.

    Attributes:
        target: A node of the step's own sequence, before or after it (or the step itself);
            for an into merge, a node of its group's sequence (or the group itself).
        data: The input of that node.
    """

    __slots__ = ("data", "target")

    def __init__(self, target: str, data: Any = None) -> None:
        self.target = check_name("goto target", target)
        self.data = data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Goto):
            return NotImplemented
        return (self.target, self.data) == (other.target, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"goto({self.target!r}, {self.data!r})"


def goto(target: str, data: Any = None) -> Goto:
    """Return this from a step to continue at the node named ``target`` with ``data``.

    The target must be in the same sequence as the step (forward or back): a loop is a
    goto back to an earlier step. ``max_step_runs`` on the workflow bounds the loops.

    An ``into`` merge may return one too: the group has ended, and instead of the node
    after the group, ``target`` (a node of the group's own sequence, the group itself
    included) runs next with ``data``. A compensation cannot: it fails with ``GotoError``.
    """
    return Goto(target, data)


# -- control nodes ---------------------------------------------------------------------


@dataclass(frozen=True)
class IntoSpec:
    """The merge function of a parallel group or a foreach: ``into(data, results[, ctx])``."""

    fn: Callable[..., Any]
    takes_context: bool
    is_async: bool


@dataclass(frozen=True)
class BranchCase:
    """One arm of a branch: its key (and the key's JSON text) and its nodes."""

    key: BranchKey
    key_json: str
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Branch:
    """Runs the case whose key ``on(input)`` returns (or the default); see :func:`branch`."""

    name: str
    on: Callable[[Any], Any]
    cases: tuple[BranchCase, ...]
    default: tuple[Node, ...] | None

    def choose(self, key_json: str) -> tuple[Node, ...] | None:
        """The nodes to run for a key (as JSON); None when no case matches and no default."""
        for case in self.cases:
            if case.key_json == key_json:
                return case.nodes
        return self.default


@dataclass(frozen=True)
class ParallelBranch:
    """One lane of a parallel group."""

    name: str
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Parallel:
    """Runs its branches at the same time, each from the group's input; see :func:`parallel`."""

    name: str
    branches: tuple[ParallelBranch, ...]
    on_error: ErrorMode
    into: IntoSpec | None


@dataclass(frozen=True)
class Foreach:
    """Runs its body once per item of a list; see :func:`foreach`."""

    name: str
    items: Callable[[Any], Any] | str
    nodes: tuple[Node, ...]
    concurrency: int
    on_error: ErrorMode
    into: IntoSpec | None


Node: TypeAlias = StepSpec | Branch | Parallel | Foreach
"""One element of a sequence."""
NodeLike: TypeAlias = Callable[..., Any] | StepSpec | Branch | Parallel | Foreach
"""What a node's list may hold: a step function (plain or :func:`step`-wrapped) or a node."""


def kind_of(node: Node) -> str:
    """``"step"``, ``"branch"``, ``"parallel"`` or ``"foreach"``."""
    if isinstance(node, StepSpec):
        return "step"
    return type(node).__name__.lower()


def to_nodes(items: Sequence[NodeLike], what: str) -> tuple[Node, ...]:
    """The nodes of a list given to a node: functions become steps."""
    if isinstance(items, str | bytes) or not isinstance(items, Sequence):
        raise ValueError(f"{what} must be a list of steps and nodes, got {type(items).__name__}")
    nodes: list[Node] = []
    for item in items:
        if isinstance(item, Branch | Parallel | Foreach | StepSpec):
            nodes.append(item)
        elif callable(item):
            nodes.append(make_step(item))
        else:
            raise ValueError(
                f"{what} must hold step functions and nodes made by branch(), parallel() or "
                f"foreach(), got {type(item).__name__}"
            )
    return tuple(nodes)


def _into(fn: Callable[..., Any] | None, what: str) -> IntoSpec | None:
    if fn is None:
        return None
    if isinstance(fn, StepFunction) or not callable(fn):
        raise ValueError(f"{what}: into must be a plain function of (data, results)")
    return IntoSpec(
        fn=fn,
        takes_context=_takes_context(
            fn, 2, f"{what}: into", "the input and the results as its first two parameters"
        ),
        is_async=inspect.iscoroutinefunction(fn),
    )


# -- names -----------------------------------------------------------------------------


def named_places(nodes: Iterable[Node], path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """``(name, where)`` for every node and compensation in ``nodes`` and below them.

    ``path`` names the enclosing lanes from the outside in; ``where`` reads e.g.
    ``step in parallel 'checks' branch 'fraud' > branch 'by_kind' case "invoice"``.
    """
    where = "in " + " > ".join(path) if path else "at the top level"
    for node in nodes:
        yield node.name, f"{kind_of(node)} {where}"
        yield from _inner_places(node, path, where)


def _inner_places(node: Node, path: tuple[str, ...], where: str) -> Iterator[tuple[str, str]]:
    """The names below ``node`` (its compensation, its lanes' nodes)."""
    if isinstance(node, StepSpec):
        if node.compensation is not None:
            yield node.compensation.name, f"compensation of step {node.name!r} {where}"
    elif isinstance(node, Branch):
        for case in node.cases:
            arm = f"branch {node.name!r} case {case.key_json}"
            yield from named_places(case.nodes, (*path, arm))
        if node.default is not None:
            yield from named_places(node.default, (*path, f"branch {node.name!r} default"))
    elif isinstance(node, Parallel):
        for lane in node.branches:
            yield from named_places(
                lane.nodes, (*path, f"parallel {node.name!r} branch {lane.name!r}")
            )
    else:
        yield from named_places(node.nodes, (*path, f"foreach {node.name!r} body"))


def check_unique(entries: Iterable[tuple[str, str]], seen: dict[str, str], owner: str) -> None:
    """Add ``(name, where)`` entries to ``seen``; ValueError naming both places on a repeat."""
    for name, where in entries:
        if name in seen:
            raise ValueError(
                f"{owner}: the name {name!r} is used twice: {seen[name]} and {where} "
                "(every step, compensation and node needs its own name; rename one "
                "with step(fn, name=...))"
            )
        seen[name] = where


def _check_own_names(node: Node) -> None:
    kind = kind_of(node)
    seen: dict[str, str] = {}
    check_unique(
        [(node.name, f"the {kind} itself"), *_inner_places(node, (), "")],
        seen,
        f"{kind} {node.name!r}",
    )


# -- building nodes --------------------------------------------------------------------


def branch(
    name: str,
    *,
    on: Callable[[Any], Any],
    cases: Mapping[BranchKey, Sequence[NodeLike]],
    default: Sequence[NodeLike] | None = None,
) -> Branch:
    """A node that runs one case, chosen by the key ``on(input)`` returns.

    The chosen case's nodes run with the branch's input; execution continues after the
    branch with the case's last output (an empty case passes the input through).

    Args:
        name: The node's name (unique in the workflow).
        on: A plain function of the input returning a str, int or bool key.
        cases: Key -> the nodes to run for it; keys are str, int or bool.
        default: The nodes to run when no key matches; without one, no match fails
            the execution (BranchNoMatch).
    """
    name = check_name("branch", name)
    what = f"branch {name!r}"
    on = _check_key_function(on, f"{what}: on")
    if not isinstance(cases, Mapping):
        raise ValueError(f"{what}: cases must be a dict of key -> list of steps")
    if not cases:
        raise ValueError(f"{what} has no cases")
    built: list[BranchCase] = []
    seen_keys: set[str] = set()
    for key, nodes in cases.items():
        if not is_branch_key(key):
            raise ValueError(
                f"{what}: case key {key!r} is a {type(key).__name__}; use a str, int or bool"
            )
        text = key_json(key)
        if text in seen_keys:
            raise ValueError(f"{what} has two cases with the key {text}")
        seen_keys.add(text)
        built.append(BranchCase(key, text, to_nodes(nodes, f"{what} case {text}")))
    node = Branch(
        name=name,
        on=on,
        cases=tuple(built),
        default=None if default is None else to_nodes(default, f"{what} default"),
    )
    _check_own_names(node)
    return node


def parallel(
    name: str,
    branches: Mapping[str, Sequence[NodeLike]] | Sequence[NodeLike],
    *,
    into: Callable[..., Any] | None = None,
    on_error: ErrorMode = "fail_fast",
) -> Parallel:
    """A node whose branches run at the same time, each from the group's input.

    Args:
        name: The node's name (unique in the workflow).
        branches: Branch name -> its nodes; or a list of steps and nodes, each one its
            own branch named after it.
        into: ``into(data, results)`` merges the outcomes into the group's output; without
            it the output is ``{branch name: result}``.
        on_error: ``"fail_fast"``: the first branch failing for good fails the group and
            cancels the others; ``"collect"``: every branch runs to its end and each
            result becomes ``{"ok": true, "value": ...}`` or ``{"ok": false, "error": ...}``.
    """
    name = check_name("parallel", name)
    what = f"parallel {name!r}"
    lanes: list[ParallelBranch] = []
    if isinstance(branches, Mapping):
        for lane_name, nodes in branches.items():
            check_name("parallel branch", lane_name)
            built = to_nodes(nodes, f"{what} branch {lane_name!r}")
            if not built:
                raise ValueError(f"{what}: branch {lane_name!r} is empty")
            lanes.append(ParallelBranch(lane_name, built))
    else:
        for node in to_nodes(branches, f"{what} branches"):
            if any(lane.name == node.name for lane in lanes):
                raise ValueError(f"{what} has two branches named {node.name!r}")
            lanes.append(ParallelBranch(node.name, (node,)))
    if not lanes:
        raise ValueError(f"{what} has no branches")
    node = Parallel(
        name=name,
        branches=tuple(lanes),
        on_error=_check_error_mode(on_error, what),
        into=_into(into, what),
    )
    _check_own_names(node)
    return node


def foreach(
    name: str,
    *,
    items: Callable[[Any], Any] | str,
    steps: Sequence[NodeLike],
    concurrency: int = DEFAULT_CONCURRENCY,
    on_error: ErrorMode = "fail_fast",
    into: Callable[..., Any] | None = None,
) -> Foreach:
    """A node that runs ``steps`` once per item of a list, each item its own lane.

    Args:
        name: The node's name (unique in the workflow).
        items: A plain function of the input returning a list, or a key of the input
            (``items="users"`` is ``items=lambda d: d["users"]``).
        steps: The body; its first node receives the item.
        concurrency: Lanes running at the same time, at most.
        on_error: As for :func:`parallel`.
        into: ``into(data, results)`` merges the outcomes (a list in item order) into
            the node's output; without it the output is the list of results.
    """
    name = check_name("foreach", name)
    what = f"foreach {name!r}"
    if isinstance(items, str):
        if not items:
            raise ValueError(f"{what}: items must be a function or a non-empty key")
    else:
        items = _check_key_function(items, f"{what}: items")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"{what}: concurrency must be an int >= 1, got {concurrency!r}")
    body = to_nodes(steps, f"{what} steps")
    if not body:
        raise ValueError(f"{what} has no steps")
    node = Foreach(
        name=name,
        items=items,
        nodes=body,
        concurrency=concurrency,
        on_error=_check_error_mode(on_error, what),
        into=_into(into, what),
    )
    _check_own_names(node)
    return node
