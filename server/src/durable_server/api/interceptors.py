"""The one place that turns errors into gRPC statuses."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from durable_server.errors import DurableError

__all__ = ["ErrorInterceptor", "refusal_handler", "unexpected"]

log = logging.getLogger(__name__)

# A call that arrives with less time left than this is refused with DEADLINE_EXCEEDED. gRPC
# rounds deadlines up to the millisecond, so a deadline already spent when the call was sent
# (a timeout of 0) arrives with up to about 1 ms "left".
_SPENT_SECS = 0.002


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Map DurableError to its status code and message; anything else to INTERNAL."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap unary handlers so errors become statuses."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = handler_call_details.method

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            remaining = context.time_remaining()
            if remaining is not None and remaining < _SPENT_SECS:
                # The caller has given up, or will before any work is done (its deadline was
                # spent on arrival): doing the work would change what it was told failed.
                await context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    "the call's deadline had passed when it arrived; nothing was done",
                )
            if isinstance(request, _Undecodable):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"the request is not a valid {method.lstrip('/')} request: {request.error}",
                )
            try:
                return await inner(request, context)
            except DurableError as exc:
                if exc.trailers:
                    context.set_trailing_metadata(exc.trailers)
                await context.abort(exc.code, exc.message)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception:
                error = unexpected(method)
                await context.abort(error.code, error.message)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=_lenient(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


def unexpected(method: str) -> DurableError:
    """Log the exception being handled; the INTERNAL error its caller gets instead.

    Call from an ``except`` block. The message names an incident id to find in the log,
    never the exception's text.
    """
    incident = uuid.uuid4().hex[:12]
    log.exception("unexpected error in %s (incident %s)", method, incident)
    return DurableError(f"internal error (incident {incident}); the orchestrator's log has details")


def refusal_handler(error: DurableError) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler that answers ``error``'s status without reading the request.

    gRPC receives (and the server holds) a unary request's whole message before calling
    its handler; it reads a client-streaming handler's messages only when the handler
    asks. So a call refused from its metadata alone gets this handler: the request bytes
    are never received into memory nor parsed, and the transport drops them.
    """

    async def refuse(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        if error.trailers:
            context.set_trailing_metadata(error.trailers)
        await context.abort(error.code, error.message)

    return grpc.stream_unary_rpc_method_handler(refuse)


class _Undecodable:
    """Request bytes that do not parse as the method's request message."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserialize`` that returns :class:`_Undecodable` instead of raising.

    gRPC turns an exception in a deserializer into UNKNOWN; a corrupt message or a string
    field that is not UTF-8 is the caller's mistake, INVALID_ARGUMENT.
    """
    if deserialize is None:
        return None

    def parse(body: bytes) -> Any:
        try:
            return deserialize(body)
        except Exception as exc:  # DecodeError; any parser failure is a bad request
            return _Undecodable(exc)

    return parse
