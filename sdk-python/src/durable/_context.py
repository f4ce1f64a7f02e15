"""StepContext: what a step may ask about the run it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from durable._models import TaskKind

__all__ = ["StepContext"]


@dataclass(frozen=True)
class StepContext:
    """Passed as the optional last parameter of a step, compensation or into function.

    Attributes:
        execution_id: The execution this step runs in.
        workflow_name: The workflow's name.
        step_name: This step's name (a compensation's own name; for an into merge, the
            name of its parallel or foreach node).
        sequence: Position of this step run in the execution, from 1.
        attempt: The attempt number, from 1.
        input: The execution's original input (decoded from JSON).
        lane_path: Where this run is: ``""`` at the top level, else the lanes from the
            outside in, e.g. ``"checks/fraud"`` or ``"notify/17"`` (foreach item 17).
        kind: What runs: :attr:`TaskKind.STEP`, :attr:`TaskKind.INTO` or
            :attr:`TaskKind.COMPENSATION`.
    """

    execution_id: str
    workflow_name: str
    step_name: str
    sequence: int
    attempt: int
    input: Any
    lane_path: str = ""
    kind: TaskKind = TaskKind.STEP

    @property
    def idempotency_key(self) -> str:
        """A key unique to this step run, stable across its retries: use it for side effects."""
        return f"{self.execution_id}:{self.sequence}:{self.step_name}"
