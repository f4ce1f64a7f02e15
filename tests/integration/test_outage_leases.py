"""Time the database was out of reach does not count against a lease (manual clock)."""

from __future__ import annotations

from datetime import timedelta

import grpc

from durable import Workflow
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers.raw import RawClient
from tests.integration.test_leases import at, reclaim, rpc_error, task_row

plain = Workflow("plain")


@plain.step
def work(data: object) -> object:
    return data


async def test_after_an_outage_every_lease_gets_a_full_length_before_any_reclaim(
    orch: Orchestrator, channel: grpc.aio.Channel, manual_clock: ManualClock, database_url: str
) -> None:
    raw = RawClient(channel)
    await raw.register(plain)
    await raw.start("plain", '"a"')
    await raw.start("plain", '"b"')
    first, second = await raw.poll(max_tasks=2)
    assert at(first.lease_expires_at) == manual_clock.now() + timedelta(seconds=30)

    # The database goes out of reach for longer than the lease; the workers' steps finish
    # meanwhile, but they can neither heartbeat nor report.
    reachability = orch.engine.db.reachability
    reachability.failed(ConnectionRefusedError("connection refused"))
    manual_clock.advance(timedelta(seconds=45))
    reachability.reached()

    # The lease loop's first pass after the outage reclaims nothing: every lease runs a
    # full 30 s from now, so the workers' reports still count.
    await orch.reclaimer.tick()
    for task in (first, second):
        row = await task_row(database_url, task.task_id)
        assert row is not None
        assert (row["status"], row["lease_token"], row["losses"]) == (
            "leased",
            task.lease_token,
            0,
        )
        assert row["lease_expires_at"] == manual_clock.now() + timedelta(seconds=30)
    await raw.complete(first, '"done"')

    # Once: a worker silent for a whole lease after the outage loses its task as usual.
    manual_clock.advance(timedelta(seconds=30))
    await reclaim(orch)
    row = await task_row(database_url, second.task_id)
    assert row is not None
    assert (row["status"], row["losses"]) == ("ready", 1)
    err = await rpc_error(raw.complete(second, '"late"'))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
