"""The store sits at the bottom of the orchestrator: it imports nothing above it.

Its modules define the rows they write; the engine maps its effects to them (see
``engine/apply.py``). The only other part of the orchestrator the store may use is
``errors``, which every layer shares.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = importlib.util.find_spec("durable_server")
assert SPEC is not None
assert SPEC.submodule_search_locations is not None
PACKAGE = Path(next(iter(SPEC.submodule_search_locations)))
STORE = PACKAGE / "store"
ALLOWED = ("durable_server.store", "durable_server.errors")


def _modules() -> list[Path]:
    return sorted(STORE.glob("*.py"))


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (also inside functions or TYPE_CHECKING)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def _is_allowed(name: str) -> bool:
    return any(name == a or name.startswith(f"{a}.") for a in ALLOWED)


def test_the_store_has_modules_to_check() -> None:
    assert {"tasks.py", "executions.py", "step_attempts.py", "db.py"} <= {
        p.name for p in _modules()
    }


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_a_store_module_imports_nothing_above_the_store(path: Path) -> None:
    above = sorted(
        name
        for name in _imported(path)
        if name.split(".")[0] == "durable_server" and name != "durable_server"
        if not _is_allowed(name)
    )
    assert not above, f"store/{path.name} imports {above}: the store may import only {ALLOWED}"


def test_a_store_module_imports_not_even_the_top_package() -> None:
    """``import durable_server`` would load the whole orchestrator (its ``__init__`` does)."""
    for path in _modules():
        assert "durable_server" not in _imported(path), path.name


_LOAD_THE_STORE = """
import importlib, pkgutil, sys, types

# The package without its __init__ (which loads the whole orchestrator): what the store
# loads is then all that is left in sys.modules.
package = types.ModuleType("durable_server")
package.__path__ = [sys.argv[1]]
sys.modules["durable_server"] = package
store = importlib.import_module("durable_server.store")
for info in pkgutil.iter_modules(store.__path__):
    importlib.import_module(f"durable_server.store.{info.name}")
print("\\n".join(sorted(m for m in sys.modules if m.startswith("durable_server."))))
"""


def test_loading_the_store_loads_nothing_of_the_orchestrator_above_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_THE_STORE, str(PACKAGE)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert "durable_server.store.tasks" in out  # it did load the store
    above = [name for name in out if not _is_allowed(name)]
    assert not above, f"loading the store loaded {above}"
