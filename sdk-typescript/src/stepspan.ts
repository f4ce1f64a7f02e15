/**
 * The span of one step attempt, a child of its execution's trace (the task's
 * `traceparent`), as the Python worker makes it: named `durable.step <step>`, kind
 * CONSUMER, with the messaging attributes where they fit (a task is a message processed
 * from a queue) and `durable.*` ones; `durable.outcome` says how the attempt ended, and a
 * failure or a timeout sets the error status.
 *
 * Spans go to the tracer provider given to the Worker (`tracerProvider`), else to the
 * global one: without an OpenTelemetry SDK registered, they cost next to nothing.
 */
import type { Context, Span, Tracer, TracerProvider } from "@opentelemetry/api";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from "@opentelemetry/api";
import { TaskKind } from "./gen/durable/v1/common_pb.js";
import type { Task } from "./gen/durable/v1/worker_service_pb.js";
import type { Report } from "./outcome.js";

/** The instrumentation name of the worker's tracer (as the Python SDK's). */
export const INSTRUMENTATION = "durable";

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

const KINDS: Record<number, string> = {
  [TaskKind.STEP]: "step",
  [TaskKind.ROUTE]: "route",
  [TaskKind.INTO]: "into",
  [TaskKind.COMPENSATION]: "compensation",
};

/** The tracer the worker makes its spans with. */
export function durableTracer(provider?: TracerProvider): Tracer {
  return (provider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION);
}

/** A context whose (remote) parent span is `traceparent`'s; the root context when it is empty or malformed. */
export function contextFromTraceparent(traceparent: string): Context {
  const m = TRACEPARENT.exec(traceparent.trim().toLowerCase());
  if (m === null || m[1] === "ff" || (m[1] === "00" && m[5] !== undefined)) return ROOT_CONTEXT;
  const spanContext = {
    traceId: m[2] as string,
    spanId: m[3] as string,
    traceFlags: parseInt(m[4] as string, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!trace.isSpanContextValid(spanContext)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/** Start the span of running `task` (the caller ends it). */
export function startAttemptSpan(tracer: Tracer, task: Task, workerId: string): Span {
  return tracer.startSpan(
    `durable.step ${task.stepName}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        "messaging.system": "durable",
        "messaging.operation.type": "process",
        "messaging.destination.name": task.workflowName,
        "messaging.message.id": String(task.taskId),
        "durable.execution_id": task.executionId,
        "durable.workflow": task.workflowName,
        "durable.step": task.stepName,
        "durable.task_kind": KINDS[task.kind] ?? "step",
        "durable.sequence": task.sequence,
        "durable.attempt": task.attempt,
        "durable.lane": task.lanePath,
        "durable.worker_id": workerId,
      },
    },
    contextFromTraceparent(task.traceparent),
  );
}

/** Mark the span with what the attempt reported. */
export function recordOutcome(span: Span, report: Report): void {
  if (report.$typeName === "durable.v1.TaskCompletion") {
    span.setAttribute("durable.outcome", "completed");
  } else if (report.$typeName === "durable.v1.TaskSuspension") {
    span.setAttribute("durable.outcome", "suspended");
  } else {
    span.setAttribute("durable.outcome", report.timedOut ? "timed_out" : "failed");
    span.setAttribute("error.type", report.error?.type ?? "");
    span.setStatus({ code: SpanStatusCode.ERROR, message: (report.error?.message ?? "").slice(0, 200) });
  }
}

/** Mark the span of an attempt whose lease was lost or given back (nothing is reported). */
export function recordAbandoned(span: Span): void {
  span.setAttribute("durable.outcome", "abandoned");
}
