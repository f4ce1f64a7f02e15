"""TestingService: the clock of an orchestrator in test mode, moved by any SDK."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from durable.v1 import testing_service_pb2 as pb
from durable.v1 import testing_service_pb2_grpc as pb_grpc
from durable_server.api import validate
from durable_server.api.convert import set_time
from durable_server.engine.clock_control import ClockControl
from durable_server.errors import FailedPreconditionError, InvalidArgumentError

__all__ = ["TestingService"]

Context = grpc.aio.ServicerContext[Any, Any]


class TestingService(pb_grpc.TestingServiceServicer):
    """Thin servicer over :class:`ClockControl`; refuses every call on the real clock."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, control: ClockControl | None) -> None:
        self._control = control

    @property
    def control(self) -> ClockControl:
        """The clock control, or FAILED_PRECONDITION when the orchestrator runs on real time."""
        if self._control is None:
            raise FailedPreconditionError(
                "the orchestrator runs on the real clock: TestingService moves only the clock "
                "of an orchestrator started in test mode (durable server --manual-clock)"
            )
        return self._control

    async def GetTime(self, request: pb.GetTimeRequest, context: Context) -> pb.GetTimeResponse:
        """The clock's time and the next timer."""
        control = self.control
        reply = pb.GetTimeResponse()
        await _fill(reply, control, control.now())
        return reply

    async def AdvanceTime(
        self, request: pb.AdvanceTimeRequest, context: Context
    ) -> pb.AdvanceTimeResponse:
        """Move the clock forward by a duration or to a time; fire what is due."""
        control = self.control
        which = request.WhichOneof("target")
        if which == "by":
            now = await control.advance(validate.check_duration("by", request.by))
        elif which == "to":
            now = await control.advance_to(validate.check_time("to", request.to))
        else:
            raise InvalidArgumentError(
                "set by (a duration) or to (a time): where to move the clock"
            )
        reply = pb.AdvanceTimeResponse()
        await _fill(reply, control, now)
        return reply

    async def SkipToNextTimer(
        self, request: pb.SkipToNextTimerRequest, context: Context
    ) -> pb.SkipToNextTimerResponse:
        """Move the clock to the next timer and fire it; unmoved when nothing is due."""
        control = self.control
        moved = await control.skip_to_next_timer()
        reply = pb.SkipToNextTimerResponse(skipped=moved is not None)
        await _fill(reply, control, control.now() if moved is None else moved)
        return reply


async def _fill(reply: Any, control: ClockControl, now: datetime) -> None:
    set_time(reply, "now", now)
    set_time(reply, "next_timer", await control.next_due())
