"""Wiring: the pool, the engine, the services, the gRPC server, and their start/stop order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry.trace import TracerProvider

from durable._shared import tracer
from durable.v1 import (
    operations_service_pb2,
    operations_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    testing_service_pb2,
    testing_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from durable_server.api.auth import AuthInterceptor
from durable_server.api.disconnects import quiet_client_disconnects
from durable_server.api.interceptors import ErrorInterceptor
from durable_server.api.operations_service import OperationsService
from durable_server.api.schedule_service import ScheduleService
from durable_server.api.testing_service import TestingService
from durable_server.api.worker_service import WorkerService
from durable_server.api.workflow_service import WorkflowService
from durable_server.auth.verifier import TokenRecord, TokenVerifier
from durable_server.clock import Clock, ManualClock, SystemClock
from durable_server.config import Settings, is_loopback
from durable_server.dispatcher import Dispatcher, Listener
from durable_server.engine.clock_control import ClockControl
from durable_server.engine.context import EngineContext, Hooks
from durable_server.engine.definitions import DefinitionCache
from durable_server.engine.engine import Engine
from durable_server.engine.operations import Operations
from durable_server.engine.reads import Reads
from durable_server.engine.registry import Registry
from durable_server.engine.retention import RECHECK_RETENTION, Retention
from durable_server.engine.scheduler import Scheduler
from durable_server.health import DatabaseHealth, database_probe
from durable_server.loops import DueLoop
from durable_server.metrics import DatabaseGauges, Metrics, MetricsServer
from durable_server.reflection import enable_server_reflection
from durable_server.store import tokens as token_store
from durable_server.store import workflows as wf_store
from durable_server.store.db import Database
from durable_server.store.migrate import migrate
from durable_server.tls import server_credentials
from durable_server.watch import FinishWatch

__all__ = ["Orchestrator", "run_migrations"]

log = logging.getLogger(__name__)
SLOW_STOP_SECS = 2.0

HEALTH_TIMEOUT_SECS = 2.0  # a database slower than this to answer SELECT 1 is unhealthy
# Clients and workers ping every 30 s while a call (a long poll) is in flight
# (durable._channel.KEEPALIVE_TIME_MS). By default gRPC refuses pings less than 5 minutes
# apart on a connection that sends no data, and closes it after a few: allow them.
KEEPALIVE_ENFORCEMENT: list[tuple[str, int]] = [
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]

_SERVICES = (
    workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name,
    worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name,
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
    operations_service_pb2.DESCRIPTOR.services_by_name["OperationsService"].full_name,
    testing_service_pb2.DESCRIPTOR.services_by_name["TestingService"].full_name,
)


async def run_migrations(dsn: str, schema: str) -> list[int]:
    """Apply pending migrations to ``schema``; returns the versions applied."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, schema)
    finally:
        await conn.close()


class Orchestrator:
    """One orchestrator process: call ``start()``, then ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        clock: Clock | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.clock = clock or _default_clock(settings)
        self.tracer_provider = tracer_provider
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._db: Database | None = None
        self._listener: Listener | None = None
        self._loops: list[DueLoop] = []
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.metrics = Metrics()  # a registry of its own: several orchestrators per process
        self.metrics_address = ""  # host:port of /metrics once started ("" when disabled)
        self._metrics_server: MetricsServer | None = None
        self.watch = FinishWatch()  # parked WaitExecution calls
        self.health_monitor: DatabaseHealth | None = None
        self.clock_control: ClockControl | None = None  # in test mode (a manual clock)

    @property
    def address(self) -> str:
        """``host:port`` the server listens on."""
        host = self.settings.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Migrate, connect, start the loops and the gRPC server."""
        s = self.settings
        credentials = server_credentials(s)  # unreadable files stop the start before anything runs
        await run_migrations(self.dsn, s.schema)
        self._db = db = await Database.connect(
            self.dsn, s.schema, min_size=s.pool_min_size, max_size=s.pool_max_size
        )

        async def load_definition(version: str) -> bytes | None:
            async with db.connection() as conn:
                return await wf_store.workflow_version_get(conn, version=version)

        definitions = DefinitionCache(load_definition)
        watch = self.watch
        # Who hears of committed changes exist before what changes things.
        self.dispatcher = dispatcher = Dispatcher(self.clock)  # parked polls
        timer_wake = asyncio.Event()  # new timers: the timer loop looks again
        ctx = EngineContext(
            db,
            self.clock,
            s,
            definitions,
            metrics=self.metrics,
            hooks=Hooks(
                on_ready=dispatcher.notify, on_timer=timer_wake.set, on_finished=watch.finished
            ),
        )
        self.engine = engine = Engine(ctx)
        self.scheduler = scheduler = Scheduler(ctx)
        registry = Registry(ctx, scheduler)
        operations = Operations(ctx)
        self._listener = Listener(
            self.dsn,
            ctx.notify_channel,
            dispatcher,
            ctx.finish_notice.channel,
            watch,
            db.reachability,
        )
        self._listener.start()
        interval = timedelta(seconds=s.loop_interval_secs)
        self.timer_loop = DueLoop(
            "timer-loop",
            self.clock,
            engine.fire_timers,
            engine.next_timer_due,
            interval,
            wake=timer_wake,
        )
        self.reclaimer = DueLoop(
            "reclaimer", self.clock, engine.reclaim_expired, engine.next_lease_expiry, interval
        )
        self.schedule_loop = DueLoop(
            "scheduler", self.clock, scheduler.fire_due, scheduler.next_due, interval
        )
        self._loops = [self.timer_loop, self.reclaimer, self.schedule_loop]
        if s.retention_days > 0:
            retention = Retention(db, self.clock, s.retention_days)
            self.retention_loop = DueLoop(
                "retention",
                self.clock,
                retention.delete_due,
                retention.next_due,
                max(interval, RECHECK_RETENTION),
            )
            self._loops.append(self.retention_loop)
        for loop in self._loops:
            loop.start()
        if isinstance(self.clock, ManualClock):
            self.clock_control = ClockControl(
                db, self.clock, (self.timer_loop.tick, self.schedule_loop.tick)
            )
        self._server = self._build_server(
            WorkflowService(
                engine, registry, Reads(db, self.clock), s, tracer(self.tracer_provider), watch
            ),
            WorkerService(engine, registry, dispatcher, s),
            ScheduleService(scheduler, db, s),
            OperationsService(operations),
            TestingService(self.clock_control),
            self._token_verifier(db) if s.auth_required else None,
        )
        if credentials is None:
            self.port = self._server.add_insecure_port(s.listen)
        else:
            self.port = self._server.add_secure_port(s.listen, credentials)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {s.listen}")
        await self._server.start()
        for name in ("", *_SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._start_monitoring(db)
        log.info(
            "durable orchestrator listening on %s (schema %s; %s; %s)",
            self.address,
            s.schema,
            ("mTLS" if s.tls_client_ca else "TLS") if s.tls else "plain text",
            "tokens required" if s.auth_required else "no authentication",
        )
        if self.clock_control is not None:
            log.warning(
                "test mode: the clock is manual, at %s; it moves only through TestingService",
                self.clock.now().isoformat(),
            )
        if not is_loopback(s.listen):
            if not s.tls:
                log.warning("serving plain text beyond loopback (DURABLE_ALLOW_INSECURE)")
            if not s.auth_required:
                log.warning("no authentication beyond loopback (DURABLE_AUTH=off)")

    def _token_verifier(self, db: Database) -> TokenVerifier:
        async def load(token_ids: Sequence[str]) -> dict[str, TokenRecord]:
            async with db.connection() as conn:
                rows = await token_store.token_get_many(conn, token_ids=token_ids)
            return {row["id"]: TokenRecord.from_row(row) for row in rows}

        return TokenVerifier(load, self.clock, self.settings.auth_cache_secs)

    def _start_monitoring(self, db: Database) -> None:
        """The database health check, and the /metrics endpoint when configured."""
        s = self.settings
        if s.metrics_listen:
            self.metrics.registry.register(
                DatabaseGauges(
                    db, self.clock, asyncio.get_running_loop(), known_queues=s.queue_limits
                )
            )
            self._metrics_server = MetricsServer(self.metrics.registry, s.metrics_listen)
            self.metrics_address = self._metrics_server.start()
            log.info("metrics on http://%s/metrics", self.metrics_address)
        self.health_monitor = DatabaseHealth(
            self.health,
            _SERVICES,
            database_probe(db),
            interval=s.health_check_secs,
            timeout=HEALTH_TIMEOUT_SECS,
            on_change=lambda up: self.metrics.database_up.set(1 if up else 0),
        )
        self.health_monitor.start()

    def _build_server(
        self,
        workflows: WorkflowService,
        workers: WorkerService,
        schedules: ScheduleService,
        operations: OperationsService,
        testing: TestingService,
        verifier: TokenVerifier | None,
    ) -> grpc.aio.Server:
        limit = self.settings.max_payload_bytes + 4 * 1024 * 1024  # room for the envelope
        quiet_client_disconnects()  # a client that goes away is not an error
        interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor()]  # type: ignore[type-arg]
        if verifier is not None:  # inside the error interceptor: refusals become statuses
            interceptors.append(AuthInterceptor(verifier))
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                *KEEPALIVE_ENFORCEMENT,
            ],
        )
        workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server(workflows, server)
        worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(workers, server)
        schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server(schedules, server)
        operations_service_pb2_grpc.add_OperationsServiceServicer_to_server(operations, server)
        testing_service_pb2_grpc.add_TestingServiceServicer_to_server(testing, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        enable_server_reflection(
            (*_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name), server
        )
        return server

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, return parked polls, stop the loops, close the pool."""
        if self.health_monitor is not None:
            await _timed("health checks", self.health_monitor.stop())
        if self._metrics_server is not None:
            await _timed("metrics endpoint", self._metrics_server.stop())
        await self.health.enter_graceful_shutdown()
        self.watch.close()
        if hasattr(self, "dispatcher"):
            self.dispatcher.close()
        if self._server is not None:
            await _timed("gRPC server", self._server.stop(grace))
        for loop in self._loops:
            await _timed(loop.name, loop.stop())
        if self._listener is not None:
            await _timed("LISTEN connection", self._listener.stop())
        if self._db is not None:
            await _timed("connection pool", self._db.close())


def _default_clock(settings: Settings) -> Clock:
    """The real clock; in test mode a manual one, starting now (whole seconds)."""
    if settings.manual_clock:
        return ManualClock(datetime.now(UTC).replace(microsecond=0))
    return SystemClock()


async def _timed(part: str, stopping: Awaitable[object]) -> None:
    """Await one part's stop; say so when it took long (a shutdown should be quick)."""
    started = time.monotonic()
    await stopping
    took = time.monotonic() - started
    if took > SLOW_STOP_SECS:
        log.warning("stopping the %s took %.1fs", part, took)
