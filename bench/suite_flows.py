"""The workflows of ``bench/suite.py`` (W1-W4): no-op steps, timed steps, fan-outs, a wait.

Every step is a no-op, so the figures measure the engine, not the work.
"""

from __future__ import annotations

import time
from typing import Any

from durable import StepContext, Workflow, step

FAN_OUT = 500


def _noop(data: Any) -> Any:
    return data


def _chain(name: str, length: int) -> Workflow:
    """A workflow of ``length`` sequential no-op steps named s1..sN."""
    wf = Workflow(name)
    for i in range(1, length + 1):
        wf.step(step(_noop, name=f"s{i}"))
    return wf


w1_three = _chain("bench_w1_three", 3)
w1_ten = _chain("bench_w1_ten", 10)


def _timed(data: dict[str, Any]) -> dict[str, Any]:
    """Record when this step started and (just before returning) when it ended."""
    started = time.time()
    return {"starts": [*data["starts"], started], "ends": [*data["ends"], time.time()]}


w2_timed = Workflow("bench_w2_timed")
for _i in range(1, 6):
    w2_timed.step(step(_timed, name=f"t{_i}"))


w3_foreach = Workflow("bench_w3_foreach")
w3_foreach.foreach("each", items="items", steps=[step(_noop, name="item")], concurrency=FAN_OUT)

w3_parallel = Workflow("bench_w3_parallel")
w3_parallel.parallel("all", {f"b{i}": [step(_noop, name=f"p{i}")] for i in range(FAN_OUT)})

w4_wait = Workflow("bench_w4_wait")


@w4_wait.step
def wait_for_go(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {"n": data["n"], "got": ctx.wait_for_event("go")}
