"""Import the user's modules and collect the workflows they define."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from durable import Workflow

__all__ = ["LoaderError", "load_workflows", "workflows_in"]


class LoaderError(Exception):
    """A module cannot be imported, defines no workflow, or two workflows share a name."""


def _import(name: str) -> ModuleType:
    """Import ``name`` with the current directory on ``sys.path`` (as ``python -m`` does)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only a missing module *named on the command line* is our error to explain; a
        # missing dependency of the user's code keeps its own traceback.
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise LoaderError(
                f"no module named {name!r} (looked in {cwd} and on sys.path); name a "
                "module as you would import it, e.g. 'myapp.workflows'"
            ) from exc
        raise


def workflows_in(module: ModuleType) -> list[Workflow]:
    """The Workflow objects among a module's globals, in definition order."""
    found: dict[int, Workflow] = {}
    for value in vars(module).values():
        if isinstance(value, Workflow):
            found.setdefault(id(value), value)
    return list(found.values())


def load_workflows(modules: Sequence[str]) -> list[Workflow]:
    """Import ``modules`` and return their workflows, one per name.

    The same Workflow object reached through several modules counts once.

    Raises:
        LoaderError: A module cannot be found or defines no ``durable.Workflow``, or two
            different workflows have the same name.
    """
    by_name: dict[str, tuple[Workflow, str]] = {}
    for module_name in modules:
        workflows = workflows_in(_import(module_name))
        if not workflows:
            raise LoaderError(f"module {module_name} defines no durable.Workflow")
        for workflow in workflows:
            seen, where = by_name.setdefault(workflow.name, (workflow, module_name))
            if seen is not workflow:
                raise LoaderError(
                    f"two different workflows are named {workflow.name!r}: one in module "
                    f"{where}, one in module {module_name}; workflow names must be unique"
                )
    return [workflow for workflow, _ in by_name.values()]
