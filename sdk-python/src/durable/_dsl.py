"""The workflow DSL: a :class:`Workflow`, its steps and its control-flow nodes.

Example::

    docs = Workflow("docs", max_step_runs=1000)

    @docs.step
    def classify(doc):
        return {**doc, "kind": "invoice"}

    docs.branch("by_kind", on=lambda d: d["kind"], cases={"invoice": [charge, ship]},
                default=[manual])
    docs.parallel("checks", {"fraud": [fraud_check], "stock": [stock_check]})
    docs.foreach("notify", items="users", steps=[send_email], concurrency=50)

    @docs.step(retry=RetryPolicy(max_attempts=3), compensate=refund)
    async def finish(data, ctx):
        ...

A workflow may carry cron schedules, registered with it (see :class:`~durable.Cron`)::

    report = Workflow("report", schedule=Cron("0 9 * * MON-FRI", tz="America/New_York"))

Nodes run in declaration order; each receives the previous node's output (the first
receives the execution input) and a step that takes a second parameter gets a
:class:`~durable.StepContext`. A step may return :func:`~durable.goto` to continue
elsewhere in its sequence. Mistakes raise ``ValueError`` here, at definition time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar, overload

from durable._nodes import (
    DEFAULT_CONCURRENCY,
    Branch,
    BranchKey,
    ErrorMode,
    Foreach,
    Node,
    NodeLike,
    Parallel,
    StepSpec,
    branch,
    check_name,
    foreach,
    make_step,
    parallel,
)
from durable._retry import RetryPolicy
from durable._schedules import Cron, resolve_schedules
from durable._walk import Layout

__all__ = ["StepSpec", "Workflow", "check_name"]

F = TypeVar("F", bound=Callable[..., Any])

MAX_STEP_RUNS_LIMIT = 2**31 - 1


class Workflow:
    """A named workflow: a sequence of nodes plus options.

    Args:
        name: Unique workflow name.
        timeout: Whole-execution timeout (``None`` for none).
        queue: Queue for starts that do not name one.
        max_step_runs: Most step runs one execution may make (goto loops and foreach
            items count, retries do not); ``None`` means the orchestrator's default.
        schedule: A cron schedule that starts the workflow (named after the workflow
            unless it has a ``name``).
        schedules: Several cron schedules (each with a ``name``); not with ``schedule``.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: timedelta | None = None,
        queue: str | None = None,
        max_step_runs: int | None = None,
        schedule: Cron | None = None,
        schedules: Iterable[Cron] | None = None,
    ) -> None:
        self.name = check_name("workflow", name)
        if timeout is not None and timeout <= timedelta(0):
            raise ValueError(f"workflow {name!r}: timeout must be positive, got {timeout}")
        if max_step_runs is not None and (
            isinstance(max_step_runs, bool)
            or not isinstance(max_step_runs, int)
            or not 1 <= max_step_runs <= MAX_STEP_RUNS_LIMIT
        ):
            raise ValueError(
                f"workflow {name!r}: max_step_runs must be an int >= 1, got {max_step_runs!r}"
            )
        self.timeout = timeout
        self.queue = check_name("queue", queue) if queue else None
        self.max_step_runs = max_step_runs
        self.schedules: tuple[Cron, ...] = resolve_schedules(self.name, schedule, schedules)
        """The declared schedules, each with its name."""
        self.layout = Layout(f"workflow {name!r}")

    @property
    def nodes(self) -> list[Node]:
        """The top-level nodes in declaration order."""
        return list(self.layout.top)

    @property
    def steps(self) -> list[StepSpec]:
        """Every step at any depth, depth first in declaration order."""
        return self.layout.steps()

    def get_step(self, name: str) -> StepSpec:
        """The step called ``name``, at any depth; KeyError if there is none."""
        node = self.layout.node(name)
        if not isinstance(node, StepSpec):
            raise KeyError(name)
        return node

    def get_node(self, name: str) -> Node:
        """The node called ``name``, at any depth; KeyError if there is none."""
        return self.layout.node(name)

    def get_compensation(self, name: str) -> StepSpec:
        """The compensation called ``name``; KeyError if there is none."""
        return self.layout.compensation(name)

    # -- declaring ---------------------------------------------------------------------

    @overload
    def step(self, fn: F, /) -> F: ...

    @overload
    def step(
        self,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | None = None,
        compensate: Callable[..., Any] | None = None,
    ) -> Callable[[F], F]: ...

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | None = None,
        compensate: Callable[..., Any] | None = None,
    ) -> Any:
        """Declare the next top-level step; use as ``@wf.step`` or ``@wf.step(retry=...)``.

        ``compensate`` is run with this step's result to undo it when a later step
        fails for good; wrap it with :func:`~durable.step` to give it its own retry
        policy and timeout. A function already wrapped by :func:`~durable.step` keeps
        its options unless given here.
        """

        def register(func: F) -> F:
            spec = make_step(func, name=name, retry=retry, timeout=timeout, compensate=compensate)
            self.layout.add(spec)
            return func

        if fn is not None:
            return register(fn)
        return register

    def branch(
        self,
        name: str,
        *,
        on: Callable[[Any], Any],
        cases: Mapping[BranchKey, Sequence[NodeLike]],
        default: Sequence[NodeLike] | None = None,
    ) -> Branch:
        """Declare the next top-level node: a branch (see :func:`durable.branch`)."""
        node = branch(name, on=on, cases=cases, default=default)
        self.layout.add(node)
        return node

    def parallel(
        self,
        name: str,
        branches: Mapping[str, Sequence[NodeLike]] | Sequence[NodeLike],
        *,
        into: Callable[..., Any] | None = None,
        on_error: ErrorMode = "fail_fast",
    ) -> Parallel:
        """Declare the next top-level node: a parallel group (see :func:`durable.parallel`)."""
        node = parallel(name, branches, into=into, on_error=on_error)
        self.layout.add(node)
        return node

    def foreach(
        self,
        name: str,
        *,
        items: Callable[[Any], Any] | str,
        steps: Sequence[NodeLike],
        concurrency: int = DEFAULT_CONCURRENCY,
        on_error: ErrorMode = "fail_fast",
        into: Callable[..., Any] | None = None,
    ) -> Foreach:
        """Declare the next top-level node: a foreach loop (see :func:`durable.foreach`)."""
        node = foreach(
            name, items=items, steps=steps, concurrency=concurrency, on_error=on_error, into=into
        )
        self.layout.add(node)
        return node

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, nodes={[n.name for n in self.layout.top]})"
