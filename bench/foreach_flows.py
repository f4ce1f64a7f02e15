"""The workflow of ``bench/foreach.py``: one foreach over the input's items."""

from __future__ import annotations

from typing import Any

from durable import Workflow

fan_out = Workflow("bench_foreach")


@fan_out.step
def load(data: dict[str, Any]) -> dict[str, Any]:
    return {"items": list(range(data["count"]))}


def double(item: int) -> int:
    return item * 2


fan_out.foreach("double_all", items=lambda d: d["items"], steps=[double], concurrency=50)


@fan_out.step
def summarize(results: list[int]) -> dict[str, Any]:
    return {"count": len(results), "sum": sum(results), "in_order": results == sorted(results)}
