"""The peer benchmarks: the workloads of the engine's benchmark, written against Temporal and DBOS.

Each module runs in ``.venv-peers`` (``make bench-peers``) and ends its output with one JSON
line of figures in the shape the main benchmark merges. What they share lives here: standard
library only, so the main benchmark can import it too.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

# Full-size workloads of the issue, and the reduced ones of --quick.
FULL = {"w1": 2000, "w2": 200, "w3": 500, "w4": 10_000}
QUICK = {"w1": 200, "w2": 20, "w3": 100, "w4": 500}
W2_STEPS = 5
W2_WARMUP = 10


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def pct(values: list[float], q: int) -> float:
    """The ``q``-th percentile of ``values``."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    """``{"median", "min", "max"}`` of one figure over the runs."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


async def poll_until(
    check: Callable[[], Awaitable[bool]], limit_s: float, interval: float = 0.05, what: str = ""
) -> None:
    """Call ``check`` every ``interval`` seconds until it returns true (``limit_s`` at most)."""
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit_s} s waiting for {what or check}")
        await asyncio.sleep(interval)


class Runs:
    """Per-run figures of every workload, reduced to the JSON shape of the issue."""

    def __init__(self) -> None:
        self.load_start = loadavg()
        self.w1: dict[str, dict[str, list[float]]] = {}
        self.w2: dict[str, list[float]] = {k: [] for k in ("p50", "p90", "p99", "h50", "h99")}
        self.w3: list[float] = []
        self.w4: list[float] = []
        self.w4_park: list[float] = []

    def add_w1(self, key: str, steps: int, count: int, wall_s: float) -> None:
        """One run of W1 under ``key``: ``W1_3``, ``W1_10``, or a variant (``W1_3_queue``)."""
        figures = self.w1.setdefault(key, {"workflows_per_s": [], "steps_per_s": []})
        figures["workflows_per_s"].append(count / wall_s)
        figures["steps_per_s"].append(count * steps / wall_s)

    def add_w2(self, e2e_s: list[float], handoff_s: list[float]) -> None:
        for q in (50, 90, 99):
            self.w2[f"p{q}"].append(pct(e2e_s, q) * 1000)
        self.w2["h50"].append(pct(handoff_s, 50) * 1000)
        self.w2["h99"].append(pct(handoff_s, 99) * 1000)

    def summary(
        self, peer: str, runs: int, w4_count: int, config: dict[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"peer": peer, "runs": runs}
        for key, figures in self.w1.items():
            out[key] = {k: spread(v, 1) for k, v in figures.items()}
        if self.w2["p50"]:
            out["W2"] = {
                "e2e_ms": {f"p{q}": spread(self.w2[f"p{q}"]) for q in (50, 90, 99)},
                "handoff_ms": {"p50": spread(self.w2["h50"]), "p99": spread(self.w2["h99"])},
            }
        if self.w3:
            out["W3"] = {"wall_s": spread(self.w3, 3)}
        if self.w4:
            out["W4"] = {"count": w4_count, "wall_s": spread(self.w4, 3)}
            out["W4"]["park_s"] = spread(self.w4_park, 3)
        # Other processes on the machine skew every figure: say how busy it was.
        out["config"] = {
            **config, "cpus": os.cpu_count(), "loadavg_start": self.load_start,
            "loadavg_end": loadavg(),
        }  # fmt: skip
        return out


def table(summary: dict[str, Any]) -> str:
    """The human-readable table of a peer's summary: one line per figure."""
    lines = [
        f"{summary['peer']} ({summary['runs']} runs each; median [min - max])",
        f"{'workload':<12}{'figure':<22}{'median':>12}{'min':>12}{'max':>12}",
    ]

    def row(workload: str, figure: str, s: dict[str, float]) -> None:
        lines.append(f"{workload:<12}{figure:<22}{s['median']:>12g}{s['min']:>12g}{s['max']:>12g}")

    for key, value in summary.items():
        if not key.startswith("W1"):
            continue
        for figure, s in value.items():
            row(key, figure, s)
    if "W2" in summary:
        for q, s in summary["W2"]["e2e_ms"].items():
            row("W2", f"e2e {q} ms", s)
        for q, s in summary["W2"]["handoff_ms"].items():
            row("W2", f"handoff {q} ms", s)
    if "W3" in summary:
        row("W3", "wall s", summary["W3"]["wall_s"])
    if "W4" in summary:
        row("W4", f"wall s ({summary['W4']['count']})", summary["W4"]["wall_s"])
        row("W4", "park s (not timed)", summary["W4"]["park_s"])
    return "\n".join(lines)
