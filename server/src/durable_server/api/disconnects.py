"""A client that goes away is not an error: keep expected disconnects out of the error log.

gRPC's asyncio server logs a cancelled call at DEBUG, but when a call's last batch (a
response, or the final status) fails because its client has already gone (it cancelled
a stream, closed its connection, or its deadline passed) and gRPC notices the failure
before the cancellation, it logs an ERROR with a traceback instead. Any client can cause
that once per call, reflection streams (grpcurl, buf curl) most often, so a client could
fill the log. :class:`ClientGoneFilter` logs those records at DEBUG, without the traceback.
"""

from __future__ import annotations

import logging

__all__ = ["GRPC_SERVER_LOGGER", "ClientGoneFilter", "quiet_client_disconnects"]

GRPC_SERVER_LOGGER = "grpc._cython.cygrpc"
"""The logger of gRPC's asyncio server."""

# What gRPC's asyncio server (aio/server.pyx.pxi) logs when a call's batch fails after its
# client has gone, before it has seen the cancellation.
_CLIENT_GONE = (
    "ExecuteBatchError raised in core by servicer method",
    "Failed sending error status from server",
)


class ClientGoneFilter(logging.Filter):
    """Turns gRPC's "batch failed" errors of calls whose client went away into DEBUG records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep other records as they are; demote these (dropped unless DEBUG is on)."""
        if record.levelno < logging.ERROR or not str(record.msg).startswith(_CLIENT_GONE):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        record.exc_info, record.exc_text = None, None
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_client_disconnects() -> None:
    """Install :class:`ClientGoneFilter` on gRPC's server logger (once per process)."""
    logger = logging.getLogger(GRPC_SERVER_LOGGER)
    if not any(isinstance(f, ClientGoneFilter) for f in logger.filters):
        logger.addFilter(ClientGoneFilter())
