"""The interceptor that lets a call through only with a token whose role allows it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from durable_server.api.interceptors import refusal_handler, unexpected
from durable_server.auth.access import acting_as
from durable_server.auth.permissions import allowed_roles
from durable_server.auth.verifier import TokenVerifier
from durable_server.errors import DurableError, PermissionDeniedError

__all__ = ["AuthInterceptor"]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Verify each call's bearer token, then check its role against the method's.

    The check needs only the call's metadata, so it runs before gRPC reads the request: a
    refusal is answered UNAUTHENTICATED or PERMISSION_DENIED without receiving the
    message. A refused call never reaches its servicer, so it changes nothing.
    """

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Check the token from the call's metadata before its request is read.

        A refused call gets a handler that answers at once and never reads the request
        (:func:`~durable_server.api.interceptors.refusal_handler`): a caller without a
        valid token cannot make the orchestrator receive, hold or parse its message.
        """
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        roles = allowed_roles(method)
        if handler is None or roles is None:
            return handler  # unknown method (gRPC says UNIMPLEMENTED), or an open one
        if handler.unary_unary is None:
            raise RuntimeError(f"{method}: only unary methods can be guarded")
        try:
            caller = await self.verifier.verify(handler_call_details.invocation_metadata)
            if caller.role not in roles:
                raise PermissionDeniedError(
                    f"a {caller.role.value} token may not call {method.lstrip('/')}"
                )
        except DurableError as exc:
            return refusal_handler(exc)
        except Exception:
            return refusal_handler(unexpected(method))
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            with acting_as(caller):
                return await inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
