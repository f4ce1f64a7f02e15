"""What the PostgreSQL here can commit: the ceiling the engine's steps/s is measured against.

Creates a scratch database and runs ``pgbench`` on it:
  * TPC-B-like (pgbench's built-in script, ``pgbench -i`` at ``--scale``) at 1, 4 and 16
    clients;
  * a bare job queue as a custom script at 4 and 16 clients. One script run is one step of
    a durable engine with nothing else: a transaction that claims the oldest ready job
    (``FOR UPDATE SKIP LOCKED``) and marks it running, then a transaction that marks it done
    and enqueues the next job. Two commits per step, as an engine that holds a lease while
    the step runs needs at least.
Each case is run ``--runs`` times (interleaved) and reported as median, min and max tps (for
the queue, tps = steps/s). The database is dropped at the end. Prints a table, then one JSON
line: ``{"ceiling": {"tpcb": {"1": {...}, ...}, "claim_complete": {"4": {...}, ...}}, ...}``.

    python -m bench.ceiling [--seconds 10] [--runs 3] [--scale 16]

From other benchmarks: ``measure(dsn_base, seconds, runs)`` (blocking; from async code run it
with ``asyncio.to_thread``). Needs ``pgbench`` and ``psql`` (postgresql-client) on the PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

BASE_URL = os.environ.get("DURABLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
TPCB_CLIENTS = (1, 4, 16)
QUEUE_CLIENTS = (4, 16)
QUEUE_SEED = 1000  # ready jobs kept in the queue: every step takes one and adds one

QUEUE_SCHEMA = f"""
DROP TABLE IF EXISTS bench_jobs;
CREATE TABLE bench_jobs (
    id bigserial PRIMARY KEY,
    chain bigint NOT NULL,
    seq integer NOT NULL,
    state smallint NOT NULL DEFAULT 0,
    payload jsonb NOT NULL DEFAULT '{{}}',
    result jsonb,
    claimed_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX bench_jobs_ready ON bench_jobs (id) WHERE state = 0;
INSERT INTO bench_jobs (chain, seq) SELECT g, 0 FROM generate_series(1, {QUEUE_SEED}) g;
VACUUM ANALYZE bench_jobs;
"""

# One run of this script is one step: claim (commit), then complete + enqueue next (commit).
QUEUE_SCRIPT = """\
UPDATE bench_jobs SET state = 1, claimed_at = now()
 WHERE id = (SELECT id FROM bench_jobs WHERE state = 0
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING id AS job_id, chain AS job_chain, seq AS job_seq \\gset
BEGIN;
UPDATE bench_jobs SET state = 2, finished_at = now(), result = '{"ok": true}'
 WHERE id = :job_id;
INSERT INTO bench_jobs (chain, seq, payload) VALUES (:job_chain, :job_seq + 1, '{"ok": true}');
END;
"""

_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found on PATH (install postgresql-client)")
    return path


def _psql(url: str, sql: str) -> None:
    proc = subprocess.run(
        [_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"],
        input=sql, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed: {proc.stderr.strip()}")


def _pgbench(url: str, args: list[str]) -> float:
    """Run pgbench and return its tps (without initial connection time)."""
    proc = subprocess.run(
        [_tool("pgbench"), *args, url], capture_output=True, text=True, check=False
    )
    match = _TPS.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"pgbench {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return float(match.group(1))


def _drop(admin: str, db_name: str, attempts: int = 30) -> None:
    """Drop the scratch database, retrying while the server restarts (30 s at most)."""
    for attempt in range(attempts):
        try:
            _psql(admin, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            return
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            time.sleep(1)


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def measure(
    dsn_base: str = BASE_URL, seconds: float = 10, runs: int = 3, scale: int = 16
) -> dict[str, object]:
    """Run every case ``runs`` times on a scratch database; the ``{"ceiling": ...}`` dict.

    ``dsn_base`` is a server URL without a database name (``postgresql://user@host:port``).
    """
    dsn_base = dsn_base.rstrip("/")
    db_name = f"bench_ceiling_{uuid.uuid4().hex[:8]}"
    admin = f"{dsn_base}/postgres"
    url = f"{dsn_base}/{db_name}"
    duration = str(max(1, round(seconds)))
    tpcb: dict[int, list[float]] = {c: [] for c in TPCB_CLIENTS}
    queue: dict[int, list[float]] = {c: [] for c in QUEUE_CLIENTS}
    load_start = [round(x, 2) for x in os.getloadavg()]
    _psql(admin, f'CREATE DATABASE "{db_name}"')
    try:
        subprocess.run(
            [_tool("pgbench"), "-i", "-q", "-s", str(scale), url],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "claim_complete.sql"
            script.write_text(QUEUE_SCRIPT)
            for _ in range(runs):
                for clients in TPCB_CLIENTS:
                    threads = str(min(clients, os.cpu_count() or 1))
                    tpcb[clients].append(
                        _pgbench(url, ["-M", "prepared", "-c", str(clients), "-j", threads,
                                       "-T", duration])
                    )  # fmt: skip
                for clients in QUEUE_CLIENTS:
                    _psql(url, QUEUE_SCHEMA)
                    threads = str(min(clients, os.cpu_count() or 1))
                    queue[clients].append(
                        _pgbench(url, ["-n", "-M", "prepared", "-c", str(clients), "-j", threads,
                                       "-T", duration, "-f", str(script)])
                    )  # fmt: skip
    finally:
        _drop(admin, db_name)
    return {
        "ceiling": {
            "tpcb": {str(c): _stats(v) for c, v in tpcb.items()},
            "claim_complete": {str(c): _stats(v) for c, v in queue.items()},
        },
        "ceiling_config": {
            "seconds": float(duration),
            "runs": runs,
            "scale": scale,
            "cpus": os.cpu_count(),
            # Other processes on the machine skew the figures: say how busy it was.
            "loadavg_start": load_start,
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
    }


def table(summary: dict[str, object]) -> str:
    """The human-readable table of a ``measure`` result."""
    ceiling = summary["ceiling"]
    assert isinstance(ceiling, dict)
    lines = [f"{'case':<34}{'clients':>8}{'median tps':>12}{'min':>10}{'max':>10}"]
    names = {"tpcb": "pgbench TPC-B-like", "claim_complete": "claim+complete (steps/s)"}
    for key, name in names.items():
        for clients, s in ceiling[key].items():
            lines.append(
                f"{name:<34}{clients:>8}{s['median']:>12.1f}{s['min']:>10.1f}{s['max']:>10.1f}"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="per pgbench run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, default=16, help="pgbench -i scale factor")
    parser.add_argument("--dsn", default=BASE_URL, help="server URL without a database name")
    args = parser.parse_args()
    summary = measure(args.dsn, args.seconds, args.runs, args.scale)
    cfg = summary["ceiling_config"]
    assert isinstance(cfg, dict)
    print(f"PostgreSQL ceiling: {cfg['runs']} runs of {cfg['seconds']:g} s, scale {cfg['scale']}")
    print(table(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
