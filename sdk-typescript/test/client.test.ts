/** The client against a real orchestrator, with a TypeScript worker running the steps. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import { DurableError, InvalidArgumentError, NotFoundError } from "../src/errors.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, memoryLogger, unique } from "./helpers.js";

const queue = unique("q_client");
const greet = new Workflow(unique("greet"), { queue })
  .step("hello", (input: { name: string }) => ({ greeting: `hello ${input.name}` }))
  .step("shout", (data: { greeting: string }, ctx) => {
    ctx.log.info(`shouting ${data.greeting}`);
    return { ...data, loud: data.greeting.toUpperCase() };
  });
// Registered by a worker that never polls its queue: its executions stay pending.
const idleQueue = unique("q_idle");
const parked = new Workflow(unique("parked"), { queue: idleQueue }).step("never", () => null);

let client: Client;
let worker: Worker;
let registrar: Worker;

before(async () => {
  client = new Client(address());
  worker = new Worker(address(), [greet], { concurrency: 4, logger: memoryLogger() });
  await worker.start();
  registrar = new Worker(address(), [parked], { queues: [unique("q_nobody")], logger: memoryLogger() });
  await registrar.start();
});

after(async () => {
  await worker.drain();
  await registrar.drain();
  client.close();
});

test("start, wait and get: the result, the steps and their logs", async () => {
  const started = await client.start(greet.name, { name: "ada" });
  assert.equal(started.created, true);
  const done = await client.wait(started.executionId, { timeoutMs: 20_000 });
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { greeting: "hello ada", loud: "HELLO ADA" });
  const full = await client.get(started.executionId, { includeSteps: true, includeLogs: true });
  assert.deepEqual(full.input, { name: "ada" });
  assert.deepEqual(
    full.steps.map((s) => [s.stepName, s.status, s.attempt]),
    [
      ["hello", "completed", 1],
      ["shout", "completed", 1],
    ],
  );
  assert.equal(full.steps[1]?.workerId, worker.workerId);
  assert.deepEqual(
    full.steps[1]?.logs.map((l) => [l.level, l.message]),
    [["INFO", "shouting hello ada"]],
  );
});

test("an idempotency key returns the first execution; startMany keeps the order", async () => {
  const key = unique("key");
  const first = await client.start(greet.name, { name: "x" }, { idempotencyKey: key, priority: 5 });
  const again = await client.start(greet.name, { name: "y" }, { idempotencyKey: key });
  assert.equal(again.executionId, first.executionId);
  assert.equal(again.created, false);
  const many = await client.startMany([
    { workflow: greet.name, input: { name: "a" } },
    { workflow: greet.name, input: { name: "b" }, queue },
  ]);
  assert.equal(many.length, 2);
  const results = await Promise.all(many.map((s) => client.wait(s.executionId, { timeoutMs: 20_000 })));
  assert.deepEqual(
    results.map((e) => (e.result as { loud: string }).loud),
    ["HELLO A", "HELLO B"],
  );
  const page = await client.list({ workflow: greet.name, statuses: ["completed"], pageSize: 100 });
  assert.ok(page.totalCount >= 3);
  assert.ok(page.items.every((e) => e.workflowName === greet.name && e.status === "completed"));
  assert.ok(page.items.some((e) => e.id === first.executionId));
});

test("events with ids, pending lists, inputs, children and cancel", async () => {
  const { executionId } = await client.start(parked.name, { order: 1 });
  const sent = await client.sendEvent(executionId, "paid", { amount: 3 }, { eventId: "evt-1" });
  assert.equal(sent.duplicate, false);
  const resent = await client.sendEvent(executionId, "paid", { amount: 3 }, { eventId: "evt-1" });
  assert.equal(resent.duplicate, true);
  const pending = await client.get(executionId, { includeSteps: true });
  assert.equal(pending.status, "pending");
  assert.deepEqual(
    pending.unconsumedEvents.map((e) => [e.name, e.payload]),
    [["paid", { amount: 3 }]],
  );
  assert.deepEqual((await client.listPendingEvents({ executionId })).items, []);
  assert.deepEqual((await client.listPendingInputs({ executionId })).items, []);
  assert.deepEqual((await client.listChildren(executionId)).items, []);
  await assert.rejects(client.provideInput(executionId, "approval", true), (err: unknown) => {
    assert.ok(err instanceof DurableError);
    assert.notEqual(err.code, "UNKNOWN");
    return true;
  });
  const cancelled = await client.cancel(executionId, "changed my mind");
  assert.equal(cancelled.status, "cancelled");
  assert.equal((await client.wait(executionId)).status, "cancelled");
});

test("refusals are typed errors naming what is wrong", async () => {
  await assert.rejects(client.start(unique("no_such_workflow"), {}), (err: unknown) => {
    assert.ok(err instanceof NotFoundError, String(err));
    assert.equal(err.code, "NOT_FOUND");
    return true;
  });
  await assert.rejects(client.get("00000000-0000-0000-0000-000000000000"), NotFoundError);
  await assert.rejects(client.start("bad name!", {}), (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.match(err.message, /workflow_name/);
    return true;
  });
  await assert.rejects(client.start(greet.name, { n: Number.POSITIVE_INFINITY }), TypeError);
});
