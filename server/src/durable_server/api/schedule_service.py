"""ScheduleService: cron schedules — validate, call the scheduler, convert."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

from durable._shared import (
    catch_up_from_proto,
    catch_up_to_proto,
    overlap_from_proto,
    overlap_to_proto,
)
from durable.v1 import common_pb2
from durable.v1 import schedule_service_pb2 as pb
from durable.v1 import schedule_service_pb2_grpc as pb_grpc
from durable_server.api import validate
from durable_server.api.convert import set_time
from durable_server.config import Settings
from durable_server.engine.scheduler import Scheduler
from durable_server.errors import InvalidArgumentError, NotFoundError
from durable_server.store import schedules as schedule_store
from durable_server.store.db import Database
from durable_server.store.schedules import ScheduleRow

__all__ = ["ScheduleService", "schedule_to_proto"]

Context = grpc.aio.ServicerContext[Any, Any]

UPDATABLE = (
    "workflow_name",
    "cron",
    "timezone",
    "input_json",
    "queue",
    "priority",
    "enabled",
    "catch_up",
    "catch_up_limit",
    "overlap",
    "max_failures",
)


def _positive(field: str, value: int) -> int:
    if value < 0:
        raise InvalidArgumentError(f"{field} must not be negative, got {value}")
    return value


def schedule_to_proto(s: ScheduleRow) -> pb.Schedule:
    """A stored schedule as the API shows it."""
    msg = pb.Schedule(
        name=s.name,
        workflow_name=s.workflow_name,
        cron=s.cron,
        timezone=s.timezone,
        input_json=s.input_json,
        queue=s.queue or "",
        priority=s.priority,
        enabled=s.enabled,
        catch_up=catch_up_to_proto(s.catch_up),
        catch_up_limit=s.catch_up_limit,
        overlap=overlap_to_proto(s.overlap),
        max_failures=s.max_failures,
        last_execution_id=s.last_execution_id or "",
        consecutive_failures=s.consecutive_failures,
        last_error=s.last_error or "",
        disabled_reason=s.disabled_reason or "",
        declared=s.declared_by is not None,
    )
    for field in ("next_fire_at", "last_fire_at", "created_at", "updated_at"):
        set_time(msg, field, getattr(s, field))
    return msg


class ScheduleService(pb_grpc.ScheduleServiceServicer):
    """Thin servicer: validate, call the scheduler, convert."""

    def __init__(self, scheduler: Scheduler, db: Database, settings: Settings) -> None:
        self.scheduler = scheduler
        self.db = db
        self.settings = settings

    def _fields(self, msg: pb.Schedule, only: Sequence[str] = UPDATABLE) -> dict[str, Any]:
        """The settable fields (``only`` these) of a request's schedule, validated."""
        limit = self.settings.max_payload_bytes
        readers: dict[str, Callable[[], Any]] = {
            "workflow_name": lambda: validate.check_name("workflow_name", msg.workflow_name),
            "cron": lambda: validate.check_text("cron", msg.cron).strip(),
            "timezone": lambda: validate.check_text("timezone", msg.timezone).strip(),
            "input_json": lambda: validate.check_payload("input_json", msg.input_json, limit),
            "queue": lambda: validate.check_name("queue", msg.queue) if msg.queue else None,
            "priority": lambda: msg.priority,
            "enabled": lambda: msg.enabled,
            "catch_up": lambda: (
                catch_up_from_proto(
                    validate.check_enum("catch_up", common_pb2.CatchUp, msg.catch_up)
                ).value
            ),
            "catch_up_limit": lambda: _positive("catch_up_limit", msg.catch_up_limit) or 10,
            "overlap": lambda: (
                overlap_from_proto(
                    validate.check_enum("overlap", common_pb2.Overlap, msg.overlap)
                ).value
            ),
            "max_failures": lambda: _positive("max_failures", msg.max_failures) or 5,
        }
        return {name: readers[name]() for name in only}

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        """Create a schedule."""
        name = validate.check_name("schedule name", request.schedule.name)
        fields = self._fields(request.schedule)
        row = ScheduleRow(
            name=name,
            next_fire_at=None,
            last_fire_at=None,
            last_execution_id=None,
            consecutive_failures=0,
            last_error=None,
            disabled_reason=None,
            declared_by=None,
            **fields,
        )
        created = await self.scheduler.create(row)
        return pb.CreateScheduleResponse(schedule=schedule_to_proto(created))

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.GetScheduleResponse:
        """Read one schedule."""
        name = validate.check_name("name", request.name)
        async with self.db.connection() as conn:
            row = await schedule_store.schedule_get(conn, name=name)
        if row is None:
            raise NotFoundError(f"schedule {name!r} does not exist")
        return pb.GetScheduleResponse(schedule=schedule_to_proto(row))

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: Context
    ) -> pb.ListSchedulesResponse:
        """List schedules by name."""
        size = validate.check_page_size(request.page_size)
        after = validate.decode_name_token(request.page_token) if request.page_token else ""
        async with self.db.connection() as conn:
            rows = await schedule_store.schedule_list(
                conn,
                after=after,
                enabled=request.enabled if request.HasField("enabled") else None,
                workflow_name=validate.check_text("workflow_name", request.workflow_name) or None,
                queue=validate.check_text("queue", request.queue) or None,
                limit=size + 1,
            )
        token = validate.encode_name_token(rows[size - 1].name) if len(rows) > size else ""
        return pb.ListSchedulesResponse(
            schedules=[schedule_to_proto(r) for r in rows[:size]], next_page_token=token
        )

    async def UpdateSchedule(
        self, request: pb.UpdateScheduleRequest, context: Context
    ) -> pb.UpdateScheduleResponse:
        """Change the fields named in the mask."""
        name = validate.check_name("schedule name", request.schedule.name)
        mask = list(request.update_mask)
        if not mask:
            raise InvalidArgumentError(f"update_mask is empty: name fields of {UPDATABLE}")
        unknown = sorted(set(mask) - set(UPDATABLE))
        if unknown:
            raise InvalidArgumentError(
                f"update_mask names {unknown}, which cannot be updated; use {UPDATABLE}"
            )
        changed = await self.scheduler.update(name, self._fields(request.schedule, mask))
        return pb.UpdateScheduleResponse(schedule=schedule_to_proto(changed))

    async def EnableSchedule(
        self, request: pb.EnableScheduleRequest, context: Context
    ) -> pb.EnableScheduleResponse:
        """Turn a schedule on."""
        row = await self.scheduler.update(
            validate.check_name("name", request.name), {"enabled": True}
        )
        return pb.EnableScheduleResponse(schedule=schedule_to_proto(row))

    async def DisableSchedule(
        self, request: pb.DisableScheduleRequest, context: Context
    ) -> pb.DisableScheduleResponse:
        """Turn a schedule off."""
        row = await self.scheduler.update(
            validate.check_name("name", request.name), {"enabled": False}
        )
        return pb.DisableScheduleResponse(schedule=schedule_to_proto(row))

    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: Context
    ) -> pb.DeleteScheduleResponse:
        """Delete a schedule."""
        await self.scheduler.delete(validate.check_name("name", request.name))
        return pb.DeleteScheduleResponse()

    async def TriggerSchedule(
        self, request: pb.TriggerScheduleRequest, context: Context
    ) -> pb.TriggerScheduleResponse:
        """Start a run now."""
        name = validate.check_name("name", request.name)
        input_json = None
        if request.input_json:
            input_json = validate.check_payload(
                "input_json", request.input_json, self.settings.max_payload_bytes
            )
        execution_id = await self.scheduler.trigger(name, input_json)
        return pb.TriggerScheduleResponse(execution_id=execution_id)
