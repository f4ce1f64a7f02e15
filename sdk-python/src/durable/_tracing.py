"""OpenTelemetry for Durable: W3C trace context across the caller, orchestrator and workers.

A caller's trace context travels to the orchestrator in gRPC metadata (``traceparent``);
the orchestrator's StartWorkflow span is stored with the execution and handed to every
task, so each step attempt's span on any worker joins the same trace.

Tracing costs nothing unless a tracer provider is configured: by the application (the
global OpenTelemetry provider), by passing one to ``Orchestrator``/``Worker``, or with
``DURABLE_TRACING`` for the ``durable`` and ``durable-worker`` commands:

- ``console``: print finished spans (local debugging);
- ``otlp``: export with OTLP (needs ``opentelemetry-exporter-otlp``; configured by the
  standard ``OTEL_EXPORTER_OTLP_*`` variables);
- ``none``: record spans and drop them (measures the cost of tracing itself);
- unset: no provider of its own (the global one, a no-op by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "configure_from_env",
    "context_from_metadata",
    "context_from_traceparent",
    "metadata_for_current_context",
    "traceparent_of",
    "tracer",
]

_W3C = TraceContextTextMapPropagator()
INSTRUMENTATION = "durable"


def tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """Durable's tracer from ``provider``, or from the global provider."""
    return (provider or trace.get_tracer_provider()).get_tracer(INSTRUMENTATION)


def metadata_for_current_context() -> list[tuple[str, str]]:
    """GRPC metadata carrying the current span's W3C trace context (empty without one)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return sorted(carrier.items())


def context_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context:
    """The trace context a caller sent in gRPC metadata."""
    carrier = {k.lower(): v for k, v in metadata or () if isinstance(v, str)}
    return _W3C.extract(carrier)


def traceparent_of(span: trace.Span) -> str:
    """The ``traceparent`` header value of ``span`` ("" when it is not recording)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> Context:
    """A context whose current span is the remote span ``traceparent`` names."""
    return _W3C.extract({"traceparent": traceparent} if traceparent else {})


def configure_from_env(service_name: str) -> trace.TracerProvider | None:
    """A tracer provider as ``DURABLE_TRACING`` asks for, or None (see the module doc)."""
    mode = os.environ.get("DURABLE_TRACING", "").strip().lower()
    if not mode:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if mode == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif mode == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise RuntimeError(
                "DURABLE_TRACING=otlp needs the opentelemetry-exporter-otlp package"
            ) from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif mode != "none":
        raise ValueError(f"DURABLE_TRACING must be console, otlp or none, got {mode!r}")
    return provider
