"""The token verifier on its own: parsing, hashing, caching, expiry (no database)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from durable_server.auth.tokens import Role, hash_secret, parse_token
from durable_server.auth.verifier import Principal, TokenRecord, TokenVerifier, bearer_token
from durable_server.clock import ManualClock
from durable_server.config import Settings, is_loopback, parse_bool
from durable_server.errors import UnauthenticatedError
from tests.helpers.aio import yield_to_loop

TOKEN_ID = "0123456789abcdef"
SECRET = "s" * 43
TOKEN = f"dur_{TOKEN_ID}_{SECRET}"


def _verifier(clock: ManualClock, record: TokenRecord | None) -> tuple[TokenVerifier, list[str]]:
    loads: list[str] = []

    async def load(token_id: str) -> TokenRecord | None:
        loads.append(token_id)
        await yield_to_loop()  # let the other callers pile up behind this one
        return record

    return TokenVerifier(load, clock, cache_secs=5), loads


def _record(**changes: object) -> TokenRecord:
    principal = Principal(TOKEN_ID, "ci", Role.CLIENT, frozenset())
    values: dict[str, object] = {
        "principal": principal,
        "secret_hash": hash_secret(SECRET),
        "expires_at": None,
        "revoked_at": None,
    }
    values.update(changes)
    return TokenRecord(**values)  # type: ignore[arg-type]


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def test_tokens_parse_by_their_fixed_shape() -> None:
    assert parse_token(TOKEN) == (TOKEN_ID, SECRET)
    assert parse_token(f"dur_{TOKEN_ID}_a_b-c{'d' * 20}") == (TOKEN_ID, f"a_b-c{'d' * 20}")
    for bad in ("", "dur_", TOKEN_ID, f"xyz_{TOKEN_ID}_{SECRET}", f"dur_{TOKEN_ID}_short"):
        assert parse_token(bad) is None
    assert bearer_token([("authorization", "Bearer  abc ")]) == "abc"
    assert bearer_token([("authorization", "Basic abc")]) == ""
    assert bearer_token([("x-other", "1")]) is None


async def test_concurrent_calls_share_one_lookup_and_reuse_it_for_the_cache_time() -> None:
    clock = ManualClock()
    verifier, loads = _verifier(clock, _record())
    principals = await asyncio.gather(*(verifier.verify(bearer(TOKEN)) for _ in range(50)))
    assert {p.token_id for p in principals} == {TOKEN_ID}
    assert loads == [TOKEN_ID]
    clock.advance(timedelta(seconds=4.9))
    await verifier.verify(bearer(TOKEN))
    assert len(loads) == 1
    clock.advance(timedelta(seconds=0.1))
    await verifier.verify(bearer(TOKEN))
    assert len(loads) == 2


async def test_unknown_ids_are_cached_too_so_garbage_costs_one_query() -> None:
    clock = ManualClock()
    verifier, loads = _verifier(clock, None)
    for _ in range(3):
        with pytest.raises(UnauthenticatedError, match="not valid"):
            await verifier.verify(bearer(TOKEN))
    assert loads == [TOKEN_ID]


async def test_a_wrong_secret_an_expiry_and_a_revocation_are_refused() -> None:
    clock = ManualClock()
    verifier, _ = _verifier(clock, _record(expires_at=ManualClock().now() + timedelta(hours=1)))
    with pytest.raises(UnauthenticatedError, match="not valid"):
        await verifier.verify(bearer(f"dur_{TOKEN_ID}_{'t' * 43}"))
    await verifier.verify(bearer(TOKEN))
    clock.advance(timedelta(hours=1))
    with pytest.raises(UnauthenticatedError, match="expired"):
        await verifier.verify(bearer(TOKEN))
    revoked, _ = _verifier(clock, _record(revoked_at=clock.now()))
    with pytest.raises(UnauthenticatedError, match="revoked"):
        await revoked.verify(bearer(TOKEN))
    with pytest.raises(UnauthenticatedError, match="requires a token"):
        await revoked.verify([])


def test_plain_text_beyond_loopback_is_refused_unless_allowed() -> None:
    assert is_loopback("127.0.0.1:7411")
    assert is_loopback("localhost:1")
    assert is_loopback("[::1]:1")
    assert not is_loopback("0.0.0.0:7411")
    assert not is_loopback("[::]:1")
    assert not is_loopback(":7411")
    assert not is_loopback("orchestrator.internal:7411")
    with pytest.raises(ValueError, match=r"refusing plain text on 0\.0\.0\.0:7411"):
        Settings(listen="0.0.0.0:7411")
    allowed = Settings(listen="0.0.0.0:7411", allow_insecure=True)
    assert allowed.auth_required  # beyond loopback, tokens are required by default
    assert not Settings().auth_required  # on loopback they are not
    assert Settings(auth=True).auth_required
    assert not Settings(listen="0.0.0.0:7411", allow_insecure=True, auth=False).auth_required
    assert Settings(listen="0.0.0.0:7411", tls_cert="c.pem", tls_key="k.pem").tls
    with pytest.raises(ValueError, match="both DURABLE_TLS_CERT and DURABLE_TLS_KEY"):
        Settings(tls_cert="c.pem")
    with pytest.raises(ValueError, match="mTLS"):
        Settings(tls_client_ca="ca.pem")


def test_security_settings_come_from_the_environment() -> None:
    env = {
        "DURABLE_LISTEN": "0.0.0.0:7411",
        "DURABLE_TLS_CERT": "/etc/durable/cert.pem",
        "DURABLE_TLS_KEY": "/etc/durable/key.pem",
        "DURABLE_TLS_CLIENT_CA": "/etc/durable/ca.pem",
        "DURABLE_AUTH": "off",
        "DURABLE_AUTH_CACHE_SECONDS": "2",
    }
    s = Settings.from_env(env)
    assert (s.tls_cert, s.tls_key, s.tls_client_ca) == (
        "/etc/durable/cert.pem",
        "/etc/durable/key.pem",
        "/etc/durable/ca.pem",
    )
    assert (s.auth, s.auth_required, s.auth_cache_secs) == (False, False, 2.0)
    insecure = Settings.from_env({"DURABLE_LISTEN": "0.0.0.0:1", "DURABLE_ALLOW_INSECURE": "yes"})
    assert insecure.allow_insecure
    assert insecure.auth is None
    assert insecure.auth_required
    assert Settings.from_env({"DURABLE_AUTH": "auto"}).auth is None
    with pytest.raises(ValueError, match="not a yes/no value"):
        parse_bool("DURABLE_ALLOW_INSECURE", "maybe")
