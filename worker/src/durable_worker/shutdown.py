"""Drain a worker: stop taking work, let running steps finish, give back the rest.

The order matters:

1. Stop polling (the poll in flight is cancelled), so no new task is leased.
2. Wait up to the drain timeout for running steps to finish (a second signal cuts it short).
3. Abandon the steps still running and give their leases back with ReleaseTasks, so
   another worker can take them at once instead of after the lease expires.
4. Flush the reports: what is left of the drain timeout, and at least
   :data:`FLUSH_GRACE` seconds, so results of steps that did finish are recorded.
5. Stop the heartbeat and the reporter. The caller then closes the channel.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from durable_worker.heartbeat import Heartbeat
from durable_worker.poller import Poller
from durable_worker.reporter import Reporter
from durable_worker.runner import Runner

__all__ = ["FLUSH_GRACE", "drain", "install_signal_handlers"]

log = logging.getLogger(__name__)

FLUSH_GRACE = 1.0
"""Seconds reports of finished steps get to be sent even when the drain timeout is spent."""


async def _wait(awaitable: Awaitable[object], seconds: float, forced: asyncio.Event) -> bool:
    """Await ``awaitable`` for up to ``seconds`` or until ``forced``; True if it finished."""
    work = asyncio.ensure_future(awaitable)
    force = asyncio.ensure_future(forced.wait())
    try:
        await asyncio.wait(
            {work, force}, timeout=max(seconds, 0), return_when=asyncio.FIRST_COMPLETED
        )
        return work.done()
    finally:
        for future in (work, force):
            future.cancel()
        await asyncio.gather(work, force, return_exceptions=True)


async def drain(
    *,
    poller: Poller,
    runner: Runner,
    reporter: Reporter,
    heartbeat: Heartbeat,
    drain_timeout: float,
    forced: asyncio.Event,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Drain the worker's parts in order; returns how many tasks were given back unrun.

    Args:
        poller: Stopped first.
        runner: Waited for, then its remaining tasks are abandoned.
        reporter: Releases the abandoned tasks' leases and flushes every report.
        heartbeat: Keeps leases alive until the reports are flushed, then stops.
        drain_timeout: Seconds to wait for running steps and their reports.
        forced: When set, stop waiting for running steps.
        clock: Monotonic seconds (injectable for tests).
    """
    reporter.stop_taking_tasks()  # no next tasks with the reports from now on
    await poller.stop()
    deadline = clock() + drain_timeout
    if not await _wait(runner.wait_idle(), deadline - clock(), forced):
        log.warning("drain: steps still running after %gs; giving them back", drain_timeout)
    leases = runner.leases()
    runner.abandon(lease.task_id for lease in leases)
    reporter.release(leases)
    flush_budget = max(deadline - clock(), FLUSH_GRACE)
    if not await _wait(reporter.flush(), flush_budget, asyncio.Event()):
        log.warning("drain: %d report(s) not acknowledged in time", reporter.pending)
    await heartbeat.stop()
    await reporter.stop()
    return len(leases)


def install_signal_handlers(on_signal: Callable[[], None]) -> Callable[[], None]:
    """Call ``on_signal`` on SIGTERM and SIGINT in the running loop; returns an undo.

    Where the loop cannot handle signals (Windows), nothing is installed.
    """
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on POSIX
            continue
        installed.append(sig)

    def undo() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return undo
