"""Long-poll matching: park PollTasks calls until work is ready, then claim it.

A parked poll wakes when this orchestrator makes work ready (``notify``), when another
one does (PostgreSQL LISTEN/NOTIFY, see ``Listener``), when delayed work becomes due
(retry backoff, scheduled starts — by the injected clock), or at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta

import asyncpg

from durable_server.clock import Clock
from durable_server.store.reachability import Reachability
from durable_server.store.rows import ClaimedTask
from durable_server.watch import FinishWatch

__all__ = ["Claim", "Dispatcher", "Listener"]

log = logging.getLogger(__name__)

_FAR = timedelta(days=365)

# (worker id, queues, max tasks) -> (tasks leased, when delayed work is next ready)
Claim = Callable[[str, Sequence[str], int], Awaitable[tuple[list[ClaimedTask], datetime | None]]]


class Dispatcher:
    """Parked long-polls, by queue."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._closed = False

    def notify(self, queues: Iterable[str]) -> None:
        """Wake the polls parked on any of ``queues``."""
        for queue in queues:
            for event in self._waiters.get(queue, ()):
                event.set()

    def notify_all(self) -> None:
        """Wake every parked poll (reconnects, shutdown)."""
        for events in self._waiters.values():
            for event in events:
                event.set()

    def close(self) -> None:
        """Return every parked poll now, and any later one at once."""
        self._closed = True
        self.notify_all()

    async def poll(
        self,
        claim: Claim,
        worker_id: str,
        queues: Sequence[str],
        max_tasks: int,
        wait: timedelta,
    ) -> list[ClaimedTask]:
        """Claim up to ``max_tasks`` tasks, waiting up to ``wait`` (real time) for some."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait.total_seconds()
        event = asyncio.Event()
        for queue in queues:
            self._waiters[queue].add(event)
        try:
            while True:
                event.clear()  # before claiming, so a commit during the claim is not missed
                tasks, next_due = await claim(worker_id, queues, max_tasks)
                remaining = deadline - loop.time()
                if tasks or remaining <= 0 or self._closed:
                    return tasks
                await self._park(event, next_due, remaining)
        finally:
            for queue in queues:
                self._waiters[queue].discard(event)
                if not self._waiters[queue]:
                    del self._waiters[queue]

    async def _park(
        self, event: asyncio.Event, next_due: datetime | None, remaining: float
    ) -> None:
        until = next_due or self.clock.now() + _FAR
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.clock.sleep_until(until, wake=event), timeout=remaining)


class Listener:
    """A dedicated connection that LISTENs for ready work and finished executions.

    Ready work (queue names on ``channel``) wakes parked polls; finished executions
    (ids on ``finished_channel``) wake parked WaitExecution calls. Its drops and
    reconnects are reported to ``reachability``, which logs an outage once.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        dispatcher: Dispatcher,
        finished_channel: str,
        watch: FinishWatch,
        reachability: Reachability,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.dispatcher = dispatcher
        self.finished_channel = finished_channel
        self.watch = watch
        self.reachability = reachability
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin listening in the background (reconnecting when the connection drops)."""
        self._task = asyncio.create_task(self._run(), name="durable-listener")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.dispatcher.notify([payload])

    def _on_finished(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.watch.notified(payload)

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            conn: asyncpg.Connection | None = None
            started = self.reachability.now()
            try:
                conn = await asyncpg.connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(self.channel, self._on_notify)
                await conn.add_listener(self.finished_channel, self._on_finished)
                self.reachability.reached(started)
                backoff = 0.1
                self.dispatcher.notify_all()  # work may have arrived while disconnected
                self.watch.wake_all()  # and executions may have finished
                await lost.wait()
                self.reachability.failed(ConnectionError("the LISTEN connection was closed"))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.reachability.failed(exc, started)
                log.debug("LISTEN connection failed (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
