"""A step body that is really asynchronous: it gives the event loop a turn, as I/O would."""

from __future__ import annotations

import asyncio


async def yield_to_loop() -> None:
    """Let other tasks run once (the stand-in for an ``await`` on I/O); waits for nothing."""
    await asyncio.sleep(0)
