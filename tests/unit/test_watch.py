"""FinishWatch: parked waits woken by finishes, NOTIFY payloads, reconnects and shutdown."""

from __future__ import annotations

from durable_server.watch import FinishWatch


async def test_a_finish_wakes_only_the_waits_for_that_execution() -> None:
    watch = FinishWatch()
    with watch.watching("a") as a1, watch.watching("a") as a2, watch.watching("b") as b:
        assert len(watch) == 3
        watch.finished(["a", "unknown"])
        assert (a1.is_set(), a2.is_set(), b.is_set()) == (True, True, False)
        watch.notified("x,b,y")  # a NOTIFY payload: comma-separated ids
        assert b.is_set()
    assert len(watch) == 0  # leaving the block forgets the wait


async def test_a_reconnect_wakes_every_wait_to_read_again() -> None:
    watch = FinishWatch()
    with watch.watching("a") as a, watch.watching("b") as b:
        watch.wake_all()
        assert a.is_set()
        assert b.is_set()
    assert not watch.closed


async def test_closing_wakes_every_wait_and_any_later_one_at_once() -> None:
    watch = FinishWatch()
    with watch.watching("a") as a:
        watch.close()
        assert a.is_set()
        assert watch.closed
    with watch.watching("b") as late:
        assert late.is_set()
