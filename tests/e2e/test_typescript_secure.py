"""The TypeScript SDK against a secured orchestrator: mutual TLS and bearer tokens.

The orchestrator requires a client certificate its CA signed and a token on every call;
this test makes the certificates and issues worker, client and admin tokens, then runs
``sdk-typescript/test/secure.test.ts`` (node's test runner) with them in the environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from durable_server.auth.tokens import Role
from tests.helpers import tokens
from tests.helpers.certs import Certs, make_certs
from tests.helpers.orchestrator import running_orchestrator

SDK_DIR = Path(__file__).resolve().parents[2] / "sdk-typescript"
NODE_TIMEOUT = 180.0
QUEUE = "secure_ts"

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
    pytest.mark.timeout(NODE_TIMEOUT + 60),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


async def _run(*command: str, env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=SDK_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), NODE_TIMEOUT)
    except TimeoutError:
        proc.kill()
        output, _ = await proc.communicate()
        pytest.fail(f"{' '.join(command)} did not finish in {NODE_TIMEOUT:g}s:\n{output.decode()}")
    text = output.decode(errors="replace")
    assert proc.returncode == 0, f"{' '.join(command)} failed (exit {proc.returncode}):\n{text}"
    return text


async def test_typescript_sdk_over_mtls_with_tokens(database_url: str, certs: Certs) -> None:
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("the TypeScript SDK tests need Node.js 20+ and npm on PATH")
    if not (SDK_DIR / "node_modules").is_dir():
        pytest.fail("sdk-typescript/node_modules is missing: run 'make install'")
    async with running_orchestrator(
        database_url,
        tls_cert=certs.server_cert,
        tls_key=certs.server_key,
        tls_client_ca=certs.ca,
        auth=True,
    ) as orch:
        now = datetime.now(UTC)
        env = {
            **os.environ,
            "DURABLE_SECURE_ADDRESS": orch.address,
            "DURABLE_SECURE_QUEUE": QUEUE,
            "DURABLE_TLS_CA": certs.ca,
            "DURABLE_TLS_CERT": certs.client_cert,
            "DURABLE_TLS_KEY": certs.client_key,
            "DURABLE_ROGUE_CERT": certs.rogue_cert,
            "DURABLE_ROGUE_KEY": certs.rogue_key,
            "DURABLE_WORKER_TOKEN": await tokens.issue(
                database_url, Role.WORKER, now=now, queues=[QUEUE]
            ),
            "DURABLE_CLIENT_TOKEN": await tokens.issue(database_url, Role.CLIENT, now=now),
            "DURABLE_ADMIN_TOKEN": await tokens.issue(database_url, Role.ADMIN, now=now),
        }
        await _run(npm, "exec", "--no", "--", "tsc", "-p", "tsconfig.test.json", env=env)
        text = await _run(
            node, "--test", "--test-reporter=tap", "build/test/secure.test.js", env=env
        )
    assert "# fail 0" in text, text
    assert "# skipped 0" in text, text
    assert "# pass 5" in text, text
