"""Database errors at the store boundary: the client gets our words, never PostgreSQL's.

Payloads are checked at the edge, so these are the last guard: whatever slips past it must
still answer a status that names no table, column, value or DETAIL line."""

from __future__ import annotations

import asyncpg
import pytest

from durable_server.errors import InvalidArgumentError
from durable_server.store.db import translate_errors

DATABASE_WORDS = ("DETAIL", "jsonb", "invalid input syntax", "surrogate", "0x00", "UTF8")


@pytest.mark.parametrize(
    ("query", "value"),
    [
        ("SELECT $1::text::jsonb", '{"a": "\\ud800"}'),  # lone surrogate
        ("SELECT $1::text::jsonb", '{"a": "\\u0000"}'),  # NUL jsonb cannot hold
        ("SELECT $1::text::jsonb", '{"a": 1,'),  # not JSON
        ("SELECT $1::text", "a\x00b"),  # NUL in text
        ("SELECT $1::text::int", "12x"),
    ],
)
async def test_a_refused_value_answers_without_the_database_text(
    database_url: str, query: str, value: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(InvalidArgumentError) as info, translate_errors():
            await conn.fetchval(query, value)
    finally:
        await conn.close()
    assert isinstance(info.value.__cause__, asyncpg.PostgresError)
    message = info.value.message
    assert not [w for w in DATABASE_WORDS if w in message], message
