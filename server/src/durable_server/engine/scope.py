"""Which tasks a caller may touch: those of the queues its token is limited to.

A worker token created for some queues reports, heartbeats and releases only tasks of
those queues, even when it holds another task's lease token. The engine checks the
queue of the rows its lease query already locked, so the check costs no extra query.
"""

from __future__ import annotations

from collections.abc import Iterable

from durable_server.errors import PermissionDeniedError

__all__ = ["QueueScope", "check_task_queues"]

QueueScope = frozenset[str] | None
"""The queues a caller may use; None when it may use every queue."""


def check_task_queues(tasks: Iterable[tuple[int, str]], scope: QueueScope) -> None:
    """Refuse (PERMISSION_DENIED) when a ``(task id, queue)`` lies outside ``scope``."""
    if scope is None:
        return
    outside = sorted((task_id, queue) for task_id, queue in tasks if queue not in scope)
    if outside:
        ids = ", ".join(str(task_id) for task_id, _ in outside)
        queues = ", ".join(sorted({queue for _, queue in outside}))
        raise PermissionDeniedError(
            f"task(s) {ids} are on queue(s) {queues}, which this token may not use "
            f"(it may use {', '.join(sorted(scope))}); nothing was changed"
        )
