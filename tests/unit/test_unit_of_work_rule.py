"""Every engine write goes through the unit of work: one place opens a write transaction."""

from __future__ import annotations

import ast
from pathlib import Path

import durable_server

PACKAGE = Path(durable_server.__file__).parent
# The unit of work, and the pool it opens transactions on.
ALLOWED = {"engine/context.py", "store/db.py"}


def _calls(name: str) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called == name:
                found.append(f"{rel}:{node.lineno}")
    return found


def test_only_the_unit_of_work_opens_a_database_transaction() -> None:
    opened = [
        where
        for where in _calls("transaction")
        if where.split(":")[0] not in ALLOWED | {"store/migrate.py"}  # migrations: own conn
    ]
    assert opened == []


def test_only_the_unit_of_work_builds_an_applier() -> None:
    built = [where for where in _calls("Applier") if where.split(":")[0] != "engine/context.py"]
    assert built == []
