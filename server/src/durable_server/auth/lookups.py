"""Token lookups in batches: one query at a time, however many calls are waiting.

Every token id a call presents that is not cached needs the database. Asked one id per
query, a flood of made-up ids would hold every pooled connection and starve real callers;
here the ids waiting are gathered and fetched ``BATCH`` at a time by one query, with one
lookup in flight, so a flood costs one connection and a few queries. Calls presenting the
same id share one lookup. Ids already known to exist (a cached token being refreshed) go
to the front of the line.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from durable_server.errors import UnavailableError

__all__ = ["BATCH", "MAX_WAITING", "BatchedLookups"]

BATCH = 500  # ids fetched by one query
MAX_WAITING = 10_000  # ids waiting for a lookup before more are refused (UNAVAILABLE)

R = TypeVar("R")


class BatchedLookups(Generic[R]):
    """Fetches records by id through ``load``, batched and one batch at a time.

    Args:
        load: Fetches the records of some ids; an id without a record is left out.
        batch: The most ids one ``load`` is given.
        max_waiting: The most ids waiting at once; a new id beyond it is refused with
            UnavailableError (memory stays bounded whatever arrives).
    """

    def __init__(
        self,
        load: Callable[[Sequence[str]], Awaitable[Mapping[str, R]]],
        *,
        batch: int = BATCH,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self._load = load
        self._batch = batch
        self._max_waiting = max_waiting
        self._waiting: collections.OrderedDict[str, asyncio.Future[R | None]] = (
            collections.OrderedDict()
        )
        self._in_flight: dict[str, asyncio.Future[R | None]] = {}
        self._worker: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Ids waiting for a lookup, or being looked up."""
        return len(self._waiting) + len(self._in_flight)

    async def get(self, key: str, *, urgent: bool = False) -> R | None:
        """The record of ``key``, or None when there is none.

        ``urgent`` puts the id at the front of the line (a known token being refreshed).
        A caller that gives up does not cancel the lookup others share.
        """
        pending = self._in_flight.get(key) or self._waiting.get(key)
        if pending is None:
            if len(self._waiting) >= self._max_waiting:
                raise UnavailableError("too many token checks are waiting; retry shortly")
            pending = asyncio.get_running_loop().create_future()
            pending.add_done_callback(_retrieve)
            self._waiting[key] = pending
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._run(), name="token-lookups")
        if urgent and key in self._waiting:
            self._waiting.move_to_end(key, last=False)
        return await asyncio.shield(pending)

    async def _run(self) -> None:
        while self._waiting:
            take = min(self._batch, len(self._waiting))
            self._in_flight = dict(self._waiting.popitem(last=False) for _ in range(take))
            try:
                records = await self._load(list(self._in_flight))
            except asyncio.CancelledError:
                self._fail_all(UnavailableError("the orchestrator is stopping"))
                raise
            except Exception as exc:  # the database is down, say: every waiter is told
                for future in self._in_flight.values():
                    future.set_exception(exc)
            else:
                for key, future in self._in_flight.items():
                    future.set_result(records.get(key))
            finally:
                self._in_flight = {}

    def _fail_all(self, error: Exception) -> None:
        for future in (*self._in_flight.values(), *self._waiting.values()):
            if not future.done():
                future.set_exception(error)
        self._in_flight, self._waiting = {}, collections.OrderedDict()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a lookup's failure seen, so one nobody awaits any more is not reported."""
    if not future.cancelled():
        future.exception()
