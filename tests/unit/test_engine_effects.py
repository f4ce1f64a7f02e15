"""Typed reads of effects and waits, where the engine and servicers once used getattr."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

from durable_server.engine.children import ChildWaitSpec
from durable_server.engine.definitions import ParallelDef
from durable_server.engine.states import ExecutionStatus, StepAttemptStatus, TaskKind
from durable_server.engine.transitions import (
    ROOT,
    CompensationDone,
    Effect,
    EndLane,
    EnqueueTask,
    FailLane,
    FinishExecution,
    Origin,
    RecordAttempt,
    RemoveTask,
    RetryTask,
    StartGroup,
    workflow_version_of,
)
from durable_server.engine.waits import EventWaitSpec, InputWaitSpec, SleepSpec, WaitSpec
from durable_server.store.rows import LeasedTask

ORIGIN = Origin("0190a5c4-0000-7000-8000-000000000001", "default", 0, "v-origin")
TASK = LeasedTask(
    id=7,
    execution_id=ORIGIN.execution_id,
    sequence=1,
    step_name="a",
    attempt=1,
    failures=0,
    losses=0,
    queue="default",
    priority=0,
    workflow_version="v-task",
    timeout_secs=None,
    leased_at=datetime(2025, 1, 1, tzinfo=UTC),
    worker_id="w1",
)
NODE = ParallelDef("p", (), fail_fast=True, has_into=False)


def test_every_effect_names_the_definition_it_needs_or_none() -> None:
    examples: dict[type, tuple[Effect, str | None]] = {
        RecordAttempt: (RecordAttempt(TASK, StepAttemptStatus.COMPLETED), "v-task"),
        EnqueueTask: (EnqueueTask(ORIGIN, ROOT, TaskKind.STEP, "b", "{}"), "v-origin"),
        RetryTask: (RetryTask(7, 1.0, failure=True, loss=False), None),
        RemoveTask: (RemoveTask(7), None),
        StartGroup: (StartGroup(ORIGIN, ROOT, NODE, "{}"), "v-origin"),
        EndLane: (EndLane(ORIGIN, ROOT, "{}"), "v-origin"),
        FailLane: (FailLane(ORIGIN, ROOT, "{}"), "v-origin"),
        CompensationDone: (CompensationDone(ORIGIN, 3, failed=False), "v-origin"),
        FinishExecution: (FinishExecution(ORIGIN.execution_id, ExecutionStatus.CANCELLED), None),
    }
    assert set(examples) == set(typing.get_args(Effect))  # every kind of effect
    for kind, (effect, version) in examples.items():
        assert workflow_version_of(effect) == version, kind.__name__


def test_every_wait_has_a_timeout_value_a_sleep_none() -> None:
    waits: list[WaitSpec] = [
        SleepSpec(0, 1.0, None),
        ChildWaitSpec(0, 5.0, '"late"'),
        EventWaitSpec(0, ("go",), "one", 5.0, '"late"'),
        InputWaitSpec(0, "answer", "{}", 5.0, '"late"'),
    ]
    assert {type(w) for w in waits} == set(typing.get_args(WaitSpec))
    assert [w.timeout_value_json for w in waits] == [None, '"late"', '"late"', '"late"']
