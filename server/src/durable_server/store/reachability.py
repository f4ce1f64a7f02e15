"""Whether this orchestrator can reach its database: the one place that says so in the log.

Every contact with PostgreSQL reports here: the pool's statements (``Database``), the
LISTEN connection (``dispatcher.Listener``) and, through the pool, the loops, the health
check and the API. The first contact that fails for an expected reason (connection
refused or reset, an administrator's shutdown, "cannot connect now") logs one warning;
the first that succeeds afterwards logs one more, with how long the database was out of
reach. Everything else about an outage logs at DEBUG, without a traceback.

``outages`` counts the outages seen so far: the lease loop compares it with the count it
last made up for, and before reclaiming anything gives every lease a full length again
(see ``Engine.reclaim_expired``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["Reachability", "describe"]

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """A one-line account of why a contact failed (driver text, no traceback)."""
    cause = exc.__cause__ or exc
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__


class Reachability:
    """The database's reachability as this process sees it.

    Args:
        on_lost: Called once when an outage begins (the pool forgets its connections,
            which are dead or about to be).
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        on_lost: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_lost = on_lost
        self._clock = clock
        self._down_since: float | None = None
        self._up_since = float("-inf")
        self.outages = 0

    @property
    def reachable(self) -> bool:
        """False from a failed contact until the next one that succeeds."""
        return self._down_since is None

    def now(self) -> float:
        """The time to pass as ``started`` to :meth:`failed` and :meth:`reached`."""
        return self._clock()

    def failed(self, exc: BaseException, started: float | None = None) -> None:
        """A contact begun at ``started`` (see :meth:`now`) failed: the database is out of reach.

        One begun before the database was last reached again tells nothing new (it was
        cut by the outage that ended) and is ignored.
        """
        if started is not None and started < self._up_since:
            log.debug("a contact begun before the outage ended failed: %s", describe(exc))
            return
        if self._down_since is not None:
            log.debug("the database is still out of reach: %s", describe(exc))
            return
        self._down_since = self._clock()
        self.outages += 1
        log.warning("database unreachable (%s); retrying until it answers", describe(exc))
        self._on_lost()

    def reached(self, started: float | None = None) -> None:
        """A contact begun at ``started`` (see :meth:`now`) succeeded.

        One begun before the outage did (a statement that got its answer just before the
        database went) says nothing about the database now, and is ignored.
        """
        if self._down_since is None or (started is not None and started < self._down_since):
            return
        now = self._clock()
        took, self._down_since, self._up_since = now - self._down_since, None, now
        log.warning("database reachable again after %.1f s", took)
