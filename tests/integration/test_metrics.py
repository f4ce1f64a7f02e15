"""Prometheus metrics and grpc.health.v1 on a real orchestrator, database and worker.

The metrics are scraped over HTTP from ``/metrics``, as Prometheus would; the health
status is read with grpc.health.v1 ``Health/Check``.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from durable import Client, RetryPolicy, StepContext, Workflow
from durable._models import ExecutionStatus
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from durable_server.config import Settings
from durable_server.metrics import DatabaseGauges, parse_listen
from durable_server.store.db import Database, after_commit
from durable_worker import Worker
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient
from tests.helpers.wait import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _fetch(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.headers.get("Content-Type", ""), reply.read().decode()


async def scrape(orch: Orchestrator) -> Samples:
    """GET /metrics, parsed: {(sample name, labels): value}."""
    content_type, text = await asyncio.to_thread(_fetch, f"http://{orch.metrics_address}/metrics")
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


async def scrape_until(
    orch: Orchestrator, check: Callable[[Samples], bool], timeout: float = 10.0
) -> Samples:
    """Scrape until ``check`` holds (gauges are cached for a fifth of a second)."""

    async def probe() -> Samples | None:
        samples = await scrape(orch)
        return samples if check(samples) else None

    found = await wait_until(probe, timeout=timeout, interval=0.1)
    assert found is not None
    return found


def metered_workflow(attempts: list[int]) -> Workflow:
    wf = Workflow("metered")

    @wf.step
    def prepare(data: Any) -> Any:
        return data

    @wf.step(
        retry=RetryPolicy(
            max_attempts=3, backoff="fixed", initial_delay=timedelta(milliseconds=50), jitter=0.0
        )
    )
    def flaky(data: Any, ctx: StepContext) -> Any:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return {"ok": data}

    return wf


def waiting_workflow() -> Workflow:
    wf = Workflow("waiter")

    @wf.step
    def wait_for_go(data: Any, ctx: StepContext) -> Any:
        return ctx.wait_for_event("go")

    return wf


async def test_metrics_count_a_run_with_a_retry_and_show_the_gauges(database_url: str) -> None:
    attempts: list[int] = []
    metered, waiter = metered_workflow(attempts), waiting_workflow()
    async with running_orchestrator(database_url, metrics_listen="127.0.0.1:0") as orch:
        host, port = parse_listen(orch.metrics_address)
        assert host == "127.0.0.1"
        assert port > 0
        before = await scrape(orch)
        assert value(before, "durable_database_up") == 1.0
        assert total(before, "durable_executions_started_total") == 0.0

        async with (
            Worker(orch.address, [metered, waiter], poll_wait=timedelta(seconds=1)),
            Client(orch.address) as client,
        ):
            execution_id = await client.start(metered, 7)
            done = await client.wait(execution_id, timeout=20)
            assert done.status == ExecutionStatus.COMPLETED
            assert attempts == [1, 2]

            after = await scrape(orch)
            assert value(after, "durable_executions_started_total", workflow="metered") == 1.0
            assert (
                value(
                    after,
                    "durable_executions_finished_total",
                    workflow="metered",
                    status="completed",
                )
                == 1.0
            )
            step = "durable_step_duration_seconds_count"
            assert value(after, step, workflow="metered", step="prepare", outcome="completed") == 1
            assert value(after, step, workflow="metered", step="flaky", outcome="failed") == 1
            assert value(after, step, workflow="metered", step="flaky", outcome="completed") == 1
            assert total(after, step, workflow="metered") >= 2
            # prepare, flaky's first attempt, flaky's retry: three claims.
            assert value(after, "durable_task_dispatch_seconds_count", queue="default") == 3
            assert total(after, "durable_task_dispatch_seconds_sum") >= 0.0
            # The gauges are read from the database (cached briefly: the first scrape's
            # values may still be served).
            gauges = await scrape_until(
                orch, lambda s: value(s, "durable_workers", state="active") == 1
            )
            assert value(gauges, "durable_timer_lag_seconds") == 0.0
            for state in ("ready", "delayed", "leased", "waiting"):
                assert value(gauges, "durable_queue_depth", queue="default", state=state) == 0

            # An execution parked on a wait shows in the waiting gauges, holding no worker.
            waiting_id = await client.start(waiter, None)
            parked = await scrape_until(
                orch, lambda s: value(s, "durable_waiting_executions") == 1.0
            )
            assert value(parked, "durable_queue_depth", queue="default", state="waiting") == 1
            assert value(parked, "durable_queue_depth", queue="default", state="leased") == 0
            assert (
                value(parked, step, workflow="waiter", step="wait_for_go", outcome="suspended") == 1
            )
            await client.send_event(waiting_id, "go", {"go": True})
            assert (await client.wait(waiting_id, timeout=20)).result == {"go": True}

        final = await scrape_until(orch, lambda s: value(s, "durable_waiting_executions") == 0)
        assert value(final, "durable_executions_started_total", workflow="waiter") == 1
        assert total(final, "durable_executions_finished_total", status="completed") == 2


async def test_gauges_read_queue_depth_timer_lag_and_workers(
    database_url: str, manual_clock: ManualClock
) -> None:
    timed = Workflow("timed", timeout=timedelta(seconds=10))

    @timed.step
    def only(data: Any) -> Any:
        return data

    async with running_orchestrator(
        database_url, clock=manual_clock, metrics_listen="127.0.0.1:0", queue_limits={"idle": 3}
    ) as orch:
        async with grpc.aio.insecure_channel(orch.address) as channel:
            raw = RawClient(channel)
            await raw.register(timed)
            for _ in range(3):
                await raw.start("timed")
            await raw.start("timed", scheduled_at=_timestamp(manual_clock, minutes=5))
            samples = await scrape(orch)
            assert value(samples, "durable_queue_depth", queue="default", state="ready") == 3
            assert value(samples, "durable_queue_depth", queue="default", state="delayed") == 1
            # A configured queue is reported even while it has no tasks.
            assert value(samples, "durable_queue_depth", queue="idle", state="ready") == 0
            assert value(samples, "durable_workers", state="active") == 1
            assert value(samples, "durable_executions_started_total", workflow="timed") == 4

            manual_clock.advance(timedelta(seconds=2))
            [task] = await raw.poll(max_tasks=1)
            samples = await scrape_until(
                orch,
                lambda s: value(s, "durable_queue_depth", queue="default", state="leased") == 1,
            )
            assert value(samples, "durable_queue_depth", queue="default", state="ready") == 2
            # It waited two seconds (of the manual clock) between ready and claimed.
            assert value(samples, "durable_task_dispatch_seconds_count", queue="default") == 1
            assert value(samples, "durable_task_dispatch_seconds_sum", queue="default") == 2.0

            # With the timer loop stopped, the timeouts come due and stay unfired: lag grows.
            await orch.timer_loop.stop()
            manual_clock.advance(timedelta(seconds=12))  # 4 s past the first deadlines
            samples = await scrape_until(
                orch, lambda s: (value(s, "durable_timer_lag_seconds") or 0) > 0
            )
            assert value(samples, "durable_timer_lag_seconds") == 4.0
            await raw.complete(task)
            manual_clock.advance(timedelta(seconds=70))  # the worker was last seen 70 s ago
            samples = await scrape_until(
                orch, lambda s: value(s, "durable_workers", state="active") == 0
            )
            assert value(samples, "durable_timer_lag_seconds") == 74.0


def _timestamp(clock: ManualClock, *, minutes: int) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(clock.now() + timedelta(minutes=minutes))
    return ts


async def test_metrics_are_off_unless_configured(database_url: str) -> None:
    wf = Workflow("quiet")

    @wf.step
    def only(data: Any) -> Any:
        return data

    async with running_orchestrator(database_url) as orch:
        assert orch.metrics_address == ""
        async with (
            Worker(orch.address, [wf], poll_wait=timedelta(seconds=1)),
            Client(orch.address) as client,
        ):
            await client.wait(await client.start(wf, 1), timeout=20)
        # Still counted (in the orchestrator's own registry), just not served.
        registry = orch.metrics.registry
        assert (
            registry.get_sample_value(
                "durable_executions_finished_total", {"workflow": "quiet", "status": "completed"}
            )
            == 1.0
        )


async def test_two_orchestrators_in_one_process_count_separately(database_url: str) -> None:
    async with (
        running_orchestrator(database_url, metrics_listen="127.0.0.1:0") as a,
        running_orchestrator(database_url, metrics_listen="127.0.0.1:0") as b,
    ):
        assert a.metrics_address != b.metrics_address
        async with grpc.aio.insecure_channel(a.address) as channel:
            raw = RawClient(channel)
            wf = Workflow("solo")

            @wf.step
            def only(data: Any) -> Any:
                return data

            await raw.register(wf)
            await raw.start("solo")
        assert value(await scrape(a), "durable_executions_started_total", workflow="solo") == 1
        assert value(await scrape(b), "durable_executions_started_total", workflow="solo") is None
        # Both read the same database for the gauges.
        assert value(await scrape(b), "durable_queue_depth", queue="default", state="ready") == 1


async def test_children_schedules_and_cancels_are_counted(database_url: str) -> None:
    child = Workflow("child")

    @child.step
    def child_step(data: Any) -> Any:
        return data

    parent = Workflow("parent")

    @parent.step
    def spawn(data: Any, ctx: StepContext) -> Any:
        ctx.start_workflow("child", data)
        return ctx.wait_for_event("never")

    async with (
        running_orchestrator(database_url, metrics_listen="127.0.0.1:0") as orch,
        Worker(orch.address, [child, parent], poll_wait=timedelta(seconds=1)),
        Client(orch.address) as client,
    ):
        parent_id = await client.start(parent, 1)
        samples = await scrape_until(
            orch,
            lambda s: (
                value(s, "durable_executions_finished_total", workflow="child", status="completed")
                == 1
            ),
        )
        assert value(samples, "durable_executions_started_total", workflow="child") == 1
        await client.cancel(parent_id)
        await client.create_schedule("nightly", child, "0 3 * * *")
        await client.wait(await client.trigger_schedule("nightly"), timeout=20)
        samples = await scrape(orch)
        assert value(samples, "durable_executions_started_total", workflow="child") == 2
        assert value(samples, "durable_executions_started_total", workflow="parent") == 1
        assert (
            value(
                samples, "durable_executions_finished_total", workflow="parent", status="cancelled"
            )
            == 1
        )


async def test_gauges_serve_the_last_values_when_the_database_is_gone(
    database_url: str,
) -> None:
    db = await Database.connect(database_url, "durable", min_size=1, max_size=1)
    loop = asyncio.get_running_loop()
    gauges = DatabaseGauges(db, ManualClock(), loop, timeout=0.5, max_age=0.0)
    try:
        # On the loop's own thread nothing is queried (it would wait for itself).
        assert [f.samples for f in gauges.collect()] == [[], [], [], []]
        fresh = await asyncio.to_thread(lambda: list(gauges.collect()))
        assert [len(f.samples) for f in fresh] == [4, 1, 1, 1]
    finally:
        await db.close()
    stale = await asyncio.to_thread(lambda: list(gauges.collect()))
    assert [f.samples for f in stale] == [f.samples for f in fresh]


async def test_counts_happen_only_when_the_transaction_commits(database_url: str) -> None:
    db = await Database.connect(database_url, "durable", min_size=1, max_size=1)
    ran: list[str] = []

    async def rolled_back() -> None:
        async with db.transaction():
            after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("abort")

    try:
        with pytest.raises(RuntimeError):
            await rolled_back()
        async with db.transaction():
            after_commit(lambda: ran.append("committed"))
            assert ran == []
        assert ran == ["committed"]
        after_commit(lambda: ran.append("outside a transaction"))
        assert ran == ["committed", "outside a transaction"]
    finally:
        await db.close()


# -- health ---------------------------------------------------------------------------------


async def _status(stub: health_pb2_grpc.HealthStub, service: str) -> int:
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    return int(reply.status)


async def _dead_database() -> None:
    """A probe of a database that is not there: nothing listens on port 1."""
    conn = await asyncpg.connect("postgresql://durable@127.0.0.1:1/durable", timeout=1)
    await conn.close()


async def test_health_follows_database_reachability(database_url: str) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    services = ("", "durable.v1.WorkflowService", "durable.v1.WorkerService")
    async with (
        running_orchestrator(database_url, health_check_secs=0.05) as orch,
        grpc.aio.insecure_channel(orch.address) as channel,
    ):
        stub = health_pb2_grpc.HealthStub(channel)
        assert orch.health_monitor is not None
        for service in services:
            assert await _status(stub, service) == serving

        async def all_are(status: int) -> bool:
            return all([await _status(stub, s) == status for s in services])

        real_probe = orch.health_monitor.probe
        orch.health_monitor.probe = _dead_database
        await wait_until(lambda: all_are(not_serving), timeout=10)
        assert orch.metrics.registry.get_sample_value("durable_database_up") == 0.0

        orch.health_monitor.probe = real_probe
        await wait_until(lambda: all_are(serving), timeout=10)
        assert orch.metrics.registry.get_sample_value("durable_database_up") == 1.0


async def test_health_probe_times_out_on_a_hanging_database(database_url: str) -> None:
    async with running_orchestrator(database_url, health_check_secs=3600) as orch:
        monitor = orch.health_monitor
        assert monitor is not None
        monitor.timeout = 0.05

        async def hang() -> None:
            await asyncio.Event().wait()  # a database that never answers

        monitor.probe = hang
        assert await monitor.check() is False
        assert monitor.serving is False


def test_settings_read_the_metrics_address_and_reject_a_bad_one() -> None:
    settings = Settings.from_env(
        {"DURABLE_METRICS_LISTEN": "0.0.0.0:9464", "DURABLE_HEALTH_CHECK_SECONDS": "2.5"}
    )
    assert settings.metrics_listen == "0.0.0.0:9464"
    assert settings.health_check_secs == 2.5
    assert Settings().metrics_listen == ""
    with pytest.raises(ValueError, match="metrics_listen"):
        Settings(metrics_listen="localhost")
    assert parse_listen(":9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
