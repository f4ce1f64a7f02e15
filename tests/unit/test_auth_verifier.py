"""The token verifier on its own: parsing, hashing, caching, expiry (no database)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from datetime import timedelta

import pytest

from durable_server.auth import verifier as verifier_module
from durable_server.auth.lookups import BATCH, BatchedLookups
from durable_server.auth.tokens import Role, hash_secret, parse_token
from durable_server.auth.verifier import Principal, TokenRecord, TokenVerifier, bearer_token
from durable_server.clock import ManualClock
from durable_server.config import Settings, is_loopback, parse_bool
from durable_server.errors import UnauthenticatedError, UnavailableError
from tests.helpers.aio import yield_to_loop

TOKEN_ID = "0123456789abcdef"
SECRET = "s" * 43
TOKEN = f"dur_{TOKEN_ID}_{SECRET}"


def _verifier(clock: ManualClock, record: TokenRecord | None) -> tuple[TokenVerifier, list[str]]:
    """A verifier whose "table" holds ``record`` (if any); ``loads`` lists the ids asked for."""
    loads: list[str] = []

    async def load(token_ids: Sequence[str]) -> dict[str, TokenRecord]:
        loads.extend(token_ids)
        await yield_to_loop()  # let the other callers pile up behind this one
        return {TOKEN_ID: record} if record is not None and TOKEN_ID in token_ids else {}

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


# -- what a flood of made-up tokens costs -------------------------------------------------


class _Table:
    """A tokens "table" for the verifier: its queries are counted, and one runs at a time."""

    def __init__(self, *records: TokenRecord) -> None:
        self.records = {r.principal.token_id: r for r in records}
        self.queries: list[list[str]] = []
        self.running = 0
        self.most_running = 0

    async def load(self, token_ids: Sequence[str]) -> dict[str, TokenRecord]:
        self.queries.append(list(token_ids))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        await yield_to_loop()
        self.running -= 1
        return {i: self.records[i] for i in token_ids if i in self.records}


def _made_up() -> str:
    return f"dur_{secrets.token_hex(8)}_{SECRET}"


async def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(UnauthenticatedError) as refused:
        await verifier.verify(bearer(token))
    return refused.value.message


async def test_a_cached_token_makes_no_query_until_the_cache_time_has_passed() -> None:
    clock, table = ManualClock(), _Table(_record())
    verifier = TokenVerifier(table.load, clock, cache_secs=5)
    for _ in range(100):
        await verifier.verify(bearer(TOKEN))
    assert table.queries == [[TOKEN_ID]]
    clock.advance(timedelta(seconds=5))
    await verifier.verify(bearer(TOKEN))
    assert table.queries == [[TOKEN_ID], [TOKEN_ID]]


async def test_a_revocation_takes_effect_within_the_cache_time() -> None:
    clock, table = ManualClock(), _Table(_record())
    verifier = TokenVerifier(table.load, clock, cache_secs=5)
    await verifier.verify(bearer(TOKEN))
    table.records[TOKEN_ID] = _record(revoked_at=clock.now())
    clock.advance(timedelta(seconds=4.999))
    await verifier.verify(bearer(TOKEN))  # still cached: within the stated bound
    clock.advance(timedelta(milliseconds=1))
    assert await _refused(verifier, TOKEN) == f"token {TOKEN_ID} was revoked"


async def test_made_up_ids_are_fetched_in_a_few_batched_queries_one_at_a_time() -> None:
    clock, table = ManualClock(), _Table(_record())
    verifier = TokenVerifier(table.load, clock, cache_secs=5)
    flood = [_made_up() for _ in range(5_000)]
    refusals = await asyncio.gather(*(_refused(verifier, t) for t in flood))
    assert set(refusals) == {"the token is not valid"}
    assert sum(len(q) for q in table.queries) == 5_000  # each id asked once...
    assert len(table.queries) <= 5_000 // BATCH + 1  # ...in a handful of queries
    assert table.most_running == 1  # never more than one connection's worth
    before = len(table.queries)
    await asyncio.gather(*(_refused(verifier, t) for t in flood[:100]))
    assert len(table.queries) == before  # remembered as unknown: no query


async def test_made_up_ids_cannot_grow_the_cache_or_push_out_a_real_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verifier_module, "MAX_UNKNOWN", 100)
    clock, table = ManualClock(), _Table(_record())
    verifier = TokenVerifier(table.load, clock, cache_secs=5)
    await verifier.verify(bearer(TOKEN))
    for _ in range(5):
        await asyncio.gather(*(_refused(verifier, _made_up()) for _ in range(1_000)))
    assert verifier.cached == (1, 100)
    queries = len(table.queries)
    await verifier.verify(bearer(TOKEN))
    assert len(table.queries) == queries  # the real token is still cached


async def test_a_real_token_being_refreshed_goes_ahead_of_waiting_made_up_ids() -> None:
    clock, table = ManualClock(), _Table(_record())
    verifier = TokenVerifier(table.load, clock, cache_secs=5)
    await verifier.verify(bearer(TOKEN))
    clock.advance(timedelta(seconds=5))
    flood = [asyncio.ensure_future(_refused(verifier, _made_up())) for _ in range(3 * BATCH)]
    await yield_to_loop()  # 1,500 made-up ids are waiting (or being fetched)
    await verifier.verify(bearer(TOKEN))
    behind = next(i for i, query in enumerate(table.queries[1:]) if TOKEN_ID in query)
    assert behind <= 1  # in the next batch at the latest, not behind the waiting ids
    await asyncio.gather(*flood)


async def test_lookups_beyond_the_limit_are_refused_and_a_failure_reaches_every_waiter() -> None:
    release, fail = asyncio.Event(), [True]

    async def load(ids: Sequence[str]) -> dict[str, str]:
        await release.wait()
        if fail[0]:
            raise UnavailableError("the database is unreachable")
        return {i: i.upper() for i in ids if i != "missing"}

    lookups: BatchedLookups[str] = BatchedLookups(load, batch=2, max_waiting=3)
    first = asyncio.ensure_future(lookups.get("a"))
    await yield_to_loop()  # "a" is being fetched; the next three ids wait
    waiting = [asyncio.ensure_future(lookups.get(i)) for i in ("b", "c", "missing", "c")]
    await yield_to_loop()
    with pytest.raises(UnavailableError, match="too many token checks"):
        await lookups.get("d")
    assert lookups.waiting == 4
    release.set()
    for call in (first, *waiting):
        with pytest.raises(UnavailableError, match="unreachable"):
            await call
    fail[0] = False
    assert await asyncio.gather(lookups.get("b"), lookups.get("missing")) == ["B", None]
    assert lookups.waiting == 0
