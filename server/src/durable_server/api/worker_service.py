"""WorkerService: registration, long-poll, and batched reports from workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc

from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_server.api import convert, validate
from durable_server.auth import access
from durable_server.config import Settings
from durable_server.dispatcher import Dispatcher
from durable_server.engine.children import ChildStart
from durable_server.engine.engine import Engine, NextTasks, Suspension, TaskOutcome
from durable_server.engine.registry import Registry, Takeover
from durable_server.engine.transitions import Evaluation
from durable_server.errors import InvalidArgumentError

__all__ = ["WorkerService"]

Context = grpc.aio.ServicerContext[Any, Any]
MAX_TASKS = 1000
MAX_BATCH = 5000


def _leases(items: Any) -> list[tuple[int, str]]:
    leases = [(lease.task_id, lease.lease_token) for lease in items]
    if len(leases) > MAX_BATCH:
        raise InvalidArgumentError(f"at most {MAX_BATCH} items per call, got {len(leases)}")
    if len({i for i, _ in leases}) != len(leases):
        raise InvalidArgumentError("a task id appears twice in one call")
    for task_id, token in leases:
        if not token:
            raise InvalidArgumentError(f"task {task_id}: lease_token is required")
        validate.check_execution_id(token, "lease_token")
    return leases


class WorkerService(pb_grpc.WorkerServiceServicer):
    """Thin servicer: validate, call the engine, convert."""

    def __init__(
        self, engine: Engine, registry: Registry, dispatcher: Dispatcher, settings: Settings
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.dispatcher = dispatcher
        self.settings = settings
        self.heartbeat_interval = timedelta(seconds=settings.poll_heartbeat_secs)

    async def RegisterWorkflows(
        self, request: pb.RegisterWorkflowsRequest, context: Context
    ) -> pb.RegisterWorkflowsResponse:
        """Store the worker's definitions."""
        worker_id = validate.check_worker_id(request.worker_id)
        names = [d.name for d in request.workflows]
        if len(set(names)) != len(names):
            raise InvalidArgumentError("a workflow name appears twice in one registration")
        for definition in request.workflows:
            validate.check_definition(definition)
        queues = validate.check_queues(request.queues)
        access.check_registration(queues, request.workflows)
        takeover = Takeover(allowed=request.allow_takeover, may_use=access.may_use_queue)
        registered = await self.registry.register(worker_id, request.workflows, queues, takeover)
        return pb.RegisterWorkflowsResponse(
            workflows=[
                pb.RegisteredWorkflow(name=r.name, version=r.version, created=r.created)
                for r in registered
            ]
        )

    async def PollTasks(
        self, request: pb.PollTasksRequest, context: Context
    ) -> pb.PollTasksResponse:
        """Wait for and lease ready tasks."""
        worker_id = validate.check_worker_id(request.worker_id)
        queues = validate.check_queues(request.queues)
        access.check_queues(queues)
        if not 0 <= request.max_tasks <= MAX_TASKS:
            raise InvalidArgumentError(f"max_tasks must be within 0..{MAX_TASKS}")
        wait = (
            validate.check_duration("wait_timeout", request.wait_timeout)
            if request.HasField("wait_timeout")
            else timedelta(seconds=self.settings.default_poll_wait_secs)
        )
        wait = max(timedelta(0), min(wait, timedelta(seconds=self.settings.max_poll_wait_secs)))
        tasks = await self.dispatcher.poll(worker_id, queues, request.max_tasks or 1, wait)
        return pb.PollTasksResponse(
            tasks=[convert.claimed_task_to_proto(t, self.heartbeat_interval) for t in tasks]
        )

    async def CompleteTasks(
        self, request: pb.CompleteTasksRequest, context: Context
    ) -> pb.CompleteTasksResponse:
        """Record step results; lease the next tasks to the worker when it has room."""
        worker_id = validate.check_worker_id(request.worker_id)
        if not 0 <= request.max_next_tasks <= MAX_TASKS:
            raise InvalidArgumentError(f"max_next_tasks must be within 0..{MAX_TASKS}")
        next_tasks = None
        if request.max_next_tasks:
            queues = validate.check_queues(request.queues)
            access.check_queues(queues)
            next_tasks = NextTasks(worker_id, queues, request.max_next_tasks)
        leases = _leases(c.lease for c in request.completions)
        outcomes = [
            TaskOutcome(
                task_id,
                token,
                result_json=validate.check_payload(
                    f"result_json of task {task_id}", c.result_json, self.settings.max_payload_bytes
                ),
                goto_target=validate.check_goto(c.goto_target),
                evaluations=self._evaluations(task_id, c.evaluations),
                children=self._children(task_id, c.children),
                logs=convert.logs_from_proto(c.logs),
            )
            for (task_id, token), c in zip(leases, request.completions, strict=True)
        ]
        if outcomes:
            payloads = {f"result_json of task {o.task_id}": o.result_json or "" for o in outcomes}
            for o in outcomes:
                for name, ev in o.evaluations.items():
                    if ev.value_json is not None:
                        payloads[f"evaluation {name!r} of task {o.task_id}"] = ev.value_json
            with validate.naming_bad_json(payloads):
                leased = await self.engine.report(outcomes, next_tasks, access.allowed_queues())
            if next_tasks is not None:
                self.engine.presence.seen(worker_id)
            return pb.CompleteTasksResponse(
                next_tasks=[
                    convert.claimed_task_to_proto(t, self.heartbeat_interval) for t in leased
                ]
            )
        return pb.CompleteTasksResponse()

    async def FailTasks(
        self, request: pb.FailTasksRequest, context: Context
    ) -> pb.FailTasksResponse:
        """Record step failures."""
        validate.check_worker_id(request.worker_id)
        leases = _leases(f.lease for f in request.failures)
        outcomes = [
            TaskOutcome(
                task_id,
                token,
                error=convert.step_error_from_proto(f.error),
                timed_out=f.timed_out,
                logs=convert.logs_from_proto(f.logs),
            )
            for (task_id, token), f in zip(leases, request.failures, strict=True)
        ]
        if outcomes:
            await self.engine.report(outcomes, scope=access.allowed_queues())
        return pb.FailTasksResponse()

    async def SuspendTasks(
        self, request: pb.SuspendTasksRequest, context: Context
    ) -> pb.SuspendTasksResponse:
        """Park tasks on their waits."""
        validate.check_worker_id(request.worker_id)
        leases = _leases(s.lease for s in request.suspensions)
        suspensions = []
        for (task_id, token), x in zip(leases, request.suspensions, strict=True):
            children = self._children(task_id, x.children)
            wait = convert.wait_from_proto(task_id, x)
            if wait.index < 0:
                raise InvalidArgumentError(f"task {task_id}: a wait's index must be >= 0")
            timeout_value = wait.timeout_value_json
            if timeout_value is not None:
                validate.check_payload(
                    f"timeout_value_json of task {task_id}",
                    timeout_value,
                    self.settings.max_payload_bytes,
                )
            suspensions.append(
                Suspension(task_id, token, children, wait, convert.logs_from_proto(x.logs))
            )
        if suspensions:
            payloads = {
                f"input_json of child {c.index} of task {x.task_id}": c.input_json
                for x in suspensions
                for c in x.children
            }
            for parked in suspensions:
                value = parked.wait.timeout_value_json
                if value is not None:
                    payloads[f"timeout_value_json of task {parked.task_id}"] = value
            with validate.naming_bad_json(payloads):
                await self.engine.suspend(suspensions, access.allowed_queues())
        return pb.SuspendTasksResponse()

    def _evaluations(self, task_id: int, evaluations: Any) -> dict[str, Evaluation]:
        """Reported evaluations, their values within the size limit and the JSON profile."""
        out = convert.evaluations_from_proto(evaluations)
        for name, ev in out.items():
            if ev.value_json is not None:
                validate.check_payload(
                    f"evaluation {name!r} of task {task_id}",
                    ev.value_json,
                    self.settings.max_payload_bytes,
                )
        return out

    def _children(self, task_id: int, starts: Any) -> list[ChildStart]:
        out = []
        for c in starts:
            if c.index < 0:
                raise InvalidArgumentError(f"task {task_id}: child index must be >= 0")
            out.append(
                ChildStart(
                    index=c.index,
                    workflow_name=validate.check_name("child workflow_name", c.workflow_name),
                    input_json=validate.check_payload(
                        f"input_json of child {c.index} of task {task_id}",
                        c.input_json,
                        self.settings.max_payload_bytes,
                    ),
                    queue=validate.check_name("child queue", c.queue) if c.queue else None,
                    priority=c.priority,
                )
            )
        if len({c.index for c in out}) != len(out):
            raise InvalidArgumentError(f"task {task_id}: two children with the same index")
        return out

    async def ReleaseTasks(
        self, request: pb.ReleaseTasksRequest, context: Context
    ) -> pb.ReleaseTasksResponse:
        """Give leased tasks back unrun."""
        validate.check_worker_id(request.worker_id)
        leases = _leases(request.leases)
        if leases:
            await self.engine.release(leases, access.allowed_queues())
        return pb.ReleaseTasksResponse()

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        """Extend leases; report the lost ones."""
        worker_id = validate.check_worker_id(request.worker_id)
        leases = _leases(request.leases)
        lost, expires = await self.engine.heartbeat(worker_id, leases, access.allowed_queues())
        response = pb.HeartbeatResponse(lost_task_ids=lost)
        if expires is not None:
            response.lease_expires_at.FromDatetime(expires)
        return response
