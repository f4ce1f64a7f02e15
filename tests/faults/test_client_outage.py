"""Clients called while the orchestrator's database is unreachable get their answer after it.

The orchestrator reaches PostgreSQL through a TCP proxy (:mod:`tests.faults.tcp_proxy`);
the test cuts that path (every connection reset, new ones too) and, during the outage,
calls ``client.wait``, ``client.get_execution`` and ``client.list_executions``. The
orchestrator answers each attempt UNAVAILABLE; the clients' retry policy sends them again
with backoff. Once the orchestrator has answered several attempts of each call, the
path comes back: every call returns its answer, none raises UnavailableError. Then a
worker runs the execution, and the wait that began in the outage returns it completed.

The shared PostgreSQL server is never stopped: only this orchestrator's path to it is cut.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest

from durable import Client, ExecutionStatus
from durable_server.engine.reads import Reads
from durable_server.errors import UnavailableError
from durable_worker import Worker
from examples.order import process_order
from tests.faults.tcp_proxy import TcpProxy
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until

ORDER = {"id": 7, "items": ["pen"]}
# Attempts the orchestrator must refuse before the path comes back: with the retry
# policy's pauses (about 0.25, 0.75, 2.25 s) four attempts of a call span about 3 s.
REFUSED_READS = 8  # Reads.get_execution: four attempts each of the wait and of the get
REFUSED_LISTS = 4


def _count_unavailable(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the reads the orchestrator answers UNAVAILABLE (it still runs them all)."""
    refused: Counter[str] = Counter()
    for name in ("get_execution", "list_executions"):
        original = getattr(Reads, name)

        async def counted(
            self: Reads, *args: Any, _run: Any = original, _name: str = name, **kwargs: Any
        ) -> Any:
            try:
                return await _run(self, *args, **kwargs)
            except UnavailableError:
                refused[_name] += 1
                raise

        monkeypatch.setattr(Reads, name, counted)
    return refused


def _through(proxy: TcpProxy, database_url: str) -> str:
    """``database_url`` with the proxy's address in place of the server's."""
    parts = urlsplit(database_url)
    user = f"{parts.username}@" if parts.username else ""
    return parts._replace(netloc=f"{user}{proxy.address}").geturl()


async def test_reads_and_waits_called_during_a_database_outage_succeed_after_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = _count_unavailable(monkeypatch)
    server = urlsplit(database_url)
    async with TcpProxy(f"{server.hostname}:{server.port}") as proxy:
        async with (
            running_orchestrator(_through(proxy, database_url)) as orch,
            Client(orch.address) as client,
        ):
            async with Worker(orch.address, [process_order], drain_timeout=5.0):
                pass  # registers the workflow; its executions wait for the next worker
            execution_id = await client.start(process_order, ORDER)

            proxy.refuse()
            proxy.drop()
            calls: dict[str, asyncio.Task[Any]] = {
                "wait": asyncio.create_task(client.wait(execution_id, timeout=120)),
                "get": asyncio.create_task(client.get_execution(execution_id)),
                "list": asyncio.create_task(client.list_executions()),
            }

            async def refused_enough() -> bool:
                for name, call in calls.items():
                    if call.done():  # before the fix: UnavailableError at the first answer
                        raise AssertionError(f"client.{name} returned during the outage: {call}")
                return (
                    refused["get_execution"] >= REFUSED_READS
                    and refused["list_executions"] >= REFUSED_LISTS
                )

            try:
                await wait_until(refused_enough, timeout=30)
            finally:
                proxy.accept()

            execution = await calls["get"]
            assert (execution.id, execution.status) == (execution_id, ExecutionStatus.PENDING)
            page = await calls["list"]
            assert [e.id for e in page.executions] == [execution_id]
            assert not calls["wait"].done()

            async with Worker(orch.address, [process_order], drain_timeout=5.0):
                finished = await calls["wait"]
            assert finished.status is ExecutionStatus.COMPLETED
            assert finished.result == {"order_id": 7, "items": ["pen"], "receipt": "rcpt-7"}
    assert proxy.refused > 0  # the orchestrator tried to reconnect while the path was down
