"""The Worker: register workflows, then poll, run, heartbeat and report until drained.

Example::

    async with Worker("127.0.0.1:7411", [process_order]) as worker:
        ...  # steps of process_order run here until the block ends (a drain)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import TracebackType

import grpc
import grpc.aio
from opentelemetry.trace import TracerProvider

from durable import TLSConfig, Workflow
from durable._shared import (
    CHANNEL_OPTIONS,
    BearerTokenInterceptor,
    aio_channel,
    check_token,
    definition_hash,
    resolve_tls,
    to_definition,
)
from durable._shared import tracer as durable_tracer
from durable.errors import from_rpc_error
from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_worker import rpc, shutdown
from durable_worker.backoff import Backoff
from durable_worker.capture import DEFAULT_MAX_LOG_BYTES
from durable_worker.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_PAYLOAD_BYTES,
    default_worker_id,
)
from durable_worker.heartbeat import Heartbeat
from durable_worker.poller import DEFAULT_POLL_WAIT, Poller
from durable_worker.reporter import Reporter
from durable_worker.runner import Runner

__all__ = ["Worker", "default_queues"]

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 30.0
# Keepalive and brisk reconnects, but no retry policy: the worker resends its own calls,
# knowing which leases are still its own (a report is not idempotent across a lease's
# expiry; see durable_worker.reporter).
_CHANNEL_OPTIONS = [
    *CHANNEL_OPTIONS,
    # A poll may lease many tasks, each carrying up to two payloads; the server's own
    # limits bound what it sends, so the worker does not add a second, lower one.
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
]


def default_queues(workflows: Sequence[Workflow]) -> list[str]:
    """The queues the workflows start on: each one's queue, or ``default``."""
    return sorted({w.queue or "default" for w in workflows})


def _unique(workflows: Sequence[Workflow]) -> list[Workflow]:
    by_name: dict[str, Workflow] = {}
    for workflow in workflows:
        seen = by_name.setdefault(workflow.name, workflow)
        if seen is not workflow:
            raise ValueError(f"two different workflows are named {workflow.name!r}")
    if not by_name:
        raise ValueError("a worker needs at least one workflow")
    return list(by_name.values())


class Worker:
    """Runs the steps of ``workflows`` for the orchestrator at ``address``.

    Args:
        address: The orchestrator's ``host:port``.
        workflows: The workflows to register and run.
        queues: Queues to poll; by default every queue the workflows start on.
        concurrency: Steps running at the same time, at most.
        worker_id: This worker's id; by default ``<hostname>-<pid>-<random hex>``.
        drain_timeout: Seconds a drain waits for running steps before giving them back.
        max_payload_bytes: Largest encoded step result; larger ones fail (PayloadTooLarge).
        max_log_bytes: Log text (logging and print) kept per step run, in UTF-8 bytes; past
            it (or past 1,000 lines) lines are dropped and a last line says how many.
        poll_wait: How long one long-poll waits on the orchestrator for tasks.
        announce: Print the ready line on stdout (the command line does, for scripts).
        tracer_provider: Where step attempts' spans go; by default the global provider.
        token: A worker token, sent with every call, for an orchestrator that requires one.
        tls: ``True`` for TLS with the system's CAs, or a :class:`~durable.TLSConfig`
            (own CA, client certificate for mTLS); default plain text.
        allow_takeover: Move workflows already registered on another queue to the queue
            their definitions now declare (a deploy that moves them); needs a token
            allowed on both queues. Without it such a registration is refused.
    """

    def __init__(
        self,
        address: str,
        workflows: Sequence[Workflow],
        *,
        queues: Sequence[str] | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        worker_id: str | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        poll_wait: timedelta = DEFAULT_POLL_WAIT,
        announce: bool = False,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
        tracer_provider: TracerProvider | None = None,
        token: str | None = None,
        tls: bool | TLSConfig | None = None,
        allow_takeover: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if drain_timeout < 0:
            raise ValueError(f"drain_timeout must not be negative, got {drain_timeout}")
        if max_payload_bytes < 1:
            raise ValueError(f"max_payload_bytes must be positive, got {max_payload_bytes}")
        if max_log_bytes < 0:
            raise ValueError(f"max_log_bytes must not be negative, got {max_log_bytes}")
        self.address = address
        self.workflows = _unique(workflows)
        self.queues = list(queues) if queues else default_queues(self.workflows)
        self.concurrency = concurrency
        self.worker_id = worker_id or default_worker_id()
        self.drain_timeout = drain_timeout
        self.max_payload_bytes = max_payload_bytes
        self.poll_wait = poll_wait
        self.announce = announce
        self.max_log_bytes = max_log_bytes
        self.tracer_provider = tracer_provider
        self.allow_takeover = allow_takeover
        self._token = check_token(token)
        self._tls = resolve_tls(tls)
        self._definitions = [to_definition(w) for w in self.workflows]  # ValueError now
        self._versions: dict[str, str] = {}
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.WorkerServiceAsyncStub | None = None
        self._runner: Runner | None = None
        self._reporter: Reporter | None = None
        self._heartbeat: Heartbeat | None = None
        self._poller: Poller | None = None
        self._started = False
        self._registering: asyncio.Future[None] | None = None
        self._draining: asyncio.Future[None] | None = None
        self._forced = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopped = asyncio.Event()

    # -- state -------------------------------------------------------------------------

    @property
    def versions(self) -> Mapping[str, str]:
        """Workflow name -> the version the orchestrator registered (empty before start)."""
        return dict(self._versions)

    @property
    def running(self) -> int:
        """How many steps are running now."""
        return len(self._runner.leases()) if self._runner else 0

    @property
    def busy_threads(self) -> int:
        """Sync steps still running in threads (after a drain: stuck ones)."""
        return self._runner.busy_threads if self._runner else 0

    # -- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Register the workflows (retrying while the orchestrator is unreachable), then run.

        Raises:
            durable.DurableError: The orchestrator refused the registration.
        """
        if self._started:
            raise RuntimeError("this worker was started already")
        self._started = True
        self._channel = aio_channel(
            self.address,
            _CHANNEL_OPTIONS,
            self._tls,
            # Only with a token: an interceptor costs a little on every call.
            [BearerTokenInterceptor(self._token)] if self._token else None,
        )
        self._stub = pb_grpc.WorkerServiceStub(self._channel)
        self._registering = asyncio.ensure_future(self._register_until_done())
        try:
            await self._registering
        except asyncio.CancelledError:
            if self._draining is None:
                raise
            return  # a drain was asked for before the orchestrator answered
        except BaseException:
            await self._close()
            raise
        self._start_parts(self._stub)
        ready = (
            f"durable-worker ready worker_id={self.worker_id} queues={','.join(self.queues)} "
            f"workflows={','.join(w.name for w in self.workflows)}"
        )
        if self.announce:
            print(ready, flush=True)
        else:
            log.info("%s", ready)
        self._ready.set()

    async def wait_ready(self) -> None:
        """Return once the worker is registered and polling.

        Raises:
            RuntimeError: The worker stopped before it was ready.
        """
        ready = asyncio.ensure_future(self._ready.wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        stopped.cancel()
        if not self._ready.is_set():
            raise RuntimeError("the worker stopped before it was ready")

    async def run(self) -> None:
        """Start, then wait until the worker is drained."""
        await self.start()
        await self._stopped.wait()

    def request_drain(self) -> None:
        """Start a drain without waiting for it (for signal handlers).

        A second request stops waiting for running steps and gives them back at once.
        """
        if self._draining is None:
            log.info("draining: finishing running steps (up to %gs)", self.drain_timeout)
            self._draining = asyncio.ensure_future(self._drain(self.drain_timeout))
        else:
            log.warning("asked again: giving running steps back now")
            self._forced.set()

    async def drain(self) -> None:
        """Stop polling, let running steps finish (up to ``drain_timeout``), then close."""
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain(self.drain_timeout))
        await asyncio.shield(self._draining)

    async def stop(self) -> None:
        """Stop now: give running steps back, send the reports already made, close."""
        self._forced.set()
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain(0.0))
        await asyncio.shield(self._draining)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.drain()

    # -- internals ---------------------------------------------------------------------

    async def _register(self) -> None:
        """One RegisterWorkflows call; records the versions the orchestrator returns."""
        assert self._stub is not None
        request = pb.RegisterWorkflowsRequest(
            worker_id=self.worker_id,
            workflows=self._definitions,
            queues=self.queues,
            allow_takeover=self.allow_takeover,
            mode=pb.REGISTER_MODE_REPLACE,  # one call with every workflow: the whole set
        )
        response = await self._stub.RegisterWorkflows(request, timeout=REGISTER_TIMEOUT)
        returned = {r.name: r.version for r in response.workflows}
        for definition in self._definitions:
            name = definition.name
            self._versions[name] = returned.get(name) or definition_hash(definition)
        log.info(
            "registered %d workflow(s) with %s as worker %s",
            len(self._definitions),
            self.address,
            self.worker_id,
        )

    async def _register_until_done(self) -> None:
        """Register, retrying with backoff while the orchestrator is unreachable."""
        backoff = Backoff()
        while True:
            try:
                await self._register()
                return
            except grpc.aio.AioRpcError as exc:
                if not rpc.is_transient(exc):
                    raise from_rpc_error(exc) from exc
                delay = backoff.next_delay()
                log.warning("cannot register (%s); retrying in %.2fs", rpc.describe(exc), delay)
                await asyncio.sleep(delay)

    def _start_parts(self, stub: pb_grpc.WorkerServiceAsyncStub) -> None:
        self._reporter = reporter = Reporter(stub, self.worker_id)
        self._runner = Runner(
            self.workflows,
            self._versions,
            self._reporter,
            concurrency=self.concurrency,
            max_payload_bytes=self.max_payload_bytes,
            max_log_bytes=self.max_log_bytes,
            tracer=durable_tracer(self.tracer_provider),
            worker_id=self.worker_id,
        )
        self._reporter.take_tasks(
            self.queues, self._runner.reserve, self._runner.unreserve, self._runner.start
        )
        self._heartbeat = Heartbeat(
            stub, self.worker_id, self._runner, extra_leases=self._reporter.pending_leases
        )
        self._poller = Poller(
            stub,
            self.worker_id,
            self.queues,
            self._runner,
            register=self._register,
            poll_wait=self.poll_wait,
            backlog=lambda: reporter.wait_pending_below(max(2 * self.concurrency, 100)),
        )
        self._reporter.start()
        self._heartbeat.start()
        self._poller.start()

    async def _drain(self, drain_timeout: float) -> None:
        if self._registering is not None and not self._registering.done():
            self._registering.cancel()
        try:
            if self._poller and self._runner and self._reporter and self._heartbeat:
                released = await shutdown.drain(
                    poller=self._poller,
                    runner=self._runner,
                    reporter=self._reporter,
                    heartbeat=self._heartbeat,
                    drain_timeout=drain_timeout,
                    forced=self._forced,
                )
                log.info("drained; %d running task(s) given back", released)
        finally:
            await self._close()

    async def _close(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
        if self._runner is not None:
            self._runner.close()
        self._stopped.set()
