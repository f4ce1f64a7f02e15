/**
 * The caller's trace context travels with each call: a fake WorkflowService on loopback
 * records the headers the client sends. The active context comes from a tiny context
 * manager on AsyncLocalStorage (what an OpenTelemetry SDK registers), and the span from
 * the API alone, so no SDK is needed.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { TraceFlags, context, createTraceState, trace } from "@opentelemetry/api";
import { Client } from "../src/client.js";
import { NotFoundError } from "../src/errors.js";
import { ExecutionStatus } from "../src/gen/durable/v1/common_pb.js";
import { ExecutionSchema, WorkflowService } from "../src/gen/durable/v1/workflow_service_pb.js";
import { traceparentOf } from "../src/tracing.js";
import { AsyncLocalContextManager } from "./otel.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "00f067aa0ba902b7";

const seen: { traceparent: string | null; tracestate: string | null; method: string }[] = [];
let server: http2.Http2Server;
let client: Client;

before(async () => {
  assert.ok(context.setGlobalContextManager(new AsyncLocalContextManager()));
  server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        router.service(WorkflowService, {
          getExecution(req, ctx) {
            seen.push({
              traceparent: ctx.requestHeader.get("traceparent"),
              tracestate: ctx.requestHeader.get("tracestate"),
              method: "getExecution",
            });
            if (req.executionId === "missing") throw new ConnectError("no such execution", Code.NotFound);
            return {
              execution: create(ExecutionSchema, {
                id: req.executionId,
                workflowName: "fake",
                status: ExecutionStatus.COMPLETED,
              }),
            };
          },
        });
      },
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  client = new Client(`127.0.0.1:${(server.address() as AddressInfo).port}`);
});

after(async () => {
  client.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  context.disable();
});

function withSpan<T>(fn: () => Promise<T>, traceState = ""): Promise<T> {
  const span = trace.wrapSpanContext({
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    traceFlags: TraceFlags.SAMPLED,
    ...(traceState ? { traceState: createTraceState(traceState) } : {}),
  });
  return context.with(trace.setSpan(context.active(), span), fn);
}

test("a call made while a span is active carries its traceparent", async () => {
  seen.length = 0;
  const execution = await withSpan(() => client.get("e-1"));
  assert.equal(execution.id, "e-1");
  assert.deepEqual(seen, [
    { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, tracestate: null, method: "getExecution" },
  ]);
});

test("tracestate travels too, and a failed call carries the context as well", async () => {
  seen.length = 0;
  await assert.rejects(withSpan(() => client.get("missing"), "vendor=abc"), NotFoundError);
  assert.equal(seen[0]?.traceparent, `00-${TRACE_ID}-${SPAN_ID}-01`);
  assert.equal(seen[0]?.tracestate, "vendor=abc");
});

test("without an active span no trace header is sent", async () => {
  seen.length = 0;
  await client.get("e-2");
  assert.deepEqual(seen, [{ traceparent: null, tracestate: null, method: "getExecution" }]);
});

test("traceparentOf writes the W3C form, and nothing for an invalid span context", () => {
  assert.equal(
    traceparentOf({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.NONE }),
    `00-${TRACE_ID}-${SPAN_ID}-00`,
  );
  assert.equal(traceparentOf({ traceId: "0".repeat(32), spanId: SPAN_ID, traceFlags: 1 }), "");
});
