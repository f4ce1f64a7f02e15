"""Versioned schema migrations, applied under an advisory lock.

Migrations are ``store/migrations/NNNN_name.sql``, applied in order, each in its own
transaction, with ``search_path`` set to the instance's schema. Two orchestrators that
start together serialise on the lock, so each migration runs once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from durable_server.store.queries import QUERIES

__all__ = ["Migration", "available_migrations", "migrate"]

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, in order."""
    found = []
    folder = resources.files("durable_server.store") / "migrations"
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Bring ``schema`` up to date; returns the versions applied now."""
    applied_now: list[int] = []
    await conn.execute(QUERIES["schema_lock"], schema)
    try:
        # DDL takes no parameters: the schema name is quoted as an identifier instead.
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(f"SET search_path TO {quote_ident(schema)}")
        await conn.execute(QUERIES["schema_migrations_create"])
        done = {r["version"] for r in await conn.fetch(QUERIES["schema_migration_list"])}
        for migration in available_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    QUERIES["schema_migration_insert"], migration.version, migration.name
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied_now.append(migration.version)
    finally:
        await conn.execute(QUERIES["schema_unlock"], schema)
    return applied_now
