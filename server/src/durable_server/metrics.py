"""Prometheus metrics of one orchestrator, and the HTTP endpoint that serves them.

Counters and histograms are fed by the engine as its transactions commit (``after_commit``:
a transaction that rolls back, or runs again after a conflict, counts once or not at all).
Gauges describe the shared database, so they are read from PostgreSQL when scraped: the
scrape (a thread of the HTTP server) asks the orchestrator's event loop to run the queries
and waits a bounded time; if the database does not answer, the last values are served.

Every orchestrator has its own ``CollectorRegistry``, so several can run in one process.

| metric | type | labels |
| --- | --- | --- |
| durable_executions_started_total | counter | workflow |
| durable_executions_finished_total | counter | workflow, status |
| durable_task_dispatch_seconds | histogram | queue |
| durable_step_duration_seconds | histogram | workflow, step, outcome |
| durable_queue_depth | gauge | queue, state (ready, delayed, leased, waiting) |
| durable_waiting_executions | gauge | |
| durable_timer_lag_seconds | gauge | |
| durable_workers | gauge | state (active) |
| durable_database_up | gauge | |
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from durable_server.clock import Clock
from durable_server.store import monitoring as mon_store
from durable_server.store.db import Database, after_commit, is_unreachable
from durable_server.store.rows import LeasedTask

__all__ = [
    "ACTIVE_WORKER_SECS",
    "QUEUE_STATES",
    "DatabaseGauges",
    "Metrics",
    "MetricsServer",
    "parse_listen",
]

log = logging.getLogger(__name__)

ACTIVE_WORKER_SECS = 60.0
QUEUE_STATES = ("ready", "delayed", "leased", "waiting")

_DISPATCH_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    float("inf"),
)  # fmt: skip
_STEP_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, float("inf"),
)  # fmt: skip


class Metrics:
    """The counters and histograms of one orchestrator, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.started = Counter(
            "durable_executions_started",
            "Executions created (StartWorkflow, schedules, child workflows), by workflow.",
            ["workflow"],
            registry=r,
        )
        self.finished = Counter(
            "durable_executions_finished",
            "Executions that ended, by workflow and final status.",
            ["workflow", "status"],
            registry=r,
        )
        self.dispatch = Histogram(
            "durable_task_dispatch_seconds",
            "Time from a task becoming ready to a worker claiming it, by queue.",
            ["queue"],
            buckets=_DISPATCH_BUCKETS,
            registry=r,
        )
        self.step_duration = Histogram(
            "durable_step_duration_seconds",
            "Step run time, from the claim to the worker's report, by workflow, step and "
            "outcome (completed, failed, timed_out, suspended).",
            ["workflow", "step", "outcome"],
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.database_up = Gauge(
            "durable_database_up",
            "1 when the last database health check succeeded, else 0.",
            registry=r,
        )
        self.database_up.set(1)

    # Each of these counts once the current transaction commits (at once outside one).

    def count_started(self, workflows: Iterable[str]) -> None:
        """Executions of these workflows were created."""
        names = list(workflows)
        if names:
            after_commit(partial(_inc_each, self.started, [(w,) for w in names]))

    def count_finished(self, ended: Iterable[tuple[str, str]]) -> None:
        """Executions ended, as (workflow, status) pairs."""
        pairs = list(ended)
        if pairs:
            after_commit(partial(_inc_each, self.finished, pairs))

    def count_claimed(self, queue: str, waited_secs: Sequence[float]) -> None:
        """Tasks of ``queue`` were claimed, each after being ready for so long."""
        if waited_secs:
            after_commit(partial(_observe_each, self.dispatch.labels(queue), list(waited_secs)))

    def count_step(self, workflow: str, task: LeasedTask, outcome: str, now: datetime) -> None:
        """The run of ``task`` (leased at ``task.leased_at``) ended at ``now`` with ``outcome``."""
        if task.leased_at is None:
            return
        secs = max((now - task.leased_at).total_seconds(), 0.0)
        child = self.step_duration.labels(workflow, task.step_name, outcome)
        after_commit(partial(child.observe, secs))


def _inc_each(counter: Counter, label_sets: Sequence[Sequence[str]]) -> None:
    for labels in label_sets:
        counter.labels(*labels).inc()


def _observe_each(histogram: Histogram, values: list[float]) -> None:
    for value in values:
        histogram.observe(max(value, 0.0))


# -- gauges read from the database ----------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The database gauges at one moment."""

    depth: dict[str, dict[str, int]] = field(default_factory=dict)  # {queue: {state: n}}
    waiting_executions: int = 0
    timer_lag_secs: float = 0.0
    active_workers: int = 0
    taken_at: float = 0.0  # time.monotonic()


class DatabaseGauges(Collector):
    """A collector whose gauges come from PostgreSQL, queried on the orchestrator's loop."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        *,
        known_queues: Iterable[str] = (),
        timeout: float = 2.0,
        max_age: float = 0.2,
    ) -> None:
        self.db = db
        self.clock = clock
        self.loop = loop
        self.timeout = timeout
        self.max_age = max_age
        # The default queue, the configured ones, and any seen once are reported (as 0 when
        # empty) from then on: a series that comes and goes reads as missing data.
        self._queues = frozenset({"default", *known_queues})
        self._last: Snapshot | None = None
        self._lock = threading.Lock()
        self._quiet_until = 0.0  # after a failed refresh, serve the last values until then

    async def refresh(self) -> Snapshot:
        """Query the database now; the new snapshot."""
        now = self.clock.db_now()
        async with self.db.connection() as conn:
            depth = await mon_store.monitoring_queue_depth(conn, now=now)
            backlog = await mon_store.monitoring_backlog(
                conn, now=now, active_within_secs=ACTIVE_WORKER_SECS
            )
        self._queues = self._queues | depth.keys()
        snap = Snapshot(
            depth={
                q: {st: depth.get(q, {}).get(st, 0) for st in QUEUE_STATES} for q in self._queues
            },
            waiting_executions=backlog.waiting_executions,
            timer_lag_secs=backlog.timer_lag_secs,
            active_workers=backlog.active_workers,
            taken_at=time.monotonic(),
        )
        self._last = snap
        return snap

    def _snapshot(self) -> Snapshot | None:
        """A fresh snapshot, or the last one when the database does not answer in time."""
        last = self._last
        if last is not None and time.monotonic() - last.taken_at < self.max_age:
            return last
        if _on_loop_thread(self.loop):  # blocking here would deadlock the loop
            return last
        with self._lock:  # concurrent scrapes share one refresh
            last = self._last
            now = time.monotonic()
            if (last is not None and now - last.taken_at < self.max_age) or (
                now < self._quiet_until
            ):
                return last
            try:
                future = asyncio.run_coroutine_threadsafe(self.refresh(), self.loop)
            except RuntimeError:  # the loop is closed
                return last
            try:
                return future.result(self.timeout)
            except (concurrent.futures.TimeoutError, TimeoutError):
                future.cancel()
                log.warning("metrics: the database did not answer in %.1fs", self.timeout)
            except Exception as exc:  # an unreachable database is logged where it is watched
                log.log(
                    logging.DEBUG if is_unreachable(exc) else logging.WARNING,
                    "metrics: cannot read the database gauges: %s",
                    exc,
                )
            self._quiet_until = time.monotonic() + self.timeout
            return last

    def describe(self) -> Iterable[GaugeMetricFamily]:
        """The families (no samples): registering does not query the database."""
        return list(self._families(None))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        """The gauges, read from the database (or the last values read)."""
        return list(self._families(self._snapshot()))

    def _families(self, snap: Snapshot | None) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "durable_queue_depth",
            "Tasks per queue and state: ready (runnable now), delayed (retry backoff or "
            "scheduled), leased (running), waiting (parked on a wait).",
            labels=["queue", "state"],
        )
        waiting = GaugeMetricFamily(
            "durable_waiting_executions", "Executions whose steps all wait (events, timers, ...)."
        )
        lag = GaugeMetricFamily(
            "durable_timer_lag_seconds",
            "How long the oldest due timer has been waiting to fire (0 when none is due).",
        )
        workers = GaugeMetricFamily(
            "durable_workers",
            f"Registered workers; active: seen within {ACTIVE_WORKER_SECS:.0f} s.",
            labels=["state"],
        )
        if snap is not None:
            for queue, counts in sorted(snap.depth.items()):
                for state, count in counts.items():
                    depth.add_metric([queue, state], count)
            waiting.add_metric([], snap.waiting_executions)
            lag.add_metric([], snap.timer_lag_secs)
            workers.add_metric(["active"], snap.active_workers)
        yield from (depth, waiting, lag, workers)


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


# -- the HTTP endpoint -----------------------------------------------------------------------


def parse_listen(listen: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:9464"``, ``":9464"`` for every interface) as (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"bad listen address {listen!r}: expected HOST:PORT")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class MetricsServer:
    """``/metrics`` over HTTP, served by prometheus_client's server in a daemon thread."""

    def __init__(self, registry: CollectorRegistry, listen: str) -> None:
        self.registry = registry
        self.listen = listen
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.address = ""

    def start(self) -> str:
        """Listen; returns ``host:port`` (the real port when asked for port 0)."""
        host, port = parse_listen(self.listen)
        self._httpd, self._thread = start_http_server(port, addr=host, registry=self.registry)
        shown = f"[{host}]" if ":" in host else host
        self.address = f"{shown}:{self._httpd.server_port}"
        return self.address

    async def stop(self) -> None:
        """Stop serving and close the socket."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        await asyncio.to_thread(httpd.shutdown)
        httpd.server_close()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)
