"""A TCP proxy on loopback that the fault tests use to cut, stall and restore a network path.

It runs in the test's event loop. Every accepted connection is paired with a connection
to the upstream and bytes are pumped both ways, until the test says otherwise:

- :meth:`TcpProxy.stall` stops forwarding in both directions and keeps the connections
  open: bytes wait (in the proxy or in the kernel's buffers, whose filling stops the
  sender), as on a path that silently drops packets. :meth:`TcpProxy.resume` lets them go.
  Connections accepted while stalled stall too.
- :meth:`TcpProxy.drop` cuts every open connection at once with a reset (``SO_LINGER``
  0), as when a middlebox or a peer's host dies: both ends see the connection fail.
- :meth:`TcpProxy.refuse` resets new connections as soon as they are accepted (a path
  that is down), until :meth:`TcpProxy.accept` is called.

The counters (``accepted``, ``dropped``, ``refused``) let a test assert that a fault hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from types import TracebackType

__all__ = ["TcpProxy"]

_CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with a RST instead of a FIN, discarding unsent bytes."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Link:
    """One proxied connection: the client's side and the upstream's."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.pumps: list[asyncio.Task[None]] = []

    def reset(self) -> None:
        for task in self.pumps:
            task.cancel()
        _reset(self.client[1])
        _reset(self.upstream[1])


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``upstream`` (``host:port``); see the module doc."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1") -> None:
        up_host, _, up_port = upstream.rpartition(":")
        self.upstream = (up_host, int(up_port))
        self.host = host
        self.port = 0
        self.accepted = 0
        self.dropped = 0
        self.refused = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """``host:port`` to connect to instead of the upstream."""
        return f"{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Connections being proxied now."""
        return len(self._links)

    @property
    def stalled(self) -> bool:
        """Whether forwarding is stopped."""
        return not self._flowing.is_set()

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and reset every connection."""
        if self._server is not None:
            self._server.close()
        self.drop()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- faults ------------------------------------------------------------------------

    def stall(self) -> None:
        """Stop forwarding (both ways, every connection, new ones too); keep them open."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, starting with the bytes held back."""
        self._flowing.set()

    def drop(self) -> int:
        """Reset every open connection; returns how many."""
        links = list(self._links)
        self._links.clear()
        for link in links:
            link.reset()
        self.dropped += len(links)
        return len(links)

    def refuse(self) -> None:
        """Reset new connections as soon as they are accepted."""
        self._refusing = True

    def accept(self) -> None:
        """Proxy new connections again."""
        self._refusing = False

    # -- forwarding --------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            self.refused += 1
            _reset(writer)
            return
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)  # the upstream is down: so is the path
            return
        self.accepted += 1
        link = _Link((reader, writer), upstream)
        self._links.add(link)
        link.pumps = [
            asyncio.create_task(self._pump(link, reader, upstream[1])),
            asyncio.create_task(self._pump(link, upstream[0], writer)),
        ]

    async def _pump(
        self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await source.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # a stall holds what was read already
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            return
        # One side closed or failed: close the whole connection, as a cut would.
        if link in self._links:
            self._links.discard(link)
            for task in link.pumps:
                if task is not asyncio.current_task():
                    task.cancel()
            for _, w in (link.client, link.upstream):
                w.close()
