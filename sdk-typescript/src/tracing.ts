/**
 * W3C trace context from the caller: the active OpenTelemetry span travels with each call
 * (`traceparent`, and `tracestate` when there is one), so the orchestrator's span, and
 * through it every step's span on any worker, joins the caller's trace.
 *
 * It reads the active context through the OpenTelemetry API and writes the W3C headers
 * itself, whatever propagator the application registered (the orchestrator reads W3C).
 * Without a registered context manager or an active span, nothing is added.
 */
import type { Interceptor } from "@connectrpc/connect";
import type { SpanContext } from "@opentelemetry/api";
import { context, isSpanContextValid, trace } from "@opentelemetry/api";

/** The `traceparent` header value of a span context ("" when it is not valid). */
export function traceparentOf(span: SpanContext): string {
  if (!isSpanContextValid(span)) return "";
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${span.traceId}-${span.spanId}-${flags}`;
}

/** The W3C headers of the active span: `traceparent` and maybe `tracestate`; empty without one. */
export function traceHeadersOfActiveContext(): [string, string][] {
  const span = trace.getSpanContext(context.active());
  if (span === undefined) return [];
  const traceparent = traceparentOf(span);
  if (traceparent === "") return [];
  const headers: [string, string][] = [["traceparent", traceparent]];
  const tracestate = span.traceState?.serialize() ?? "";
  if (tracestate !== "") headers.push(["tracestate", tracestate]);
  return headers;
}

/** An interceptor that sends the caller's active trace context with every call. */
export const traceContextInterceptor: Interceptor = (next) => async (req) => {
  for (const [name, value] of traceHeadersOfActiveContext()) req.header.set(name, value);
  return next(req);
};
