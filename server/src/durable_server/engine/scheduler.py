"""Cron schedules: firing due slots once across replicas, and the schedule API's writes.

Firing happens in one transaction per batch: the due schedules are locked with
``FOR UPDATE SKIP LOCKED`` (a replica skips the ones another is firing), each slot to run
is claimed in ``schedule_fires`` (its primary key makes a slot fire once, whatever
happens), the execution is created, and the schedule's next slot is computed.

What to run when slots were missed (the orchestrator was down) is the catch-up policy:
``once`` runs one execution for them all (for the latest slot), ``skip`` runs none of
the missed ones, ``all`` runs each of the latest ``catch_up_limit``. A slot counts as
missed when it is more than ``ON_TIME`` old by the time it is fired.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

from durable._shared import catch_up_from_proto, overlap_from_proto
from durable.v1 import definition_pb2
from durable_server.engine.context import EngineContext, UnitOfWork
from durable_server.engine.cron import CronError, CronSchedule
from durable_server.engine.definitions import Definition
from durable_server.engine.starts import insert_scheduled, new_execution
from durable_server.engine.states import ACTIVE_STATUS_VALUES, ExecutionStatus
from durable_server.engine.transitions import FinishExecution, StepError
from durable_server.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from durable_server.ids import new_execution_id
from durable_server.store import executions as ex_store
from durable_server.store import schedules as schedule_store
from durable_server.store import workflows as wf_store
from durable_server.store.db import Conn
from durable_server.store.schedules import ScheduleRow

__all__ = ["ON_TIME", "Scheduler", "parse_cron"]

log = logging.getLogger(__name__)

ON_TIME = timedelta(minutes=1)
BATCH = 100


def parse_cron(expression: str, timezone: str, *, what: str = "cron") -> CronSchedule:
    """The schedule of ``expression`` in ``timezone``; INVALID_ARGUMENT saying what is wrong."""
    try:
        return CronSchedule.parse(expression, timezone)
    except CronError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from exc


class Scheduler:
    """Fires due schedule slots, and creates, changes and triggers schedules."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.clock = ctx.clock
        self.definitions = ctx.definitions
        self.metrics = ctx.metrics

    # -- firing ------------------------------------------------------------------------

    async def fire_due(self, limit: int = BATCH) -> int:
        """Fire the slots of due schedules; returns how many schedules were handled."""
        now = self.clock.now()
        async with self.ctx.unit() as uow:
            due = await schedule_store.schedule_lock_due(
                uow.conn, now=self.clock.db_now(), limit=limit
            )
            for schedule in due:
                await self._fire(uow, schedule, now)
        return len(due)

    async def next_due(self) -> datetime | None:
        """When the next schedule is due."""
        async with self.db.connection() as conn:
            return await schedule_store.schedule_next_due(conn)

    async def _fire(self, uow: UnitOfWork, s: ScheduleRow, now: datetime) -> None:
        assert s.next_fire_at is not None
        conn = uow.conn
        try:
            cron = CronSchedule.parse(s.cron, s.timezone)
        except CronError as exc:  # stored before a stricter parser: stop, and say why
            await self._save(conn, s, enabled=False, disabled_reason=f"invalid cron: {exc}")
            return
        # Only the latest slots can run (whatever the policy), so never list a year of them.
        keep = (s.catch_up_limit or 10) if s.catch_up == "all" else 1
        slots = [s.next_fire_at, *cron.slots(s.next_fire_at, now, limit=keep)][-keep:]
        on_time = [slot for slot in slots if now - slot <= ON_TIME]
        if s.catch_up == "all":
            chosen = slots[-(s.catch_up_limit or 10) :]
        elif s.catch_up == "skip":
            chosen = on_time[-1:]
        else:
            chosen = slots[-1:]
        for slot in chosen:
            s = await self._fire_slot(uow, s, slot)
            if not s.enabled:
                break
        await self._save(conn, s, next_fire_at=cron.next_after(max(now, slots[-1])))

    async def _fire_slot(self, uow: UnitOfWork, s: ScheduleRow, slot: datetime) -> ScheduleRow:
        """Start the run of one slot (or record why not); the schedule as it is after."""
        conn = uow.conn
        previous = s.last_execution_id
        if (
            previous
            and s.overlap != "allow"
            and await ex_store.execution_active(
                conn, execution_id=previous, active=ACTIVE_STATUS_VALUES
            )
        ):
            if s.overlap == "skip":
                await schedule_store.schedule_fire_insert(
                    conn,
                    name=s.name,
                    slot=slot,
                    outcome="skipped",
                    execution_id=None,
                    now=self.clock.db_now(),
                )
                log.info("schedule %s: slot %s skipped, %s still runs", s.name, slot, previous)
                return s
            await self._cancel(uow, previous, s.name)
        definition = await self._latest(conn, s.workflow_name)
        if definition is None:
            claimed = await schedule_store.schedule_fire_insert(
                conn,
                name=s.name,
                slot=slot,
                outcome="failed",
                execution_id=None,
                now=self.clock.db_now(),
            )
            if not claimed:
                return s
            return self._failed(
                s, f"workflow {s.workflow_name!r} is not registered: start a worker that has it"
            )
        execution_id = new_execution_id()
        claimed = await schedule_store.schedule_fire_insert(
            conn, name=s.name, slot=slot, outcome="started", execution_id=execution_id,
            now=self.clock.db_now(),
        )  # fmt: skip
        if not claimed:  # fired already: another replica, or before a restart
            return s
        await self._start(uow, s, definition, execution_id, s.input_json, slot)
        return dataclasses.replace(
            s,
            last_fire_at=slot,
            last_execution_id=execution_id,
            consecutive_failures=0,
            last_error=None,
        )

    def _failed(self, s: ScheduleRow, error: str) -> ScheduleRow:
        failures = s.consecutive_failures + 1
        limit = s.max_failures or 5
        log.warning("schedule %s could not start a run (%d in a row): %s", s.name, failures, error)
        if failures >= limit:
            return dataclasses.replace(
                s,
                consecutive_failures=failures,
                last_error=error,
                enabled=False,
                disabled_reason=f"disabled after {failures} failed starts in a row; last: {error}",
            )
        return dataclasses.replace(s, consecutive_failures=failures, last_error=error)

    async def _cancel(self, uow: UnitOfWork, execution_id: str, schedule: str) -> None:
        error = StepError(
            "Cancelled", f"cancelled by schedule {schedule!r}: its next slot started"
        ).to_json()
        await uow.applier.finish(
            [FinishExecution(execution_id, ExecutionStatus.CANCELLED, error_json=error)]
        )

    async def _latest(self, conn: Conn, workflow_name: str) -> Definition | None:
        version = await wf_store.workflow_latest_get(conn, name=workflow_name)
        return await self.definitions.get(version) if version else None

    async def _start(
        self,
        uow: UnitOfWork,
        s: ScheduleRow,
        definition: Definition,
        execution_id: str,
        input_json: str,
        slot: datetime,
    ) -> None:
        new = new_execution(
            definition,
            execution_id=execution_id,
            queue=s.queue,
            priority=s.priority,
            input_json=input_json,
            schedule_name=s.name,
            schedule_slot=slot,
        )
        await insert_scheduled(uow, new)

    async def _save(self, conn: Conn, s: ScheduleRow, **changes: Any) -> ScheduleRow:
        return await schedule_store.schedule_save(
            conn,
            dataclasses.replace(s, **changes),
            now=self.clock.db_now(),
        )

    # -- the API's writes ------------------------------------------------------------------

    async def create(self, s: ScheduleRow) -> ScheduleRow:
        """Create a schedule; ALREADY_EXISTS, NOT_FOUND (workflow) or INVALID_ARGUMENT."""
        cron = parse_cron(s.cron, s.timezone)
        async with self.ctx.unit() as uow:
            conn = uow.conn
            if await wf_store.workflow_latest_get(conn, name=s.workflow_name) is None:
                raise NotFoundError(
                    f"workflow {s.workflow_name!r} is not registered: start a worker whose "
                    "module defines it, then create the schedule"
                )
            row = dataclasses.replace(s, next_fire_at=cron.next_after(self.clock.now()))
            created = await schedule_store.schedule_insert(conn, row, now=self.clock.db_now())
        if created is None:
            raise AlreadyExistsError(f"a schedule named {s.name!r} exists already")
        return created

    async def update(self, name: str, changes: dict[str, Any]) -> ScheduleRow:
        """Change some settings; the next slot is recomputed from now."""
        async with self.ctx.unit() as uow:
            conn = uow.conn
            current = await self._locked(conn, name)
            row = dataclasses.replace(current, **changes)
            if (
                "workflow_name" in changes
                and await wf_store.workflow_latest_get(conn, name=row.workflow_name) is None
            ):
                raise NotFoundError(f"workflow {row.workflow_name!r} is not registered")
            cron = parse_cron(row.cron, row.timezone)
            if row.enabled and not current.enabled:
                row = dataclasses.replace(
                    row, disabled_reason=None, consecutive_failures=0, last_error=None
                )
            row = dataclasses.replace(row, next_fire_at=cron.next_after(self.clock.now()))
            return await schedule_store.schedule_save(conn, row, now=self.clock.db_now())

    async def delete(self, name: str) -> None:
        """Delete a schedule; NOT_FOUND when there is none."""
        async with self.ctx.unit() as uow:
            if not await schedule_store.schedule_delete(uow.conn, name=name):
                raise NotFoundError(f"schedule {name!r} does not exist")

    async def trigger(self, name: str, input_json: str | None) -> str:
        """Start one run now (not a slot: the schedule's slots are unchanged)."""
        async with self.ctx.unit() as uow:
            s = await self._locked(uow.conn, name)
            definition = await self._latest(uow.conn, s.workflow_name)
            if definition is None:
                raise NotFoundError(f"workflow {s.workflow_name!r} is not registered")
            execution_id = new_execution_id()
            await self._start(
                uow,
                s,
                definition,
                execution_id,
                input_json if input_json is not None else s.input_json,
                self.clock.now(),
            )
        return execution_id

    async def _locked(self, conn: Conn, name: str) -> ScheduleRow:
        row = await schedule_store.schedule_lock(conn, name=name)
        if row is None:
            raise NotFoundError(f"schedule {name!r} does not exist")
        return row

    async def declare(self, conn: Conn, definition: Definition) -> None:
        """Make the stored schedules of ``definition``'s workflow match its code."""
        wanted = {d.name: d for d in definition.proto.schedules}
        for old in await schedule_store.schedule_declared_names(
            conn, workflow_name=definition.name
        ):
            if old not in wanted:
                await schedule_store.schedule_delete(conn, name=old)
        for d in wanted.values():
            cron = parse_cron(d.cron, d.timezone, what=f"schedule {d.name!r}")
            row = declared_row(definition.name, d, cron.next_after(self.clock.now()))
            existing = await schedule_store.schedule_lock(conn, name=d.name)
            if existing is None:
                await schedule_store.schedule_insert(conn, row, now=self.clock.db_now())
            elif existing.declared_by not in (None, definition.name):
                raise AlreadyExistsError(
                    f"schedule {d.name!r} is declared by workflow {existing.declared_by!r}"
                )
            else:
                keep: dict[str, Any] = {
                    "last_fire_at": existing.last_fire_at,
                    "last_execution_id": existing.last_execution_id,
                    "consecutive_failures": existing.consecutive_failures,
                    "last_error": existing.last_error,
                    "disabled_reason": existing.disabled_reason if not row.enabled else None,
                }
                if (existing.cron, existing.timezone) == (row.cron, row.timezone):
                    keep["next_fire_at"] = existing.next_fire_at
                await schedule_store.schedule_save(
                    conn,
                    dataclasses.replace(row, **keep),
                    now=self.clock.db_now(),
                )


def declared_row(
    workflow: str, d: definition_pb2.DeclaredSchedule, next_fire_at: datetime
) -> ScheduleRow:
    """The schedule row a DeclaredSchedule message stands for."""
    return ScheduleRow(
        name=d.name,
        workflow_name=workflow,
        cron=d.cron,
        timezone=d.timezone,
        input_json=d.input_json or "null",
        queue=d.queue or None,
        priority=d.priority,
        enabled=d.enabled,
        catch_up=catch_up_from_proto(d.catch_up).value,
        catch_up_limit=d.catch_up_limit or 10,
        overlap=overlap_from_proto(d.overlap).value,
        max_failures=5,
        next_fire_at=next_fire_at,
        last_fire_at=None,
        last_execution_id=None,
        consecutive_failures=0,
        last_error=None,
        disabled_reason=None,
        declared_by=workflow,
    )
