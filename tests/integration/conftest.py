"""Fixtures of the integration tests: an orchestrator on the manual clock, and a channel to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.orchestrator import running_orchestrator


@pytest.fixture
async def orch(database_url: str, manual_clock: ManualClock) -> AsyncIterator[Orchestrator]:
    """An orchestrator on a fresh database, whose time moves only when the test says."""
    async with running_orchestrator(database_url, clock=manual_clock) as o:
        yield o


@pytest.fixture
async def channel(orch: Orchestrator) -> AsyncIterator[grpc.aio.Channel]:
    """A gRPC channel to ``orch``."""
    async with grpc.aio.insecure_channel(orch.address) as ch:
        yield ch
