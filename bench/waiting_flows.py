"""The workflow of ``bench/waiting.py``: one step that waits for the event "go"."""

from __future__ import annotations

from typing import Any

from durable import StepContext, Workflow

held = Workflow("bench_wait_event")


@held.step
def wait_for_go(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    payload = ctx.wait_for_event("go")
    return {"n": data["n"], "got": payload}
