"""Child workflows: starting them from a step run, once, and the outcomes a wait records.

A child's id is derived from its parent's step run (execution, sequence) and the call's
index within it, so however often the step runs again — a retry, a re-run after a wait, a
crash — the same child is meant, and creating it again does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from durable_server.engine.definitions import DefinitionCache
from durable_server.engine.starts import new_execution
from durable_server.engine.transitions import StepError
from durable_server.ids import child_execution_id
from durable_server.metrics import Metrics
from durable_server.store import executions as ex_store
from durable_server.store import workflows as wf_store
from durable_server.store.db import Conn
from durable_server.store.rows import LeasedTask

__all__ = [
    "ChildStart",
    "ChildStartError",
    "ChildWaitSpec",
    "start_children",
]


@dataclass(frozen=True)
class ChildStart:
    """A child a step run asks for, at ``index`` among its calls."""

    index: int
    workflow_name: str
    input_json: str
    queue: str | None
    priority: int


@dataclass(frozen=True)
class ChildWaitSpec:
    """Wait for the child started at ``index``; ``timeout_value_json`` None: a timeout fails."""

    index: int
    timeout_secs: float | None
    timeout_value_json: str | None


class ChildStartError(Exception):
    """A child could not be started; the step run fails with ``error``."""

    def __init__(self, error: StepError) -> None:
        super().__init__(error.message)
        self.error = error


async def start_children(
    conn: Conn,
    definitions: DefinitionCache,
    task: LeasedTask,
    starts: Sequence[ChildStart],
    *,
    now: datetime | None,
    metrics: Metrics | None = None,
) -> list[str]:
    """Create the children of ``task``'s step run that do not exist yet; their queues."""
    if not starts:
        return []
    children: list[ex_store.NewChild] = []
    for start in starts:
        version = await wf_store.workflow_latest_get(conn, name=start.workflow_name)
        definition = await definitions.get(version) if version else None
        if definition is None:
            raise ChildStartError(
                StepError(
                    "ChildWorkflowNotFound",
                    f"step {task.step_name!r} started child workflow {start.workflow_name!r}, "
                    "which is not registered: start a worker whose module defines it",
                    non_retryable=True,
                )
            )
        new = new_execution(
            definition,
            execution_id=child_execution_id(task.execution_id, task.sequence, start.index),
            queue=start.queue,
            priority=start.priority,
            input_json=start.input_json,
        )
        children.append(
            ex_store.NewChild(
                id=new.id,
                workflow_name=new.workflow_name,
                workflow_version=new.workflow_version,
                queue=new.queue,
                priority=new.priority,
                input_json=new.input_json,
                timeout_secs=new.timeout_secs,
                first_step=new.first_step,
                first_step_timeout_secs=new.first_step_timeout_secs,
                first_task_kind=new.first_task_kind,
            )
        )
    created = set(
        await ex_store.execution_insert_children(
            conn, children, parent_id=task.execution_id, now=now
        )
    )
    if metrics is not None:
        metrics.count_started(c.workflow_name for c in children if c.id in created)
    return sorted({c.queue for c in children if c.id in created})
