"""The local PostgreSQL cluster behind ``DURABLE_TEST_PG``, for tests that restart or stop it.

The cluster is the one serving ``DURABLE_TEST_PG`` (found with ``pg_lsclusters`` by port),
or ``DURABLE_TEST_PG_CLUSTER`` (``VERSION/NAME``). It is driven with Debian's
``pg_ctlcluster`` (postgresql-common).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from urllib.parse import urlparse

import pytest

from tests.helpers.db import BASE_URL
from tests.helpers.wait import wait_until

__all__ = ["READY_TIMEOUT", "Cluster", "accepting"]

READY_TIMEOUT = 60.0


def _cluster(port: int) -> tuple[str, str]:
    """(version, name) of the local cluster to restart."""
    explicit = os.environ.get("DURABLE_TEST_PG_CLUSTER", "")
    if explicit:
        version, _, name = explicit.partition("/")
        return version, name
    listed = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
    ).stdout
    for line in listed.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    pytest.fail(
        f"no local PostgreSQL cluster listens on port {port} (DURABLE_TEST_PG={BASE_URL}), "
        f"so the test cannot restart it; clusters:\n{listed}\nSet DURABLE_TEST_PG_CLUSTER="
        "VERSION/NAME, or DURABLE_TEST_SKIP_PG_RESTART=1 to skip this test"
    )


async def accepting(host: str, port: int) -> bool:
    """Whether PostgreSQL at ``host:port`` accepts connections (pg_isready)."""
    proc = await asyncio.create_subprocess_exec(
        "pg_isready", "-q", "-h", host, "-p", str(port), stdout=subprocess.DEVNULL
    )
    return await proc.wait() == 0


class Cluster:
    """The PostgreSQL cluster behind ``DURABLE_TEST_PG``."""

    def __init__(self) -> None:
        url = urlparse(BASE_URL)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 5432
        self.version, self.name = _cluster(self.port)

    async def _ctl(self, *action: str) -> float:
        """Run ``pg_ctlcluster VERSION NAME ACTION``; returns how long it took, in seconds."""
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            *action[1:],
            self.version,
            self.name,
            action[0],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        assert proc.returncode == 0, f"pg_ctlcluster {action[0]} failed: {out.decode()}"
        return time.monotonic() - started

    async def restart(self) -> float:
        """Restart it (fast mode); returns how long the command took, in seconds."""
        return await self._ctl("restart", "--mode", "fast")

    async def stop(self) -> float:
        """Stop it (fast mode: every session is cut); returns how long that took."""
        return await self._ctl("stop", "--mode", "fast")

    async def start(self) -> float:
        """Start it (if it is not running); returns how long that took."""
        if await accepting(self.host, self.port):
            return 0.0
        return await self._ctl("start")

    async def wait_ready(self) -> None:
        """Wait until it accepts connections (pg_isready)."""

        async def ready() -> bool:
            return await accepting(self.host, self.port)

        await wait_until(ready, timeout=READY_TIMEOUT, interval=0.1)
