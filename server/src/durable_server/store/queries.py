"""Named SQL queries, loaded once from ``store/sql/*.sql``.

Each query in those files starts with ``-- name: <noun_verb>`` and one comment line saying
what it does. Store functions use the query of the same name; nothing else holds SQL.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

__all__ = ["QUERIES", "load_queries"]

_HEADER = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


def load_queries() -> dict[str, str]:
    """Parse every ``.sql`` file of the package into {name: query text}."""
    queries: dict[str, str] = {}
    folder = resources.files("durable_server.store") / "sql"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        parts = _HEADER.split(text)
        # parts = [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"query {name!r} is defined twice")
            lines = body.strip().splitlines()
            if not lines or not lines[0].startswith("-- "):
                raise RuntimeError(f"query {name!r} needs a one-line description")
            queries[name] = "\n".join(lines[1:]).strip().rstrip(";")
    return queries


QUERIES: Final[dict[str, str]] = load_queries()
