"""Per-test PostgreSQL databases cloned from a migrated template."""

from __future__ import annotations

import os
import uuid

import asyncpg

from durable_server.app import run_migrations

BASE_URL = os.environ.get("DURABLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
# One template per test session, so that sessions running side by side do not collide.
TEMPLATE = f"durable_tmpl_{os.getpid()}"


def url_for(database: str) -> str:
    """The URL of ``database`` on the test server."""
    return f"{BASE_URL.rstrip('/')}/{database}"


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(url_for("postgres"))


async def create_template() -> None:
    """(Re)create the migrated template database."""
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await admin.close()
    await run_migrations(url_for(TEMPLATE), "durable")


async def drop_template() -> None:
    """Drop this session's template database."""
    await drop_database(TEMPLATE)


async def create_database() -> str:
    """A fresh database cloned from the template; returns its name."""
    name = f"durable_t_{uuid.uuid4().hex[:8]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    finally:
        await admin.close()
    return name


async def drop_database(name: str) -> None:
    """Drop a test database, disconnecting its users."""
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
