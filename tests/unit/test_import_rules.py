"""Import rules of the three packages: arrows point down, and nothing goes round in circles.

- The SDK (``durable``) is at the bottom: none of its modules imports the orchestrator
  (``durable_server``) or the worker (``durable_worker``) when it is imported. The parts that
  use them (``durable.testing``, the ``durable server`` commands) import them when called,
  and say what to install when they are missing.
- The server and the worker use the SDK through its public API (``durable``,
  ``durable.errors``, ``durable.secrets``), the generated protocol (``durable.v1``) and the one
  module naming what they share with it, ``durable._shared`` (whose names are pinned here).
- No import circles: among the modules imported at import time, across the three packages;
  and inside each package, counting the imports made inside functions too.

The imports are read from the source with ``ast``; ``if TYPE_CHECKING:`` blocks do not run,
so they do not count (except for the shared-surface rule, which holds for them too).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import durable._shared

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {
    "durable": REPO / "sdk-python" / "src" / "durable",
    "durable_server": REPO / "server" / "src" / "durable_server",
    "durable_worker": REPO / "worker" / "src" / "durable_worker",
}

SHARED = [
    "CHANNEL_OPTIONS",
    "NO_RETRY",
    "BearerTokenInterceptor",
    "Evaluation",
    "Foreach",
    "JSONSerializationError",
    "Parallel",
    "StepSuspended",
    "Wait",
    "aio_channel",
    "catch_up_from_proto",
    "catch_up_to_proto",
    "check_token",
    "configure_from_env",
    "connection_from_env",
    "context_from_metadata",
    "context_from_traceparent",
    "definition_hash",
    "dumps_json",
    "evaluate",
    "json_problem",
    "loads_json",
    "needs_evaluation",
    "overlap_from_proto",
    "overlap_to_proto",
    "recorded_children",
    "resolve_tls",
    "retry_delay",
    "suspension_of",
    "task_kind_from_proto",
    "to_definition",
    "traceparent_of",
    "tracer",
    "wait_kind",
]
"""What the server and the worker share with the SDK beyond its public API."""

PUBLIC_SDK_MODULES = ("durable", "durable._shared", "durable.errors", "durable.secrets")


# -- reading imports ---------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One imported name: ``from <module> import <name>`` (name empty for ``import``)."""

    module: str
    name: str
    line: int
    top_level: bool  # runs when the importing module is imported
    type_checking: bool  # inside ``if TYPE_CHECKING:``: never runs


def _module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _sources() -> dict[str, Path]:
    """Every module of the three packages, by dotted name."""
    found: dict[str, Path] = {}
    for package, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            found[_module_name(package, root, path)] = path
    return found


MODULES = _sources()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    is_package = MODULES[module].name == "__init__.py"

    def absolute(node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = module.split(".")
        base = base if is_package else base[:-1]
        base = base[: len(base) - node.level + 1]
        return ".".join([*base, *([node.module] if node.module else [])])

    def visit(node: ast.AST, top_level: bool, type_checking: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, "", node.lineno, top_level, type_checking)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                yield Import(absolute(node), alias.name, node.lineno, top_level, type_checking)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, top_level, True)
            for child in node.orelse:
                yield from visit(child, top_level, type_checking)
        else:
            # A function's body runs when it is called; a class body runs at import.
            inner = top_level and not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            for child in ast.iter_child_nodes(node):
                yield from visit(child, inner, type_checking)

    yield from visit(tree, True, False)


def _target(imported: Import) -> str | None:
    """The project module an import loads (a submodule when the name is one), if any."""
    if imported.name and f"{imported.module}.{imported.name}" in MODULES:
        return f"{imported.module}.{imported.name}"
    return imported.module if imported.module in MODULES else None


def _graph(*, top_level_only: bool, same_package: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module in MODULES:
        for imported in _imports(module):
            if imported.type_checking or (top_level_only and not imported.top_level):
                continue
            target = _target(imported)
            if target is None or target == module:
                continue
            if same_package and target.split(".")[0] != module.split(".")[0]:
                continue
            graph[module].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its modules, the first repeated at the end), or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            found = visit(start)
            if found:
                return found
    return None


# -- the rules ---------------------------------------------------------------------------


def test_the_module_list_is_read() -> None:
    # Guards the other tests against passing on an empty tree.
    assert {"durable._shared", "durable_server.app", "durable_worker.worker"} <= set(MODULES)


def test_no_sdk_module_imports_the_server_or_the_worker() -> None:
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys

        BLOCKED = ("durable_server", "durable_worker")

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Blocker())
        import durable

        names = [m.name for m in pkgutil.walk_packages(durable.__path__, "durable.")]
        for name in names:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        assert "durable.testing" in names and "durable._cli" in names, names

        # The optional parts say what to install when they are used.
        from durable import Workflow
        from durable.testing import WorkflowTestEnv
        try:
            WorkflowTestEnv([Workflow("wf")])
        except ImportError as exc:
            assert "durable-server and durable-worker" in str(exc), exc
        else:
            raise AssertionError("WorkflowTestEnv without the server did not fail")

        from durable._cli import main
        assert main(["server"]) == 2
        print("imported", len(names))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported ")
    assert "pip install durable-server" in done.stderr


def test_no_import_circles_at_import_time() -> None:
    cycle = _cycle(_graph(top_level_only=True, same_package=False))
    assert cycle is None, " -> ".join(cycle or ())


def test_no_import_circles_inside_a_package_counting_deferred_imports() -> None:
    # An import inside a function breaks a circle at run time, not in the design (the
    # SDK's optional parts import the server on purpose: those arrows cross packages).
    cycle = _cycle(_graph(top_level_only=False, same_package=True))
    assert cycle is None, " -> ".join(cycle or ())


@pytest.mark.parametrize("package", ["durable_server", "durable_worker"])
def test_server_and_worker_use_only_the_shared_sdk_surface(package: str) -> None:
    wrong = []
    for module in sorted(m for m in MODULES if m.split(".")[0] == package):
        for imported in _imports(module):
            if imported.module.split(".")[0] != "durable":
                continue
            target = imported.module
            if target == "durable" and imported.name.startswith("_"):
                target = f"durable.{imported.name}"  # from durable import _serde
            if target in PUBLIC_SDK_MODULES or target.startswith("durable.v1"):
                continue
            wrong.append(f"{module}:{imported.line} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_shared_surface_is_pinned() -> None:
    assert durable._shared.__all__ == SHARED
    for name in SHARED:
        assert getattr(durable._shared, name) is not None, name


def test_every_shared_name_is_used_by_the_server_or_the_worker() -> None:
    used = {
        imported.name
        for module in MODULES
        if module.split(".")[0] in ("durable_server", "durable_worker")
        for imported in _imports(module)
        if imported.module == "durable._shared"
    }
    assert set(SHARED) - used == set()
