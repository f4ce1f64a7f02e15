"""Compare this engine's figures with ``bench/baseline.json``; fail on a drop of over 20%.

Runs the suite (this engine only, no peers, no ceiling) unless given a results file, then
compares every figure that both hold: a throughput must not fall below 80% of the
baseline, a time, latency, load or memory figure must not grow past 1/0.8 of it. Run by
hand (``make bench-check``), not in CI: timings on a shared machine are noisy.

    python -m bench.check [--results bench/results/suite.json] [--tolerance 0.2]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import ROOT

BASELINE = ROOT / "bench" / "baseline.json"
SIZES = ["--w1-count", "1000", "--w2-count", "100", "--w4-count", "2000", "--w5-seconds", "10"]
"""The workload sizes the baseline was measured with (see its ``measured`` line)."""

# Figures this small are noise, not a trend: compare at least these (per unit).
FLOORS = {"xacts_per_s": 1.0, "cpu_percent": 1.0, "mib": 10.0, "ms": 1.0, "s": 0.05}


def higher_is_better(name: str) -> bool:
    """Throughputs go up; times, latencies, idle load and memory go down."""
    return name.endswith("per_s") and not name.startswith("xacts")


def floor(name: str) -> float:
    for suffix, value in FLOORS.items():
        if name.endswith(suffix):
            return value
    return 0.0


def figures(engine: dict[str, Any], path: str = "") -> Iterator[tuple[str, str, float]]:
    """(path, figure name, median) of every ``{median, min, max}`` figure, and peak RSS."""
    for key, value in engine.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict) and "median" in value:
            yield (
                here,
                key if key not in ("p50", "p90", "p99") else path.rsplit(".", 1)[-1],
                float(value["median"]),
            )
        elif isinstance(value, dict):
            yield from figures(value, here)
        elif key == "peak_rss_mib":
            yield here, key, float(value)


def durable(summary: dict[str, Any]) -> dict[str, Any]:
    for engine in summary["engines"]:
        if engine.get("peer") == "durable":
            return dict(engine)
    raise SystemExit("no figures of this engine in the summary")


def compare(base: dict[str, Any], new: dict[str, Any], tolerance: float) -> list[str]:
    """One line per figure; lines of regressions start with ``REGRESSION``."""
    now = {path: value for path, _, value in figures(new)}
    lines = []
    for path, name, before in figures(base):
        if path not in now:
            continue
        after = now[path]
        low = floor(name)
        if higher_is_better(name):
            ratio = max(after, low) / max(before, low)
        else:
            ratio = max(before, low) / max(after, low)
        verdict = "REGRESSION" if ratio < 1 - tolerance else "ok"
        lines.append(f"{verdict:<10} {path}: {before:g} -> {after:g} (ratio {ratio:.2f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a suite.json to check instead of running")
    parser.add_argument("--tolerance", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    baseline = durable(json.loads(BASELINE.read_text()))
    if args.results is None:
        import asyncio

        from bench import suite

        extra = [] if "typescript" in baseline else ["--no-typescript"]  # nothing to compare
        options = suite.parse_args(
            ["--no-peers", "--no-ceiling", "--runs", str(args.runs), *SIZES, *extra]
        )
        summary = asyncio.run(suite.main_async(options))
    else:
        summary = json.loads(args.results.read_text())
    lines = compare(baseline, durable(summary), args.tolerance)
    print("\n".join(lines))
    bad = [line for line in lines if line.startswith("REGRESSION")]
    if bad or not lines:
        print(f"{len(bad)} figure(s) dropped by more than {args.tolerance:.0%}" if bad else "")
        sys.exit(1)
    print(f"no figure dropped by more than {args.tolerance:.0%} against {BASELINE.name}")


if __name__ == "__main__":
    main()
