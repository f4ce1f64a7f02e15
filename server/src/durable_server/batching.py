"""Group commit: concurrent calls that arrive while one is being written share the next write.

When the orchestrator is idle a call is written at once, alone; under load, calls pile up
while a write is in flight and the next write carries them all, so one statement and one
commit serve many RPCs. Nothing waits on a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

In = TypeVar("In")
Out = TypeVar("Out")

Flush = Callable[[list[In]], Awaitable[Sequence[Out | BaseException]]]


class Batcher(Generic[In, Out]):
    """Coalesces concurrent :meth:`submit` calls into calls of ``flush``.

    Args:
        flush: Writes a batch; returns one result, or the exception to raise, per item,
            in order. An exception it raises fails every item of the batch.
        max_batch: Items per flush, at most.
        concurrency: Flushes in flight at the same time, at most.
    """

    def __init__(self, flush: Flush[In, Out], *, max_batch: int = 500, concurrency: int = 1):
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._flushing = 0

    async def submit(self, item: In) -> Out:
        """Write ``item`` with whatever else is waiting; its result or exception."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flushing < self._concurrency:
            self._flushing += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._write(batch)
        finally:
            self._flushing -= 1

    async def _write(self, batch: list[tuple[In, asyncio.Future[Out]]]) -> None:
        try:
            results = await self._flush([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            results = [exc] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
