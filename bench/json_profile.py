"""What the JSON profile check costs per payload, next to what a report already costs.

The orchestrator checks every payload it receives (``durable._json_profile.problem``),
the step results of CompleteTasks included: the hot path. This times the check on
payloads of typical shapes and sizes, and, for scale, ``json.loads`` alone and the
protobuf parse of a CompleteTasksRequest carrying the same payload (work every report
already costs). Prints a table, then one JSON line:
``{"json_profile": {"<case>": {"bytes": n, "check_us": x, "loads_us": y, "parse_us": z}}}``.

    python -m bench.json_profile [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable

from durable._json_profile import problem
from durable.v1 import worker_service_pb2 as pb


def _cases() -> dict[str, str]:
    order = {"id": 123456, "customer": "c-42", "total": 99.5, "paid": True, "note": "ok"}
    return {
        "small object (5 keys)": json.dumps(order),
        "order with 20 lines": json.dumps({**order, "lines": [order] * 20}),
        "10k-element number list": json.dumps(list(range(10_000))),
        "1,000 objects": json.dumps([order] * 1000),
        "100 KB string": json.dumps("x" * 100_000),
        "nested 60 deep": "[" * 60 + "1" + "]" * 60,
    }


def _time_us(fn: Callable[[], object], runs: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return statistics.median(timer.repeat(runs, number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    out: dict[str, dict[str, float]] = {}
    print(f"{'payload':28} {'bytes':>9} {'check µs':>10} {'loads µs':>10} {'parse µs':>10}")
    for name, text in _cases().items():
        assert problem(text) is None, name
        body = pb.CompleteTasksRequest(
            worker_id="w", completions=[pb.TaskCompletion(result_json=text)]
        ).SerializeToString()
        row = {
            "bytes": len(text.encode()),
            "check_us": _time_us(lambda t=text: problem(t), args.runs),  # type: ignore[misc]
            "loads_us": _time_us(lambda t=text: json.loads(t), args.runs),  # type: ignore[misc]
            "parse_us": _time_us(
                lambda b=body: pb.CompleteTasksRequest.FromString(b),  # type: ignore[misc]
                args.runs,
            ),
        }
        out[name] = row
        print(
            f"{name:28} {row['bytes']:>9,} {row['check_us']:>10.1f} {row['loads_us']:>10.1f} "
            f"{row['parse_us']:>10.1f}"
        )
    print(json.dumps({"json_profile": out}))


if __name__ == "__main__":
    main()
