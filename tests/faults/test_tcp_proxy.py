"""The fault tests' TCP proxy forwards, stalls, resumes, drops and refuses as it says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.faults.tcp_proxy import TcpProxy

QUIET = 0.3  # how long "nothing arrives" is watched for


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with TcpProxy(f"127.0.0.1:{port}") as p:
        yield p
    server.close()
    await server.wait_closed()


async def _connect(proxy: TcpProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = proxy.address.split(":")
    return await asyncio.open_connection(host, int(port))


async def test_forwards_stalls_and_resumes(proxy: TcpProxy) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"

    proxy.stall()
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), QUIET)
    proxy.resume()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"held"
    assert (proxy.accepted, proxy.open_connections) == (1, 1)
    writer.close()


async def test_drop_resets_open_connections_and_refuse_resets_new_ones(proxy: TcpProxy) -> None:
    reader, writer = await _connect(proxy)
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
    assert proxy.drop() == 1
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    writer.close()

    proxy.refuse()
    reader, writer = await _connect(proxy)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await asyncio.wait_for(reader.readexactly(1), 5)
    writer.close()
    assert proxy.refused == 1

    proxy.accept()
    reader, writer = await _connect(proxy)
    writer.write(b"back")
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"back"
    writer.close()
    assert (proxy.accepted, proxy.dropped) == (2, 1)
