"""StepContext: what a step may ask about the run it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["StepContext"]


@dataclass(frozen=True)
class StepContext:
    """Passed as the optional second parameter of a step function.

    Attributes:
        execution_id: The execution this step runs in.
        workflow_name: The workflow's name.
        step_name: This step's name.
        sequence: Position of this step run in the execution, from 1.
        attempt: The attempt number, from 1.
        input: The execution's original input (decoded from JSON).
    """

    execution_id: str
    workflow_name: str
    step_name: str
    sequence: int
    attempt: int
    input: Any

    @property
    def idempotency_key(self) -> str:
        """A key unique to this step run, stable across its retries: use it for side effects."""
        return f"{self.execution_id}:{self.sequence}:{self.step_name}"
