"""A client that goes away (a cancelled stream, a closed connection) is not an error in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.reflection import aio

from durable_server.api.disconnects import GRPC_SERVER_LOGGER
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.wait import wait_until

ReflectionServicer = aio.ReflectionServicer
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
STREAMS = 20


@pytest.fixture
async def orch(database_url: str, manual_clock: ManualClock) -> AsyncIterator[Orchestrator]:
    async with running_orchestrator(database_url, clock=manual_clock, auth=True) as o:
        yield o


@pytest.fixture
def reflection_ended(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the reflection streams the server has finished with (patched before it starts)."""
    ended: list[str] = []
    serve = ReflectionServicer.ServerReflectionInfo

    async def counted(self: ReflectionServicer, requests: Any, context: Any) -> AsyncIterator[Any]:
        try:
            async for reply in serve(self, requests, context):
                yield reply
        finally:
            ended.append("ended")

    monkeypatch.setattr(ReflectionServicer, "ServerReflectionInfo", counted)
    return ended


def _loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records at WARNING or above, or with a traceback."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_cancelled_reflection_streams_log_no_error_and_no_traceback(
    reflection_ended: list[str], orch: Orchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=GRPC_SERVER_LOGGER)
    for n in range(STREAMS):
        channel = grpc.aio.insecure_channel(orch.address)
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        await call.read()  # the server is now waiting for the stream's next request
        if n % 2:
            call.cancel()  # half of them cancel the stream, half close the connection
        await channel.close()

    async def each_one_ended() -> bool:  # on the server's side
        return len(reflection_ended) == STREAMS

    await wait_until(each_one_ended, timeout=10)
    assert _loud(caplog) == []


async def test_a_batch_that_fails_because_the_client_went_away_is_not_an_error(
    orch: Orchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    """What gRPC's server logs when it notices a failed batch before the cancellation."""
    grpc_log = logging.getLogger(GRPC_SERVER_LOGGER)
    caplog.set_level(logging.INFO)

    def batch_failed() -> None:
        try:
            raise RuntimeError('Failed "execute_batch"')
        except RuntimeError:
            grpc_log.exception(
                f"ExecuteBatchError raised in core by servicer method [{REFLECTION}]"
            )

    batch_failed()
    assert _loud(caplog) == []
    caplog.set_level(logging.DEBUG, logger=GRPC_SERVER_LOGGER)
    batch_failed()
    [record] = [r for r in caplog.records if REFLECTION in r.getMessage()]
    assert (record.levelname, record.exc_info) == ("DEBUG", None)
    grpc_log.error("anything else gRPC reports as an error stays one")
    assert [r.levelname for r in _loud(caplog)] == ["ERROR"]
