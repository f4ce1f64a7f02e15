"""How long the cron slot search takes when a limit cuts a long window short.

A schedule that fell far behind (an orchestrator down for a year) asks for the last few
slots of a long window: ``CronSchedule.slots(after, until, limit=n)`` must find them
without walking every slot of the window. Times two such searches (every minute over a
year in a zone with clock changes, limit 10; every second over a year, limit 100),
repeated, and prints the figures and a JSON summary (also bench/results/cron_slots.json).

    python -m bench.cron_slots [--repeat 20]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.harness import ROOT
from durable_server.engine.cron import CronSchedule

CASES: dict[str, tuple[str, str, datetime, datetime, int]] = {
    "minutes_year_limit_10": (
        "* * * * *",
        "America/New_York",
        datetime(2025, 6, 1, tzinfo=UTC),
        datetime(2026, 6, 1, 0, 0, 30, tzinfo=UTC),
        10,
    ),
    "seconds_year_limit_100": (
        "* * * * * *",
        "Europe/Berlin",
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
        100,
    ),
}


def _time(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds per call, ``repeat`` times."""
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


def run(repeat: int) -> dict[str, object]:
    summary: dict[str, object] = {"repeat": repeat}
    for name, (expr, zone, after, until, limit) in CASES.items():
        cron = CronSchedule.parse(expr, zone)
        found = cron.slots(after, until, limit=limit)
        assert len(found) == limit, (name, len(found))
        ms = _time(functools.partial(cron.slots, after, until, limit=limit), repeat)
        summary[f"{name}_median_ms"] = round(statistics.median(ms), 3)
        summary[f"{name}_max_ms"] = round(max(ms), 3)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    summary = run(args.repeat)
    for name in CASES:
        print(
            f"{name}: median {summary[f'{name}_median_ms']} ms, "
            f"max {summary[f'{name}_max_ms']} ms over {args.repeat} runs"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cron_slots.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
