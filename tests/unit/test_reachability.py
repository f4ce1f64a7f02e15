"""The database's reachability: one warning when an outage begins, one when it ends."""

from __future__ import annotations

import logging

import pytest

from durable_server.store.reachability import Reachability


class Ticks:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.levelname} {r.getMessage()}"
        for r in caplog.records
        if r.name == "durable_server.store.reachability" and r.levelno >= logging.INFO
    ]


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Ticks()
    reach = Reachability(clock=ticks)
    caplog.set_level(logging.DEBUG)
    reach.reached()  # nothing to say while all is well
    assert reach.reachable
    assert reach.outages == 0

    begun = reach.now()
    reach.failed(ConnectionRefusedError("[Errno 111] Connect call failed"), begun)
    for _ in range(50):  # every loop, poll and health check meets it
        ticks.now += 0.1
        reach.failed(ConnectionResetError("reset"), reach.now())
    assert not reach.reachable
    assert reach.outages == 1

    ticks.now += 7.0
    reach.reached(reach.now())
    assert reach.reachable
    assert _lines(caplog) == [
        "WARNING database unreachable (ConnectionRefusedError: [Errno 111] Connect call "
        "failed); retrying until it answers",
        "WARNING database reachable again after 12.0 s",
    ]
    assert all(r.exc_info is None for r in caplog.records)


def test_contacts_begun_on_the_other_side_of_an_outage_edge_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticks = Ticks()
    reach = Reachability(clock=ticks)
    before_outage = reach.now()
    ticks.now += 1
    reach.failed(ConnectionResetError("reset"))
    ticks.now += 1
    # A statement sent before the outage got its answer just before the database went.
    reach.reached(before_outage)
    assert not reach.reachable
    during = reach.now()
    ticks.now += 1
    reach.reached(reach.now())
    assert reach.reachable
    # A connection attempt begun during the outage fails after the database is back.
    ticks.now += 0.1
    reach.failed(ConnectionRefusedError("refused"), during)
    assert reach.reachable
    assert reach.outages == 1
    # A new failure is a new outage.
    reach.failed(ConnectionResetError("reset"), reach.now())
    assert not reach.reachable
    assert reach.outages == 2
    assert sum("unreachable" in line for line in _lines(caplog)) == 2
