"""WorkerService: registration, long-poll, and batched reports from workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc

from durable.v1 import worker_service_pb2 as pb
from durable.v1 import worker_service_pb2_grpc as pb_grpc
from durable_server.api import convert, reports, validate
from durable_server.api.reports import MAX_TASKS
from durable_server.auth import access
from durable_server.config import Settings
from durable_server.dispatcher import Dispatcher
from durable_server.engine.engine import Engine
from durable_server.engine.registry import Registry, Takeover
from durable_server.errors import InvalidArgumentError

__all__ = ["WorkerService"]

Context = grpc.aio.ServicerContext[Any, Any]


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
        validate.check_enum("mode", pb.RegisterMode, request.mode)
        queues = validate.check_queues(request.queues)
        access.check_registration(queues, request.workflows)
        takeover = Takeover(allowed=request.allow_takeover, may_use=access.may_use_queue)
        registered = await self.registry.register(
            worker_id,
            request.workflows,
            queues,
            takeover,
            add=request.mode == pb.REGISTER_MODE_ADD,
        )
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
        tasks = await self.dispatcher.poll(
            self.engine.claim, worker_id, queues, request.max_tasks or 1, wait
        )
        return pb.PollTasksResponse(
            tasks=[convert.claimed_task_to_proto(t, self.heartbeat_interval) for t in tasks]
        )

    async def CompleteTasks(
        self, request: pb.CompleteTasksRequest, context: Context
    ) -> pb.CompleteTasksResponse:
        """Record step results; lease the next tasks to the worker when it has room."""
        worker_id = validate.check_worker_id(request.worker_id)
        next_tasks = reports.next_tasks_from_proto(worker_id, request)
        outcomes = reports.completions_from_proto(
            request.completions, self.settings.max_payload_bytes
        )
        if not outcomes:
            return pb.CompleteTasksResponse()
        with validate.naming_bad_json(reports.completion_payloads(outcomes)):
            leased = await self.engine.report(outcomes, next_tasks, access.allowed_queues())
        if next_tasks is not None:
            self.engine.presence.seen(worker_id)
        return pb.CompleteTasksResponse(
            next_tasks=[convert.claimed_task_to_proto(t, self.heartbeat_interval) for t in leased]
        )

    async def FailTasks(
        self, request: pb.FailTasksRequest, context: Context
    ) -> pb.FailTasksResponse:
        """Record step failures."""
        validate.check_worker_id(request.worker_id)
        outcomes = reports.failures_from_proto(request.failures)
        if outcomes:
            await self.engine.report(outcomes, scope=access.allowed_queues())
        return pb.FailTasksResponse()

    async def SuspendTasks(
        self, request: pb.SuspendTasksRequest, context: Context
    ) -> pb.SuspendTasksResponse:
        """Park tasks on their waits."""
        validate.check_worker_id(request.worker_id)
        suspensions = reports.suspensions_from_proto(
            request.suspensions, self.settings.max_payload_bytes
        )
        if suspensions:
            with validate.naming_bad_json(reports.suspension_payloads(suspensions)):
                await self.engine.suspend(suspensions, access.allowed_queues())
        return pb.SuspendTasksResponse()

    async def ReleaseTasks(
        self, request: pb.ReleaseTasksRequest, context: Context
    ) -> pb.ReleaseTasksResponse:
        """Give leased tasks back unrun."""
        validate.check_worker_id(request.worker_id)
        leases = reports.leases_from_proto(request.leases)
        if leases:
            await self.engine.release(leases, access.allowed_queues())
        return pb.ReleaseTasksResponse()

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context
    ) -> pb.HeartbeatResponse:
        """Extend leases; report the lost ones."""
        worker_id = validate.check_worker_id(request.worker_id)
        leases = reports.leases_from_proto(request.leases)
        lost, expires = await self.engine.heartbeat(worker_id, leases, access.allowed_queues())
        response = pb.HeartbeatResponse(lost_task_ids=lost)
        if expires is not None:
            response.lease_expires_at.FromDatetime(expires)
        return response
