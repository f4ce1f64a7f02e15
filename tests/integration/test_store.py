"""The store against real PostgreSQL: migrations, schemas, and the named queries."""

from __future__ import annotations

import ast
import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import grpc
import pytest

import durable_server.store
from durable import Workflow
from durable.v1 import common_pb2
from durable.v1 import workflow_service_pb2 as pb
from durable_server.app import run_migrations
from durable_server.store.migrate import available_migrations
from durable_server.store.queries import QUERIES
from tests.helpers import db
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient

STORE = Path(durable_server.store.__file__).parent
PACKAGE = STORE.parent
NOT_QUERY_MODULES = {
    "__init__.py",
    "db.py",
    "queries.py",
    "rows.py",
    "migrate.py",
    "reachability.py",
}

single = Workflow("single")


@single.step
def only(data: object) -> object:
    return data


@pytest.fixture
async def empty_database_url() -> AsyncIterator[str]:
    """A brand-new database with no schema at all, dropped after the test."""
    name = f"durable_t_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(db.url_for("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield db.url_for(name)
    finally:
        await db.drop_database(name)


# -- migrations ------------------------------------------------------------------------


async def test_racing_migrations_apply_each_version_once(empty_database_url: str) -> None:
    versions = [m.version for m in available_migrations()]
    assert versions, "no migrations shipped"

    results = await asyncio.gather(
        *(run_migrations(empty_database_url, "durable") for _ in range(4))
    )

    assert sorted(results, key=len) == [[], [], [], versions]
    conn = await asyncpg.connect(empty_database_url)
    try:
        rows = await conn.fetch(
            "SELECT version, count(*) AS n FROM durable.schema_migrations GROUP BY version"
            " ORDER BY version"
        )
        assert [(r["version"], r["n"]) for r in rows] == [(v, 1) for v in versions]
        assert await conn.fetchval("SELECT to_regclass('durable.tasks')::text") == "durable.tasks"
    finally:
        await conn.close()

    assert await run_migrations(empty_database_url, "durable") == []


async def test_two_schemas_in_one_database_are_independent(database_url: str) -> None:
    async with (
        running_orchestrator(database_url) as main,
        running_orchestrator(database_url, schema="other") as other,
        grpc.aio.insecure_channel(main.address) as main_ch,
        grpc.aio.insecure_channel(other.address) as other_ch,
    ):
        in_main, in_other = RawClient(main_ch), RawClient(other_ch)
        await in_main.register(single)

        # Registering in one schema does not register in the other.
        err = await _rpc_error(in_other.start("single"))
        assert err.code() == grpc.StatusCode.NOT_FOUND

        await in_other.register(single)
        main_id = await in_main.start("single", '"main"')
        other_id = await in_other.start("single", '"other"')

        for client, mine, theirs in ((in_main, main_id, other_id), (in_other, other_id, main_id)):
            err = await _rpc_error(client.get(theirs))
            assert err.code() == grpc.StatusCode.NOT_FOUND
            listed = await client.flows.ListExecutions(pb.ListExecutionsRequest())
            assert ([e.id for e in listed.executions], listed.total_count) == ([mine], 1)
            [task] = await client.poll(10)
            assert task.execution_id == mine
            await client.complete(task, "1")
            assert (await client.get(mine)).status == common_pb2.EXECUTION_STATUS_COMPLETED

    conn = await asyncpg.connect(database_url)
    try:
        for schema, expected in (("durable", main_id), ("other", other_id)):
            ids = await conn.fetch(f"SELECT id::text FROM {schema}.executions")
            assert [r["id"] for r in ids] == [expected]
        versions = await conn.fetch("SELECT version FROM other.schema_migrations ORDER BY 1")
        assert [r["version"] for r in versions] == [m.version for m in available_migrations()]
    finally:
        await conn.close()


async def _rpc_error(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


# -- named queries ---------------------------------------------------------------------


async def test_every_named_query_prepares(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SET search_path TO durable")
        failures = {}
        for name, query in sorted(QUERIES.items()):
            try:
                await conn.prepare(query)
            except asyncpg.PostgresError as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
    finally:
        await conn.close()
    assert failures == {}


def _query_references() -> dict[tuple[str, str], set[str]]:
    """{(module file, top-level function): query names it reads from QUERIES}."""
    refs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Subscript)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in {"Q", "QUERIES"}
                    and isinstance(node.slice, ast.Constant)
                ):
                    refs[(str(path.relative_to(PACKAGE)), fn.name)].add(node.slice.value)
    return refs


def test_query_references_are_found() -> None:
    # Guards the AST scan itself: a scan that finds nothing would pass everything below.
    refs = _query_references()
    assert refs[("store/tasks.py", "task_claim_many")] == {"task_claim_many"}
    assert "schema_lock" in refs[("store/migrate.py", "migrate")]


def test_only_store_modules_use_named_queries() -> None:
    outside = {where for where in _query_references() if not where[0].startswith("store/")}
    assert outside == set()
    unknown = {
        (where, name)
        for where, names in _query_references().items()
        for name in names
        if name not in QUERIES
    }
    assert unknown == set()


def test_every_query_is_used_by_exactly_one_store_function() -> None:
    users: dict[str, list[str]] = defaultdict(list)
    for (module, fn), names in _query_references().items():
        for name in names:
            users[name].append(f"{module}:{fn}")
    wrong = {
        name: sorted(users[name])
        for name in QUERIES
        if not name.startswith("schema_") and len(users[name]) != 1
    }
    assert wrong == {}


def test_schema_queries_are_used_by_migrate_only() -> None:
    for name in (n for n in QUERIES if n.startswith("schema_")):
        users = [where for where, names in _query_references().items() if name in names]
        assert users == [("store/migrate.py", "migrate")], name


def test_every_store_function_is_named_after_its_query() -> None:
    mismatched = {}
    for path in sorted(STORE.glob("*.py")):
        if path.name in NOT_QUERY_MODULES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = [n.name for n in tree.body if isinstance(n, ast.AsyncFunctionDef)]
        assert functions, f"{path.name} has no store functions"
        refs = _query_references()
        for fn in functions:
            names = refs.get((f"store/{path.name}", fn), set())
            if names != {fn}:
                mismatched[f"{path.name}:{fn}"] = sorted(names)
    assert mismatched == {}
