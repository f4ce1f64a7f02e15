"""TLS and mTLS on the gRPC port, and plain text only where it is safe or allowed."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from durable import Client, SyncClient, TLSConfig, Workflow
from durable.errors import DeadlineExceededError, UnauthenticatedError, UnavailableError
from durable_server.__main__ import main as server_main
from durable_server.auth.tokens import Role
from durable_server.clock import ManualClock
from durable_server.tls import TLSConfigError
from durable_worker import Worker
from tests.helpers import tokens
from tests.helpers.certs import Certs, make_certs
from tests.helpers.orchestrator import running_orchestrator

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

CONNECT_FAILED = (UnavailableError, DeadlineExceededError)

echo = Workflow("echo")


@echo.step
def repeat(data: object) -> object:
    return data


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def _reachable(address: str, **connection: object) -> None:
    """List executions; raises the SDK's error when the call fails."""
    async with Client(address, timeout=3, **connection) as client:  # type: ignore[arg-type]
        await client.list_executions()


async def test_tls_serves_clients_that_trust_its_ca_and_no_plain_text(
    database_url: str, manual_clock: ManualClock, certs: Certs
) -> None:
    async with running_orchestrator(
        database_url, clock=manual_clock, tls_cert=certs.server_cert, tls_key=certs.server_key
    ) as orch:
        await _reachable(orch.address, tls=TLSConfig(ca_file=certs.ca))

        def blocking() -> tuple[object, ...]:
            with SyncClient(orch.address, timeout=3, tls=TLSConfig(ca_file=certs.ca)) as sync:
                return sync.list_executions().executions

        assert await asyncio.to_thread(blocking) == ()  # the orchestrator runs on this loop

        with pytest.raises(CONNECT_FAILED):
            await _reachable(orch.address)  # plain text to the TLS port
        with pytest.raises(CONNECT_FAILED):
            await _reachable(orch.address, tls=TLSConfig(ca_file=certs.rogue_ca))
        async with grpc.aio.insecure_channel(orch.address) as ch:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await ch.unary_unary("/durable.v1.WorkflowService/ListExecutions")(b"", timeout=3)
            assert info.value.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )


async def test_mtls_requires_a_client_certificate_its_ca_signed(
    database_url: str, manual_clock: ManualClock, certs: Certs
) -> None:
    async with running_orchestrator(
        database_url,
        clock=manual_clock,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_client_ca=certs.ca,
    ) as orch:
        mine = TLSConfig(ca_file=certs.ca, cert_file=certs.client_cert, key_file=certs.client_key)
        await _reachable(orch.address, tls=mine)

        with pytest.raises(CONNECT_FAILED):
            await _reachable(orch.address, tls=TLSConfig(ca_file=certs.ca))  # no certificate
        stranger = TLSConfig(ca_file=certs.ca, cert_file=certs.rogue_cert, key_file=certs.rogue_key)
        with pytest.raises(CONNECT_FAILED):
            await _reachable(orch.address, tls=stranger)


async def test_a_worker_and_a_client_run_a_workflow_over_mtls_with_tokens(
    database_url: str, manual_clock: ManualClock, certs: Certs
) -> None:
    mine = TLSConfig(ca_file=certs.ca, cert_file=certs.client_cert, key_file=certs.client_key)
    async with running_orchestrator(
        database_url,
        clock=manual_clock,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_client_ca=certs.ca,
        auth=True,
    ) as orch:
        now = manual_clock.now()
        worker_token = await tokens.issue(database_url, Role.WORKER, now=now, queues=["default"])
        client_token = await tokens.issue(database_url, Role.CLIENT, now=now)
        async with (
            Worker(
                orch.address,
                [echo],
                token=worker_token,
                tls=mine,
                poll_wait=timedelta(seconds=1),
            ),
            Client(orch.address, token=client_token, tls=mine) as client,
        ):
            execution = await client.wait(await client.start(echo, "hello"), timeout=10)
            assert execution.result == "hello"
        with pytest.raises(UnauthenticatedError):  # the certificate alone is not enough
            await _reachable(orch.address, tls=mine)


async def test_an_unreadable_tls_file_stops_the_start_with_a_clear_error(
    database_url: str, manual_clock: ManualClock, certs: Certs, tmp_path: Path
) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(TLSConfigError, match=r"cannot read the TLS certificate .*nope\.pem"):
        async with running_orchestrator(
            database_url, clock=manual_clock, tls_cert=missing, tls_key=certs.server_key
        ):
            pass


def test_the_server_command_refuses_plain_text_beyond_loopback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert server_main(["serve", "--listen", "0.0.0.0:7411"]) == 2
    err = capsys.readouterr().err
    assert "refusing plain text on 0.0.0.0:7411" in err
    assert "DURABLE_TLS_CERT" in err
    assert "DURABLE_ALLOW_INSECURE" in err


async def test_plain_text_beyond_loopback_when_allowed_still_requires_tokens(
    database_url: str, manual_clock: ManualClock
) -> None:
    async with running_orchestrator(
        database_url, clock=manual_clock, listen="0.0.0.0:0", allow_insecure=True
    ) as orch:
        with pytest.raises(UnauthenticatedError):
            await _reachable(f"127.0.0.1:{orch.port}")
