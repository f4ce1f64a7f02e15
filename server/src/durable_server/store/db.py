"""The connection pool, and translation of database errors at the store boundary.

Every use of the pool tells the pool's :class:`~durable_server.store.reachability.Reachability`
whether the database answered, so an outage is logged once when it begins and once when
it ends, whatever part of the orchestrator meets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any, Protocol

import asyncpg

from durable_server.errors import (
    AbortedError,
    InvalidArgumentError,
    InvalidJsonError,
    UnavailableError,
)
from durable_server.store.migrate import quote_ident
from durable_server.store.reachability import Reachability, describe

__all__ = [
    "Conn",
    "Database",
    "Record",
    "after_commit",
    "is_unreachable",
    "translate_errors",
]

log = logging.getLogger(__name__)


class Record(Protocol):
    """A row as asyncpg returns it: its columns by name (or position)."""

    def __getitem__(self, key: str | int, /) -> Any:
        """The value of a column."""
        ...

    def get(self, key: str, default: Any = None, /) -> Any:
        """The value of a column, or ``default`` when the row has no such column."""
        ...


class Conn(Protocol):
    """What the store uses of a connection: an ``asyncpg.Connection`` or a pool's proxy of one.

    asyncpg ships no type information; this names the part of its API the store calls,
    with what each returns, so that every store function is checked against it.
    """

    async def execute(self, query: str, *args: object) -> str:
        """Run a statement; its status tag (such as ``DELETE 3``)."""
        ...

    async def fetch(self, query: str, *args: object) -> list[Record]:
        """Run a query; every row."""
        ...

    async def fetchrow(self, query: str, *args: object) -> Record | None:
        """Run a query; its first row, or None."""
        ...

    async def fetchval(self, query: str, *args: object) -> Any:
        """Run a query; its first row's first column, or None."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[object]:
        """A transaction (a savepoint inside one) for ``async with``."""
        ...


# The callbacks to run when the current Database.transaction() commits (None: none open).
_AFTER_COMMIT: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "durable_after_commit", default=None
)


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once the current ``Database.transaction()`` commits.

    It never runs when the transaction rolls back; outside a transaction it runs at once.
    Metrics use it to count only what was committed.
    """
    pending = _AFTER_COMMIT.get()
    if pending is None:
        callback()
    else:
        pending.append(callback)


_UNAVAILABLE = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    # "cannot switch to state N; another operation (2) is in progress": a pooled connection
    # the server terminated while it was idle (a restart); the next one is fresh.
    asyncpg.exceptions.InternalClientError,
)


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or its cause) says the database could not be reached: an outage."""
    return isinstance(exc, _UNAVAILABLE) or isinstance(exc.__cause__, _UNAVAILABLE)


class _QuietPoolFloor(logging.Filter):
    """Keeps asyncpg's pool from logging a traceback each time it cannot reconnect.

    While the database is down, the pool's background task that restores its minimum
    size logs a warning with a traceback at every retry; the outage itself is logged once
    by :class:`Reachability`, so these go to DEBUG without the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_unreachable(exc):
            return True
        log.debug("%s (%s)", record.getMessage(), describe(exc))
        return False


_QUIET_POOL_FLOOR = _QuietPoolFloor()


@contextlib.contextmanager
def translate_errors() -> Any:
    """Turn asyncpg errors into DurableErrors, keeping the original as ``__cause__``."""
    try:
        yield
    except asyncpg.exceptions.UntranslatableCharacterError as exc:
        log.info("the database refused a JSON value: %s", _describe(exc))
        raise InvalidJsonError(
            "a JSON string holds a character that cannot be stored (such as \\u0000)"
        ) from exc
    except asyncpg.exceptions.InvalidTextRepresentationError as exc:
        log.info("the database refused a value: %s", _describe(exc))
        raise InvalidJsonError("a value is malformed (not valid JSON, or not of its type)") from exc
    except asyncpg.exceptions.StatementTooComplexError as exc:
        # "stack depth limit exceeded": the statements are fixed, so it is a JSON value
        # nested too deeply for PostgreSQL's parser.
        raise InvalidJsonError("a JSON value is nested too deeply") from exc
    except asyncpg.exceptions.CharacterNotInRepertoireError as exc:
        log.info("the database refused a value: %s", _describe(exc))
        raise InvalidArgumentError(
            "a text value holds a character that cannot be stored (such as NUL)"
        ) from exc
    except asyncpg.exceptions.DataError as exc:
        # The database's message may quote values and name columns: the client gets neither.
        log.info("the database rejected a value: %s", _describe(exc))
        raise InvalidArgumentError("a value is out of range or malformed") from exc
    except (
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.DeadlockDetectedError,
    ) as exc:
        raise AbortedError("the change conflicted with a concurrent one; try again") from exc
    except _UNAVAILABLE as exc:
        # Hosts, ports and driver messages stay in the orchestrator's log (once per
        # outage: see Reachability).
        raise UnavailableError("the database is unavailable; try again later") from exc


def _describe(exc: asyncpg.PostgresError) -> str:
    """The database's refusal for the orchestrator's log, never for a client.

    Its message and DETAIL may quote the value (user data), which the log holds only at
    debug level.
    """
    detail = getattr(exc, "detail", None)
    log.debug("the database's words: %s%s", exc, f" ({detail})" if detail else "")
    return f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})"


async def _keep_session(_conn: Conn) -> None:
    """Return a connection to the pool as it is: one round trip less per use.

    asyncpg rolls back a transaction left open before calling this. The orchestrator
    changes no session state on pooled connections (no SET, LISTEN or session-level
    advisory lock; the search path is a startup setting), so the default reset query
    would only cost a round trip on every release.
    """


class Database:
    """An asyncpg pool whose connections use the instance's schema."""

    def __init__(self, pool: asyncpg.Pool, reachability: Reachability | None = None) -> None:
        self.pool = pool
        self.reachability = reachability or Reachability()

    @classmethod
    async def connect(cls, dsn: str, schema: str, *, min_size: int, max_size: int) -> Database:
        """Open a pool; every connection's search_path is ``schema``."""
        logging.getLogger("asyncpg.pool").addFilter(_QUIET_POOL_FLOOR)  # once: same object
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            reset=_keep_session,
            server_settings={
                "search_path": quote_ident(schema),
                "application_name": "durable",
                # Plan each statement for the tables as they are now. A plan cached while
                # a table was nearly empty (just after start) scans the whole table once
                # it holds thousands of rows, until statistics happen to be refreshed.
                "plan_cache_mode": "force_custom_plan",
            },
        )
        return cls(pool)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection, with errors translated."""
        started = self.reachability.now()
        try:
            with translate_errors():
                async with self.pool.acquire() as conn:
                    yield conn
        except UnavailableError as exc:
            await self._unreachable(exc, started)
            raise
        self.reachability.reached(started)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection inside a transaction, with errors translated."""
        pending: list[Callable[[], None]] = []
        token = _AFTER_COMMIT.set(pending)
        started = self.reachability.now()
        try:
            with translate_errors():
                async with self.pool.acquire() as conn, conn.transaction():
                    yield conn
        except UnavailableError as exc:
            await self._unreachable(exc, started)
            raise
        finally:
            _AFTER_COMMIT.reset(token)
        self.reachability.reached(started)
        for callback in pending:  # committed
            try:
                callback()
            except Exception:
                log.exception("an after-commit callback failed")

    async def _unreachable(self, exc: UnavailableError, started: float) -> None:
        """Note the outage; the pooled connections are replaced as they are next used.

        They are dead (a restart cut them all), or about to be: without this, each would
        fail once after the database is back, and the outage would seem to begin again.
        """
        self.reachability.failed(exc, started)
        await self.pool.expire_connections()

    async def close(self, grace: float = 5.0) -> None:
        """Close the pool: wait up to ``grace`` seconds for busy connections, then cut them."""
        try:
            await asyncio.wait_for(self.pool.close(), grace)
        except TimeoutError:
            log.warning("connections still busy after %.0fs: closing them anyway", grace)
            self.pool.terminate()
