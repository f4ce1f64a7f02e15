"""``python -m durable_worker``: the same as ``durable-worker``."""

from __future__ import annotations

from durable_worker.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
