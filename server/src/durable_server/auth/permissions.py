"""What each role may call: one table, method by method.

- A **worker** token registers workflows, polls, heartbeats and reports — on its queues
  when it is limited to some (``auth/access.py`` checks the queues a request names,
  ``engine/scope.py`` the queues of the tasks it touches).
- A **client** token starts, reads, signals (events, inputs) and cancels executions, and
  reads schedules.
- An **admin** token may do what a client does, and manages schedules, queues, retries
  and workers, and moves the clock of an orchestrator in test mode. Worker calls need a
  worker token: an admin token runs no steps.

Health checks and reflection stay open. A method missing from the table is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from durable_server.auth.tokens import Role

__all__ = ["OPEN_SERVICES", "PERMISSIONS", "allowed_roles"]

_WORKER = frozenset({Role.WORKER})
_CLIENT = frozenset({Role.CLIENT, Role.ADMIN})
_ADMIN = frozenset({Role.ADMIN})

OPEN_SERVICES: Final = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
"""Services anyone may call, token or not."""

_BY_SERVICE: Final[Mapping[str, Mapping[str, frozenset[Role]]]] = {
    "durable.v1.WorkerService": {
        "RegisterWorkflows": _WORKER,
        "PollTasks": _WORKER,
        "CompleteTasks": _WORKER,
        "FailTasks": _WORKER,
        "ReleaseTasks": _WORKER,
        "SuspendTasks": _WORKER,
        "Heartbeat": _WORKER,
    },
    "durable.v1.WorkflowService": {
        "StartWorkflow": _CLIENT,
        "StartWorkflows": _CLIENT,
        "GetExecution": _CLIENT,
        "WaitExecution": _CLIENT,
        "ListExecutions": _CLIENT,
        "CancelExecution": _CLIENT,
        "ListChildren": _CLIENT,
        "SendEvent": _CLIENT,
        "ProvideInput": _CLIENT,
        "ListPendingInputs": _CLIENT,
        "ListPendingEvents": _CLIENT,
        "GetExecutionGraph": _CLIENT,
        "ListWorkers": _ADMIN,
    },
    "durable.v1.ScheduleService": {
        "CreateSchedule": _ADMIN,
        "GetSchedule": _CLIENT,
        "ListSchedules": _CLIENT,
        "UpdateSchedule": _ADMIN,
        "EnableSchedule": _ADMIN,
        "DisableSchedule": _ADMIN,
        "DeleteSchedule": _ADMIN,
        "TriggerSchedule": _ADMIN,
    },
    "durable.v1.OperationsService": {
        "PauseQueue": _ADMIN,
        "ResumeQueue": _ADMIN,
        "DrainQueue": _ADMIN,
        "ListQueues": _ADMIN,
        "RetryExecution": _ADMIN,
        "Diagnose": _ADMIN,
    },
    "durable.v1.TestingService": {
        "GetTime": _ADMIN,
        "AdvanceTime": _ADMIN,
        "SkipToNextTimer": _ADMIN,
    },
}

PERMISSIONS: Final[Mapping[str, frozenset[Role]]] = {
    f"/{service}/{method}": roles
    for service, methods in _BY_SERVICE.items()
    for method, roles in methods.items()
}
"""Full gRPC method name (``/package.Service/Method``) -> the roles that may call it."""


def allowed_roles(method: str) -> frozenset[Role] | None:
    """The roles that may call ``method``; None when it is open to anyone."""
    service = method.lstrip("/").split("/", 1)[0]
    if service in OPEN_SERVICES:
        return None
    return PERMISSIONS.get(method, frozenset())
