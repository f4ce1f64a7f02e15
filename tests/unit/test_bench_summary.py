"""The bench suite's summary: the TypeScript worker's figures sit beside the Python worker's,
under ``"typescript"`` in this engine's figures, shown in the table, and ``bench.check``
(which compares only figures both summaries hold) keeps passing against a baseline without
them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import check, suite, ts_worker

BASELINE = Path(__file__).resolve().parents[2] / "bench" / "baseline.json"


def _w1(steps_per_s: float) -> dict[str, float]:
    return {"workflows_per_s": steps_per_s / 3, "steps_per_s": steps_per_s}


def _w2(handoff: list[float]) -> dict[str, list[float]]:
    return {"e2e": [20.0, 22.0, 30.0], "handoff": handoff}


def test_w1_figures_are_median_min_max_of_the_runs() -> None:
    figures = suite.w1_figures(300, [_w1(900), _w1(1200), _w1(1500)], peak_kib=61_440)
    assert figures == {
        "count": 300,
        "workflows_per_s": {"median": 400.0, "min": 300.0, "max": 500.0},
        "steps_per_s": {"median": 1200.0, "min": 900.0, "max": 1500.0},
        "peak_rss_mib": 60.0,
    }


def test_w2_figures_are_percentiles_per_run_then_spread() -> None:
    figures = suite.w2_figures(3, [_w2([1.0, 2.0, 9.0]), _w2([3.0, 4.0, 5.0])])
    assert figures["count"] == 3
    assert set(figures["e2e_ms"]) == {"p50", "p90", "p99"}
    assert figures["handoff_ms"]["p50"] == {"median": 3.0, "min": 2.0, "max": 4.0}
    assert figures["handoff_ms"]["p99"] == {"median": 7.0, "min": 5.0, "max": 9.0}


def _engine_with_typescript() -> dict[str, Any]:
    engine = check.durable(json.loads(BASELINE.read_text()))
    engine["typescript"] = {
        "worker": "typescript",
        "W1_3": suite.w1_figures(300, [_w1(1800)], 60 * 1024),
        "W1_10": suite.w1_figures(100, [_w1(2200)], 60 * 1024),
        "W2": suite.w2_figures(50, [_w2([13.0, 14.0, 44.0])]),
    }
    return engine


def test_the_table_shows_the_typescript_rows_beside_the_python_ones() -> None:
    lines = suite.table([_engine_with_typescript()], None).splitlines()
    rows = {line.split("  ")[0]: line for line in lines}
    assert "1800 [1800-1800]" in rows["W1 3 steps (TypeScript worker): steps/s"]
    assert "2200 [2200-2200]" in rows["W1 10 steps (TypeScript worker): steps/s"]
    assert "14 [14-14]" in rows["W2 hand-off p50 ms (TypeScript worker)"]
    assert "44 [44-44]" in rows["W2 hand-off p99 ms (TypeScript worker)"]
    assert "W1 3 steps: steps/s" in rows  # the Python worker's rows keep their names


def test_check_compares_only_the_figures_the_baseline_holds() -> None:
    baseline = check.durable(json.loads(BASELINE.read_text()))
    lines = check.compare(baseline, _engine_with_typescript(), tolerance=0.2)
    assert lines
    assert all(line.startswith("ok") for line in lines)
    assert not any("typescript" in line for line in lines)
    # The same figures, compared both ways once the baseline has them too.
    with_ts = _engine_with_typescript()
    assert any(
        "typescript.W2.handoff_ms.p99" in line for line in check.compare(with_ts, with_ts, 0.2)
    )


def test_no_typescript_option() -> None:
    assert suite.parse_args(["--no-typescript"]).no_typescript
    assert not suite.parse_args([]).no_typescript


def test_the_typescript_worker_is_skipped_with_a_reason_without_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "")
    script, why = ts_worker.build()
    assert script is None
    assert "node is not on PATH" in why
