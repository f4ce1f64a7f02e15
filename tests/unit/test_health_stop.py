"""The database health monitor stops when asked, whenever the request arrives."""

from __future__ import annotations

import asyncio

from durable_server.health import DatabaseHealth


class _Statuses:
    async def set(self, service: str, status: int) -> None:
        pass


async def test_a_stop_that_arrives_as_a_probe_ends_is_not_lost() -> None:
    # asyncio.wait_for (Python 3.11) swallowed a cancel arriving in the same loop turn
    # as the probe's end; the monitor then slept on and stop() waited for ever.
    monitor: DatabaseHealth

    async def probe() -> None:
        assert monitor._task is not None
        asyncio.get_running_loop().call_soon(monitor._task.cancel)  # stop()'s cancel

    monitor = DatabaseHealth(_Statuses(), [], probe, interval=5, timeout=2)
    monitor.start()
    assert monitor._task is not None
    done, _ = await asyncio.wait({monitor._task}, timeout=2)
    assert done == {monitor._task}
    assert monitor._task.cancelled()
