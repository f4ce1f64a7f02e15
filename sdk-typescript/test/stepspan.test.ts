/**
 * The worker's span per attempt (`durable.step <name>`), a child of the task's
 * traceparent, against a real orchestrator. The spans go to a tracer provider that keeps
 * them in memory (test/otel.ts: the OpenTelemetry API only, no SDK).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { SpanKind, SpanStatusCode, TraceFlags, context, trace } from "@opentelemetry/api";
import { Client } from "../src/client.js";
import { NonRetryableError } from "../src/errors.js";
import { contextFromTraceparent } from "../src/stepspan.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, memoryLogger, unique } from "./helpers.js";
import { AsyncLocalContextManager, MemoryTracerProvider } from "./otel.js";

const TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "10f067aa0ba902b7";

let client: Client;
before(() => {
  assert.ok(context.setGlobalContextManager(new AsyncLocalContextManager()));
  client = new Client(address());
});
after(() => {
  client.close();
  context.disable();
});

function withCallerSpan<T>(fn: () => Promise<T>): Promise<T> {
  const span = trace.wrapSpanContext({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED });
  return context.with(trace.setSpan(context.active(), span), fn);
}

test("each attempt has a span, a child of the execution's trace, with its outcome; a failure has the error status", async () => {
  const provider = new MemoryTracerProvider();
  let activeInStep: string | undefined;
  const wf = new Workflow(unique("spans"), { queue: unique("q") })
    .step("flaky", (n: number, ctx) => {
      activeInStep = trace.getActiveSpan()?.spanContext().traceId;
      if (ctx.attempt === 1) throw new Error("first try fails");
      return n + 1;
    }, { retry: { maxAttempts: 2, initialDelayMs: 10, jitter: 0 } })
    .step("refuse", () => {
      throw new NonRetryableError("no");
    });
  const worker = new Worker(address(), [wf], { logger: memoryLogger(), tracerProvider: provider });
  await worker.start();
  try {
    const { executionId } = await withCallerSpan(() => client.start(wf.name, 1));
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "failed");
    assert.deepEqual(provider.names.slice(0, 1), ["durable"]);
    const spans = provider.spans.map((s) => ({
      name: s.name,
      attempt: s.attributes["durable.attempt"],
      outcome: s.attributes["durable.outcome"],
      status: s.status.code,
      ended: s.ended,
    }));
    assert.deepEqual(spans, [
      { name: "durable.step flaky", attempt: 1, outcome: "failed", status: SpanStatusCode.ERROR, ended: true },
      { name: "durable.step flaky", attempt: 2, outcome: "completed", status: SpanStatusCode.UNSET, ended: true },
      { name: "durable.step refuse", attempt: 1, outcome: "failed", status: SpanStatusCode.ERROR, ended: true },
    ]);
    for (const span of provider.spans) {
      assert.equal(span.kind, SpanKind.CONSUMER);
      assert.equal(span.parent?.traceId, TRACE_ID, "the attempt joins the caller's trace");
      assert.equal(span.parent?.isRemote, true);
      assert.equal(span.attributes["durable.execution_id"], executionId);
      assert.equal(span.attributes["durable.worker_id"], worker.workerId);
      assert.equal(span.attributes["durable.lane"], "");
      assert.equal(span.attributes["durable.workflow"], wf.name);
      assert.equal(span.attributes["durable.task_kind"], "step");
    }
    const refused = provider.spans[2];
    assert.equal(refused?.attributes["error.type"], "NonRetryableError");
    assert.equal(refused?.status.message, "no");
    assert.equal(activeInStep, TRACE_ID, "the attempt's span is active while the step runs");
  } finally {
    await worker.drain();
  }
});

test("contextFromTraceparent reads the W3C form and ignores what is not", () => {
  const parent = trace.getSpanContext(contextFromTraceparent(`00-${TRACE_ID}-${SPAN_ID}-01`));
  assert.deepEqual(parent, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: true });
  for (const bad of ["", "junk", `00-${"0".repeat(32)}-${SPAN_ID}-01`, `ff-${TRACE_ID}-${SPAN_ID}-01`, `00-${TRACE_ID}-${SPAN_ID}-01-extra`]) {
    assert.equal(trace.getSpanContext(contextFromTraceparent(bad)), undefined, bad);
  }
});
