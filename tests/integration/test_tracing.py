"""One trace per execution: the caller's span, the orchestrator's, every attempt's."""

from __future__ import annotations

from datetime import timedelta

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from durable import Client, RetryPolicy, StepContext, Workflow
from durable._models import ExecutionStatus
from durable_worker import Worker
from tests.helpers.orchestrator import running_orchestrator

traced = Workflow("traced")


@traced.step
def prepare(data: dict[str, int]) -> dict[str, int]:
    return {"n": data["n"] + 1}


@traced.step(retry=RetryPolicy(max_attempts=2, initial_delay=timedelta(0), jitter=0.0))
def flaky(data: dict[str, int], ctx: StepContext) -> dict[str, int]:
    if ctx.attempt == 1:
        raise ConnectionError("the service hiccuped")
    return {"n": data["n"] * 10}


@traced.step
def finish(data: dict[str, int]) -> int:
    return data["n"]


async def test_one_trace_links_the_caller_the_server_and_every_attempt(
    database_url: str,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with (
        running_orchestrator(database_url, tracer_provider=provider) as orch,
        Worker(orch.address, [traced], tracer_provider=provider, poll_wait=timedelta(seconds=1)),
        Client(orch.address) as client,
    ):
        with provider.get_tracer("the-caller").start_as_current_span("checkout") as caller:
            execution_id = await client.start(traced, {"n": 1})
        done = await client.wait(execution_id, timeout=30)
    assert done.status == ExecutionStatus.COMPLETED
    assert done.result == 20

    spans = exporter.get_finished_spans()
    trace_id = caller.get_span_context().trace_id
    assert {s.context.trace_id for s in spans} == {trace_id}  # one trace

    [server] = [s for s in spans if s.name == "durable.v1.WorkflowService/StartWorkflow"]
    assert server.kind == SpanKind.SERVER
    assert _parent(server) == caller.get_span_context().span_id
    assert server.attributes is not None
    assert server.attributes["durable.execution_id"] == execution_id

    attempts = sorted(
        (s for s in spans if s.name.startswith("durable.step ")),
        key=lambda s: (s.attributes or {}).get("durable.sequence", 0),
    )
    assert [
        (s.name, _attr(s, "durable.attempt"), _attr(s, "durable.outcome")) for s in attempts
    ] == [
        ("durable.step prepare", 1, "completed"),
        ("durable.step flaky", 1, "failed"),
        ("durable.step flaky", 2, "completed"),
        ("durable.step finish", 1, "completed"),
    ]
    assert all(_parent(s) == server.context.span_id for s in attempts)
    assert all(s.kind == SpanKind.CONSUMER for s in attempts)
    failed = attempts[1]
    assert failed.status.status_code == StatusCode.ERROR
    assert _attr(failed, "error.type") == "ConnectionError"
    assert {_attr(s, "durable.execution_id") for s in attempts} == {execution_id}


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


def _attr(span: ReadableSpan, key: str) -> object:
    return (span.attributes or {}).get(key)
