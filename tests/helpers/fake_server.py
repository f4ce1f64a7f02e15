"""Fake gRPC services on a real loopback server, for SDK and worker unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any]
"""A generated ``add_...Servicer_to_server`` function and the servicer to add with it."""


@contextlib.asynccontextmanager
async def fake_server(*services: Registration) -> AsyncIterator[str]:
    """Serve ``services`` on 127.0.0.1:<port chosen by the OS>; yields the address."""
    server = grpc.aio.server()
    for add, servicer in services:
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
