/** Pure parts: error mapping, definitions, JSON payloads (no orchestrator). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  AbortedError,
  AlreadyExistsError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
  fromRpcError,
} from "../src/errors.js";
import { Backoff } from "../src/gen/durable/v1/common_pb.js";
import { decodeJson, encodeJson } from "../src/json.js";
import { Workflow } from "../src/workflow.js";
import { isUnknownWorker, staleTaskIds } from "../src/worker.js";

test("gRPC status codes map to the typed errors, as in the Python SDK", () => {
  const cases: [Code, Function, string][] = [
    [Code.InvalidArgument, InvalidArgumentError, "INVALID_ARGUMENT"],
    [Code.NotFound, NotFoundError, "NOT_FOUND"],
    [Code.AlreadyExists, AlreadyExistsError, "ALREADY_EXISTS"],
    [Code.FailedPrecondition, FailedPreconditionError, "FAILED_PRECONDITION"],
    [Code.Aborted, AbortedError, "ABORTED"],
    [Code.Unavailable, UnavailableError, "UNAVAILABLE"],
    [Code.DeadlineExceeded, DeadlineExceededError, "DEADLINE_EXCEEDED"],
    [Code.Unauthenticated, UnauthenticatedError, "UNAUTHENTICATED"],
    [Code.PermissionDenied, PermissionDeniedError, "PERMISSION_DENIED"],
    [Code.Internal, InternalError, "INTERNAL"],
    [Code.ResourceExhausted, InternalError, "RESOURCE_EXHAUSTED"],
  ];
  for (const [code, cls, name] of cases) {
    const error = fromRpcError(new ConnectError("what happened", code));
    assert.ok(error instanceof cls, `${name} -> ${error.constructor.name}`);
    assert.equal(error.code, name);
    assert.equal(error.message, "what happened");
  }
});

test("the stale-lease trailer of a refused batch is read as task ids", () => {
  const metadata = new Headers({ "durable-stale-task-ids": "12,7, 9" });
  const error = fromRpcError(new ConnectError("stale", Code.FailedPrecondition, metadata));
  assert.deepEqual([...staleTaskIds(error)].sort(), [12n, 7n, 9n].sort());
  assert.equal(staleTaskIds(fromRpcError(new ConnectError("x", Code.Unavailable, metadata))).size, 0);
});

test("an unknown worker is told by the durable-error trailer, by the message only without one", () => {
  const refused = (message: string, trailers?: Record<string, string>) =>
    fromRpcError(new ConnectError(message, Code.FailedPrecondition, new Headers(trailers)));
  assert.equal(isUnknownWorker(refused("who are you", { "durable-error": "worker-unknown" })), true);
  assert.equal(isUnknownWorker(refused("unknown queue", { "durable-error": "queue-paused" })), false);
  assert.equal(isUnknownWorker(refused("worker 'w' is unknown")), true); // an older orchestrator
  assert.equal(isUnknownWorker(fromRpcError(new ConnectError("unknown", Code.NotFound))), false);
});

test("a workflow becomes a definition of sequential steps with retry and timeout", () => {
  const wf = new Workflow("orders", { queue: "q1", timeoutMs: 60_000 })
    .step("charge", () => 1, { retry: { maxAttempts: 5, backoff: "fixed", initialDelayMs: 250 }, timeoutMs: 1500 })
    .step("ship", () => 2);
  const def = wf.toDefinition();
  assert.equal(def.name, "orders");
  assert.equal(def.queue, "q1");
  assert.equal(def.timeout?.seconds, 60n);
  assert.deepEqual(
    def.nodes.map((n) => (n.kind.case === "step" ? n.kind.value.name : "?")),
    ["charge", "ship"],
  );
  const charge = def.nodes[0]?.kind.value;
  assert.ok(charge?.$typeName === "durable.v1.Step");
  assert.equal(charge.retry?.maxAttempts, 5);
  assert.equal(charge.retry?.backoff, Backoff.FIXED);
  assert.equal(charge.retry?.initialDelay?.nanos, 250_000_000);
  assert.equal(charge.timeout?.seconds, 1n);
  assert.equal(charge.timeout?.nanos, 500_000_000);
  const ship = def.nodes[1]?.kind.value;
  assert.ok(ship?.$typeName === "durable.v1.Step");
  assert.equal(ship.retry, undefined, "no policy: one attempt");
});

test("bad definitions are refused when written, naming the rule", () => {
  assert.throws(() => new Workflow("bad name"), /workflow name "bad name" is invalid/);
  assert.throws(() => new Workflow("w").step("a", () => 1).step("a", () => 2), /the name "a" is used twice/);
  assert.throws(() => new Workflow("w").step("a", () => 1, { retry: { maxAttempts: 0 } }), /maxAttempts/);
  assert.throws(() => new Workflow("w").step("a", () => 1, { timeoutMs: -1 }), /timeoutMs/);
  assert.throws(() => new Workflow("w").toDefinition(), /has no steps/);
});

test("payloads are JSON text; what JSON cannot carry is refused", () => {
  assert.equal(encodeJson({ a: [1, "x", null] }, "input"), '{"a":[1,"x",null]}');
  assert.equal(encodeJson(undefined, "input"), "null");
  assert.throws(() => encodeJson({ n: Number.NaN }, "the input"), /the input is not JSON-serializable/);
  assert.throws(() => encodeJson(10n, "the input"), /BigInt/);
  assert.equal(decodeJson("", "x"), null);
  assert.throws(() => decodeJson("{", "result_json"), /result_json is not valid JSON/);
});
