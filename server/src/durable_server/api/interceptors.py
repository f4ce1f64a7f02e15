"""The one place that turns errors into gRPC statuses."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from durable_server.errors import DurableError

__all__ = ["ErrorInterceptor"]

log = logging.getLogger(__name__)


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
            try:
                return await inner(request, context)
            except DurableError as exc:
                if exc.trailers:
                    context.set_trailing_metadata(exc.trailers)
                await context.abort(exc.code, exc.message)
            except (asyncio.CancelledError, grpc.aio.AbortError):
                raise
            except Exception:
                incident = uuid.uuid4().hex[:12]
                log.exception("unexpected error in %s (incident %s)", method, incident)
                await context.abort(
                    grpc.StatusCode.INTERNAL,
                    f"internal error (incident {incident}); the orchestrator's log has details",
                )

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
