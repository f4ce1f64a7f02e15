"""The engine's unit of work: NOTIFY inside the transaction, wake-ups only once committed."""

from __future__ import annotations

import asyncpg
import pytest

from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from durable_server.engine.context import EngineContext, Hooks
from tests.helpers.wait import wait_until


class Boom(Exception):
    pass


def _context(orch: Orchestrator, clock: ManualClock, heard: list[object]) -> EngineContext:
    return EngineContext(
        orch.engine.db,
        clock,
        orch.settings,
        orch.engine.ctx.definitions,
        hooks=Hooks(
            on_ready=lambda queues: heard.append(("ready", list(queues))),
            on_timer=lambda: heard.append("timer"),
        ),
    )


async def test_a_committed_unit_notifies_its_ready_queues_then_wakes_this_process(
    orch: Orchestrator, manual_clock: ManualClock, database_url: str
) -> None:
    heard: list[object] = []
    notified: list[str] = []
    ctx = _context(orch, manual_clock, heard)
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(ctx.notify_channel, lambda *args: notified.append(args[-1]))
        async with ctx.unit() as uow:
            uow.ready(["b", "a"])
            uow.ready(["c"], notified=True)  # a statement of the unit sent its NOTIFY
            uow.wake_timers()
            assert heard == []  # nothing before the commit

        async def both_heard() -> bool:
            return sorted(notified) == ["a", "b"]

        await wait_until(both_heard)
    finally:
        await listener.close()
    assert heard == ["timer", ("ready", ["a", "b", "c"])]


async def test_a_unit_rolled_back_notifies_and_wakes_nothing(
    orch: Orchestrator, manual_clock: ManualClock, database_url: str
) -> None:
    heard: list[object] = []
    notified: list[str] = []
    ctx = _context(orch, manual_clock, heard)
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(ctx.notify_channel, lambda *args: notified.append(args[-1]))

        async def fails() -> None:
            async with ctx.unit() as uow:
                uow.ready(["a"])
                uow.wake_timers()
                raise Boom

        with pytest.raises(Boom):
            await fails()
        # A NOTIFY sent after the rolled-back one is heard first if that one was sent.
        async with ctx.unit() as uow:
            uow.ready(["after"])

        async def after_heard() -> bool:
            return "after" in notified

        await wait_until(after_heard)
    finally:
        await listener.close()
    assert notified == ["after"]
    assert heard == [("ready", ["after"])]
