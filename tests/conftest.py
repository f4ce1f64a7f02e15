"""Shared fixtures: a real PostgreSQL database per test, an in-process orchestrator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from durable_server.clock import ManualClock
from tests.helpers import db


@pytest.fixture(scope="session")
def _template() -> Iterator[None]:
    asyncio.run(db.create_template())
    yield
    asyncio.run(db.drop_template())


@pytest.fixture
async def database_url(_template: None) -> AsyncIterator[str]:
    """The URL of a fresh, migrated database, dropped after the test."""
    name = await db.create_database()
    try:
        yield db.url_for(name)
    finally:
        await db.drop_database(name)


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()
