"""The connection pool, and translation of database errors at the store boundary."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from durable_server.errors import (
    AbortedError,
    InvalidArgumentError,
    InvalidJsonError,
    UnavailableError,
)
from durable_server.store.migrate import quote_ident

__all__ = ["Conn", "Database", "translate_errors"]

Conn = Any  # asyncpg.Connection or a pool proxy of one; asyncpg ships no usable types

_UNAVAILABLE = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)


@contextlib.contextmanager
def translate_errors() -> Any:
    """Turn asyncpg errors into DurableErrors, keeping the original as ``__cause__``."""
    try:
        yield
    except asyncpg.exceptions.UntranslatableCharacterError as exc:
        raise InvalidJsonError(
            f"a JSON string holds a character that cannot be stored (such as \\u0000): {exc}"
        ) from exc
    except asyncpg.exceptions.InvalidTextRepresentationError as exc:
        raise InvalidJsonError(f"invalid JSON: {exc}") from exc
    except asyncpg.exceptions.DataError as exc:
        raise InvalidArgumentError(f"the database rejected a value: {exc}") from exc
    except (
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.DeadlockDetectedError,
    ) as exc:
        raise AbortedError("the change conflicted with a concurrent one; try again") from exc
    except _UNAVAILABLE as exc:
        raise UnavailableError(f"the database is unavailable: {exc}") from exc


class Database:
    """An asyncpg pool whose connections use the instance's schema."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, dsn: str, schema: str, *, min_size: int, max_size: int) -> Database:
        """Open a pool; every connection's search_path is ``schema``."""
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            server_settings={"search_path": quote_ident(schema), "application_name": "durable"},
        )
        return cls(pool)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection, with errors translated."""
        with translate_errors():
            async with self.pool.acquire() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A pooled connection inside a transaction, with errors translated."""
        with translate_errors():
            async with self.pool.acquire() as conn, conn.transaction():
                yield conn

    async def close(self) -> None:
        """Close the pool."""
        await self.pool.close()
