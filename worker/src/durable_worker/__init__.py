"""The Durable worker: runs the steps of registered workflows for the orchestrator.

Run it as ``durable-worker MODULE...`` (see :mod:`durable_worker.cli`), or in-process
with :class:`Worker`.
"""

from __future__ import annotations

from durable_worker.worker import Worker

__all__ = ["Worker"]
