"""The package's public names: sorted, importable and complete."""

from __future__ import annotations

import types

import durable


def test_all_is_sorted() -> None:
    assert durable.__all__ == sorted(durable.__all__)


def test_every_exported_name_is_importable() -> None:
    for name in durable.__all__:
        assert getattr(durable, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from durable import *", namespace)
    assert set(durable.__all__) <= set(namespace)


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(durable).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__
    }
    assert public == set(durable.__all__)


def test_client_names_are_exported() -> None:
    for name in (
        "Client",
        "SyncClient",
        "Execution",
        "ExecutionPage",
        "ExecutionStatus",
        "StepAttempt",
        "StepAttemptStatus",
        "ErrorInfo",
    ):
        assert name in durable.__all__
