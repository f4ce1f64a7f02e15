"""The loader: import modules from the current directory and collect their workflows."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durable_worker.loader import LoaderError, load_workflows

TWO_WORKFLOWS = """
from durable import Workflow

orders = Workflow("orders")
alias = orders  # the same object under two names counts once
emails = Workflow("emails", queue="mail")


@orders.step
def validate(order):
    return order


@emails.step
def send(data):
    return data
"""

NO_WORKFLOW = """
from durable import Workflow

NAME = "not a workflow"
"""

ANOTHER_ORDERS = """
from durable import Workflow

orders = Workflow("orders")


@orders.step
def other(data):
    return data
"""


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Writes modules with fresh names into a temp directory that is the current one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    names: list[str] = []

    def write(source: str) -> str:
        name = f"wfmod_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(source)
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def test_a_module_with_two_workflows(module_dir: Callable[[str], str]) -> None:
    name = module_dir(TWO_WORKFLOWS)
    workflows = load_workflows([name])
    assert [w.name for w in workflows] == ["orders", "emails"]
    assert [s.name for s in workflows[0].steps] == ["validate"]


def test_the_same_module_twice_loads_each_workflow_once(
    module_dir: Callable[[str], str],
) -> None:
    name = module_dir(TWO_WORKFLOWS)
    assert [w.name for w in load_workflows([name, name])] == ["orders", "emails"]


def test_a_module_without_workflows_is_an_error(module_dir: Callable[[str], str]) -> None:
    name = module_dir(NO_WORKFLOW)
    with pytest.raises(LoaderError, match=f"^module {name} defines no durable.Workflow$"):
        load_workflows([name])


def test_two_workflows_with_one_name_are_an_error(module_dir: Callable[[str], str]) -> None:
    first, second = module_dir(TWO_WORKFLOWS), module_dir(ANOTHER_ORDERS)
    with pytest.raises(
        LoaderError,
        match=f"two different workflows are named 'orders': one in module {first}, "
        f"one in module {second}",
    ):
        load_workflows([first, second])


def test_a_missing_module_is_a_clear_error(module_dir: Callable[[str], str]) -> None:
    with pytest.raises(LoaderError, match="no module named 'no_such_module_here'"):
        load_workflows(["no_such_module_here"])


def test_a_missing_dependency_keeps_its_own_error(module_dir: Callable[[str], str]) -> None:
    name = module_dir("import no_such_dependency_here\n")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        load_workflows([name])
