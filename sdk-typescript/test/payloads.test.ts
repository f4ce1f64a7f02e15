/**
 * Payload checks before a report is sent: a result (child input, timeout value) outside
 * the JSON profile or over the size limit fails its own attempt, non-retryable, instead
 * of the orchestrator refusing the whole report batch (and the attempts in it being lost).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, MAX_DEPTH, profileProblem } from "../src/payloads.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, memoryLogger, unique } from "./helpers.js";

function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? [value] : { k: value };
  return value;
}

test("profileProblem: depth, U+0000 and lone surrogates, in strings and keys; brackets and escapes in strings are text", () => {
  const ok: unknown[] = [
    nested(MAX_DEPTH),
    { s: "[".repeat(200) + "{".repeat(200) },
    "emoji \u{1F600} pair",
    "a backslash then u0000: \\u0000",
    { "\u00e9t\u00e9": "caf\u00e9" },
  ];
  for (const value of ok) assert.equal(profileProblem(JSON.stringify(value)), null, JSON.stringify(value));
  assert.match(profileProblem(JSON.stringify(nested(MAX_DEPTH + 1))) ?? "", /nested more than 64 levels/);
  assert.match(profileProblem(JSON.stringify({ s: "a\u0000b" })) ?? "", /U\+0000/);
  assert.match(profileProblem(JSON.stringify({ ["k\u0000"]: 1 })) ?? "", /U\+0000/);
  assert.match(profileProblem(JSON.stringify(["x\ud800"])) ?? "", /lone surrogate \(\\ud800\)/);
  assert.match(profileProblem(JSON.stringify("\udc00\ud800")) ?? "", /lone surrogate/);
  assert.match(profileProblem('"raw \ud83d"') ?? "", /lone surrogate/); // text not from JSON.stringify
  assert.equal(profileProblem('"raw \ud83d\ude00"'), null);
});

let client: Client;
let worker: Worker;
const queue = unique("q");
const retry = { maxAttempts: 3, initialDelayMs: 10, jitter: 0 };

const big = new Workflow(unique("big"), { queue }).step("huge", () => "x".repeat(DEFAULT_MAX_PAYLOAD_BYTES + 10), { retry });
const deep = new Workflow(unique("deep"), { queue }).step("deep", () => nested(MAX_DEPTH + 1), { retry });
const nul = new Workflow(unique("nul"), { queue }).step("nul", () => ({ text: "a\u0000b" }), { retry });
const lone = new Workflow(unique("lone"), { queue }).step("lone", () => ["\ud800"], { retry });
const timeoutValue = new Workflow(unique("tv"), { queue }).step("wait", async (_: unknown, ctx) => {
  await ctx.waitForEvent("never", { timeoutMs: 60_000, timeoutValue: "bad\u0000" });
  return "unreached";
}, { retry });
const child = new Workflow(unique("child"), { queue }).step("call", async (_: unknown, ctx) => {
  await ctx.callWorkflow("anything", { name: "\udfff" });
  return "unreached";
}, { retry });
const good = new Workflow(unique("good"), { queue }).step("fine", (n: number) => ({ n, text: "caf\u00e9 \u{1F600}" }));

before(async () => {
  client = new Client(address());
  worker = new Worker(address(), [big, deep, nul, lone, timeoutValue, child, good], { logger: memoryLogger(), concurrency: 10 });
  await worker.start();
});
after(async () => {
  await worker.drain();
  client.close();
});

const cases: [Workflow, string, RegExp][] = [
  [big, "PayloadTooLarge", /the result of step huge is 2,097,164 bytes of JSON, over the limit of 2,097,152 bytes/],
  [deep, "JSONSerializationError", /the result of step deep is nested more than 64 levels deep/],
  [nul, "JSONSerializationError", /the result of step nul contains U\+0000/],
  [lone, "JSONSerializationError", /the result of step lone contains a lone surrogate \(\\ud800\)/],
  [timeoutValue, "JSONSerializationError", /the timeout value of wait 0 of step wait contains U\+0000/],
  [child, "JSONSerializationError", /the input of child call 0 \(workflow anything\) of step call contains a lone surrogate/],
];

test("a payload the orchestrator would refuse fails its own attempt, once, non-retryable; the others in the batch go through", async () => {
  const starts = await client.startMany([
    ...cases.map(([wf]) => ({ workflow: wf.name, input: {} })),
    ...[1, 2, 3].map((n) => ({ workflow: good.name, input: n })),
  ]);
  // Without the checks the refused batches would lose their attempts until the leases ran out (30 s).
  const done = await Promise.all(starts.map((s) => client.wait(s.executionId, { timeoutMs: 20_000 })));
  for (const [i, [wf, type, message]] of cases.entries()) {
    const execution = await client.get(starts[i]!.executionId, { includeSteps: true });
    assert.equal(execution.status, "failed", wf.name);
    assert.equal(execution.steps.length, 1, `${wf.name}: one attempt, not retried`);
    const error = execution.steps[0]!.error;
    assert.equal(error?.type, type, wf.name);
    assert.equal(error?.nonRetryable, true);
    assert.match(error?.message ?? "", message);
  }
  assert.deepEqual(
    done.slice(cases.length).map((e) => [e.status, e.result]),
    [1, 2, 3].map((n) => ["completed", { n, text: "caf\u00e9 \u{1F600}" }]),
  );
});
