"""The engine: one object for the API layer, over the parts that write.

Every write goes through one unit of work (``context.EngineContext.unit``): it loads rows,
decides (``transitions``) and applies the effects (``apply``) in one transaction. The
parts, by what they do:

- ``starts``: StartWorkflow and CancelExecution;
- ``leases``: claims (PollTasks), heartbeats, releases;
- ``reports``: results, failures and suspensions from workers; events and inputs;
- ``timers``: reclaiming expired leases and firing due timers (the background loops).

The API servicers only validate, call one method and convert the result.
"""

from __future__ import annotations

from durable_server.engine.context import (
    ERROR_TRAILER,
    RETRIES,
    STALE_TRAILER,
    WORKER_UNKNOWN,
    EngineContext,
)
from durable_server.engine.leases import Leases
from durable_server.engine.reports import NextTasks, Reports, Suspension, TaskOutcome
from durable_server.engine.starts import StartRequest, Starts
from durable_server.engine.timers import Timers

__all__ = [
    "ERROR_TRAILER",
    "RETRIES",
    "STALE_TRAILER",
    "WORKER_UNKNOWN",
    "Engine",
    "NextTasks",
    "StartRequest",
    "Suspension",
    "TaskOutcome",
]


class Engine:
    """The execution and step state machine, applied to PostgreSQL."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.metrics = ctx.metrics
        self.starts = starts = Starts(ctx)
        self.leases = leases = Leases(ctx)
        self.reports = reports = Reports(ctx)
        self.timers = timers = Timers(ctx)
        self.presence = leases.presence
        # -- starting and cancelling
        self.start = starts.start
        self.start_many = starts.start_many
        self.cancel = starts.cancel
        # -- leases
        self.claim = leases.claim
        self.heartbeat = leases.heartbeat
        self.release = leases.release
        # -- reports, events and inputs
        self.report = reports.report
        self.suspend = reports.suspend
        self.send_event = reports.send_event
        self.provide_input = reports.provide_input
        # -- background work
        self.reclaim_expired = timers.reclaim_expired
        self.next_lease_expiry = timers.next_lease_expiry
        self.fire_timers = timers.fire_timers
        self.next_timer_due = timers.next_timer_due
