"""What the orchestrator and the worker share with the SDK: their one door into its internals.

Not part of the public API: these names may change with any release of the three packages,
which are released together. The server and the worker import from the SDK only through this
module, the public ``durable`` package (``durable``, ``durable.errors``, ``durable.secrets``)
and the generated protocol (``durable.v1``); ``tests/unit/test_import_rules.py`` holds them to
it and pins the list below, so a new shared name is a deliberate change here.

What is shared, and why:

- The definition of a workflow as the orchestrator stores it: :func:`to_definition` and its
  content hash (:func:`definition_hash`), and the nodes the worker walks (:class:`Parallel`,
  :class:`Foreach`).
- The walk the worker does ahead of the orchestrator: :class:`Evaluation`, :func:`evaluate`,
  :func:`needs_evaluation`.
- What a running step asks for (waits, children): :class:`StepSuspended`, :class:`Wait`,
  :func:`suspension_of`, :func:`wait_kind`, :func:`recorded_children`.
- Retries: the policy meaning no retry (:data:`NO_RETRY`) and the backoff (:func:`retry_delay`).
- User data: JSON in and out (:func:`dumps_json`, :func:`loads_json`,
  :class:`JSONSerializationError`) and the JSON profile every party accepts (:func:`json_problem`).
- Protobuf enums both ways: task kinds, schedule catch-up and overlap policies.
- Connections: channel options, TLS, bearer tokens and the connection settings read from the
  environment.
- Tracing: the tracer, W3C trace context in and out of gRPC metadata, and the exporter set-up.
"""

from __future__ import annotations

from durable._channel import (
    CHANNEL_OPTIONS,
    BearerTokenInterceptor,
    aio_channel,
    check_token,
    connection_from_env,
    resolve_tls,
)
from durable._context import StepSuspended, Wait, recorded_children, suspension_of, wait_kind
from durable._converters import (
    catch_up_from_proto,
    catch_up_to_proto,
    overlap_from_proto,
    overlap_to_proto,
    task_kind_from_proto,
)
from durable._definition import definition_hash, to_definition
from durable._json_profile import problem as json_problem
from durable._nodes import Foreach, Parallel
from durable._retry import NO_RETRY, retry_delay
from durable._serde import JSONSerializationError
from durable._serde import dumps as dumps_json
from durable._serde import loads as loads_json
from durable._tracing import (
    configure_from_env,
    context_from_metadata,
    context_from_traceparent,
    traceparent_of,
    tracer,
)
from durable._walk import Evaluation, evaluate, needs_evaluation

__all__ = [
    "CHANNEL_OPTIONS",
    "NO_RETRY",
    "BearerTokenInterceptor",
    "Evaluation",
    "Foreach",
    "JSONSerializationError",
    "Parallel",
    "StepSuspended",
    "Wait",
    "aio_channel",
    "catch_up_from_proto",
    "catch_up_to_proto",
    "check_token",
    "configure_from_env",
    "connection_from_env",
    "context_from_metadata",
    "context_from_traceparent",
    "definition_hash",
    "dumps_json",
    "evaluate",
    "json_problem",
    "loads_json",
    "needs_evaluation",
    "overlap_from_proto",
    "overlap_to_proto",
    "recorded_children",
    "resolve_tls",
    "retry_delay",
    "suspension_of",
    "task_kind_from_proto",
    "to_definition",
    "traceparent_of",
    "tracer",
    "wait_kind",
]
