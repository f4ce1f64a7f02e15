"""The workflow DSL: a :class:`Workflow` and its steps, declared with a decorator.

Example::

    process_order = Workflow("process_order", timeout=hours(2))

    @process_order.step
    def validate(order):
        return {"order_id": order["id"]}

    @process_order.step(retry=RetryPolicy(max_attempts=3))
    async def charge(data, ctx):
        return {**data, "receipt": f"rcpt-{data['order_id']}"}

Steps run in declaration order; each receives the previous step's result (the first
receives the execution input) and, if it takes a second parameter, a
:class:`~durable.StepContext`. Mistakes raise ``ValueError`` here, at definition time.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

from durable._retry import RetryPolicy
from durable.v1 import definition_pb2

__all__ = ["StepSpec", "Workflow"]

F = TypeVar("F", bound=Callable[..., Any])

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid workflow/step/queue name, else raise ValueError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{kind} name {name!r} is invalid: use 1-128 characters from letters, digits, "
            "'_', '-', '.', starting with a letter or '_'"
        )
    return name


@dataclass(frozen=True)
class StepSpec:
    """A step as the worker runs it: its function and its options."""

    name: str
    fn: Callable[..., Any]
    takes_context: bool
    is_async: bool
    retry: RetryPolicy | None
    timeout: timedelta | None

    def to_proto(self) -> definition_pb2.Step:
        """The step's part of the workflow definition."""
        msg = definition_pb2.Step(name=self.name)
        if self.retry is not None:
            msg.retry.CopyFrom(self.retry.to_proto())
        if self.timeout:
            msg.timeout.FromTimedelta(self.timeout)
        return msg


def _arity(fn: Callable[..., Any], name: str) -> bool:
    """True if ``fn`` takes a context parameter; raise ValueError on other shapes."""
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    required = [p for p in params if p.default is p.empty]
    if len(params) < 1 or len(required) > 2:
        raise ValueError(
            f"step {name!r} must take the previous result as its first parameter and "
            f"optionally a StepContext as its second; it takes {len(params)} positional "
            "parameter(s)"
        )
    return len(params) >= 2


class Workflow:
    """A named workflow: an ordered list of steps plus options.

    Args:
        name: Unique workflow name.
        timeout: Whole-execution timeout (``None`` for none).
        queue: Queue for starts that do not name one.
    """

    def __init__(
        self, name: str, *, timeout: timedelta | None = None, queue: str | None = None
    ) -> None:
        self.name = check_name("workflow", name)
        if timeout is not None and timeout <= timedelta(0):
            raise ValueError(f"workflow {name!r}: timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.queue = check_name("queue", queue) if queue else None
        self._steps: dict[str, StepSpec] = {}

    @property
    def steps(self) -> list[StepSpec]:
        """The steps in declaration order."""
        return list(self._steps.values())

    def get_step(self, name: str) -> StepSpec:
        """The step called ``name``; KeyError if there is none."""
        return self._steps[name]

    @overload
    def step(self, fn: F, /) -> F: ...

    @overload
    def step(
        self,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | None = None,
    ) -> Callable[[F], F]: ...

    def step(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: timedelta | None = None,
    ) -> Any:
        """Declare the next step; use as ``@wf.step`` or ``@wf.step(retry=...)``."""

        def register(func: F) -> F:
            step_name = check_name("step", name or func.__name__)
            if step_name in self._steps:
                raise ValueError(f"workflow {self.name!r} already has a step named {step_name!r}")
            if retry is not None and not isinstance(retry, RetryPolicy):
                raise ValueError(f"step {step_name!r}: retry must be a RetryPolicy")
            if timeout is not None and timeout <= timedelta(0):
                raise ValueError(f"step {step_name!r}: timeout must be positive, got {timeout}")
            self._steps[step_name] = StepSpec(
                name=step_name,
                fn=func,
                takes_context=_arity(func, step_name),
                is_async=inspect.iscoroutinefunction(func),
                retry=retry,
                timeout=timeout,
            )
            return func

        if fn is not None:
            return register(fn)
        return register

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, steps={list(self._steps)})"
