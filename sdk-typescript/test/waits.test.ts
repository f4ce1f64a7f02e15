/** Waits inside TypeScript steps (the memo protocol) against a real orchestrator: sleeps, events, inputs, children. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import type { AnyEvent } from "../src/context.js";
import { ChildWorkflowError, WaitTimeoutError, childExecutionId } from "../src/steprun.js";
import { Worker } from "../src/worker.js";
import { Workflow, step } from "../src/workflow.js";
import { address, memoryLogger, unique, waitUntil } from "./helpers.js";

let client: Client;
before(() => {
  client = new Client(address());
});
after(() => client.close());

async function withWorker<T>(workflows: Workflow[], body: () => Promise<T>): Promise<T> {
  const worker = new Worker(address(), workflows, { logger: memoryLogger() });
  await worker.start();
  try {
    return await body();
  } finally {
    await worker.drain();
  }
}

test("a step sleeps without holding the worker and runs again from the top, its wait answered from the memo", async () => {
  const runs: number[] = [];
  const wf = new Workflow(unique("sleeper"), { queue: unique("q") }).step("nap", async (n: number, ctx) => {
    runs.push(ctx.attempt);
    await ctx.sleep(0); // index 0: returns at once, never suspends
    await ctx.sleep(30); // index 1
    await ctx.sleepUntil(new Date(Date.now() - 1000)); // index 2: in the past
    return { n, memo: Object.keys(ctx.memo) };
  });
  await withWorker([wf], async () => {
    const { executionId } = await client.start(wf.name, 4);
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.result, { n: 4, memo: ["1"] });
    assert.deepEqual(runs, [1, 1]); // the same attempt ran twice: before and after the sleep
    const steps = (await client.get(executionId, { includeSteps: true })).steps;
    assert.deepEqual(steps.map((s) => [s.stepName, s.attempt, s.status]), [["nap", 1, "completed"]]);
  });
});

test("a step waits for an event the client sends; a timeout gives the timeout value, or WaitTimeoutError", async () => {
  const seen: unknown[] = [];
  const wf = new Workflow(unique("events"), { queue: unique("q") }).step("await_payment", async (_input: unknown, ctx) => {
    const late = await ctx.waitForEvent("never", { timeoutMs: 20, timeoutValue: "no show" });
    const paid = await ctx.waitForEvent<{ amount: number }>("paid");
    const any: AnyEvent = await ctx.waitForAny(["shipped", "lost"]);
    const all = await ctx.waitForAll(["a", "b"]);
    try {
      await ctx.waitForEvent("too_late", { timeoutMs: 20 });
    } catch (err) {
      seen.push(err instanceof WaitTimeoutError ? [err.type, err.index] : String(err));
    }
    return { late, paid, any, all };
  });
  await withWorker([wf], async () => {
    const { executionId } = await client.start(wf.name, {});
    await waitUntil(async () => (await client.listPendingEvents({ executionId })).items.some((w) => w.names.includes("paid")), 20_000);
    await client.sendEvent(executionId, "paid", { amount: 12 });
    await client.sendEvent(executionId, "lost", "in the mail");
    await client.sendEvent(executionId, "b", 2);
    await client.sendEvent(executionId, "a", 1);
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.result, {
      late: "no show",
      paid: { amount: 12 },
      any: { event: "lost", payload: "in the mail" },
      all: { a: 1, b: 2 },
    });
    assert.deepEqual(seen.at(-1), ["EventTimeout", 4]);
  });
});

test("a wait timeout without a timeout value fails the step for good with WaitTimeoutError", async () => {
  const wf = new Workflow(unique("timeout"), { queue: unique("q") }).step(
    "wait",
    async (_input: unknown, ctx) => ctx.waitForEvent("never", { timeoutMs: 20 }),
    { retry: { maxAttempts: 3, initialDelayMs: 0 } },
  );
  await withWorker([wf], async () => {
    const { executionId } = await client.start(wf.name, {});
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "failed");
    assert.equal(done.error?.type, "WaitTimeoutError");
    const steps = (await client.get(executionId, { includeSteps: true })).steps;
    assert.deepEqual(steps.map((s) => s.status), ["failed"]); // non-retryable
  });
});

test("a step waits for a person's input, listed as pending until answered", async () => {
  const wf = new Workflow(unique("approve"), { queue: unique("q") }).step("ask", async (claim: { amount: number }, ctx) => {
    const choice = await ctx.waitForInput<string>("route", { kind: "single_choice", prompt: `Refund ${claim.amount}?`, choices: ["bank", "card"] });
    return { choice };
  });
  await withWorker([wf], async () => {
    const { executionId } = await client.start(wf.name, { amount: 30 });
    const pending = await waitUntil(async () => (await client.listPendingInputs({ executionId })).items[0], 20_000);
    assert.equal(pending?.name, "route");
    assert.equal(pending?.prompt, "Refund 30?");
    await client.provideInput(executionId, "route", "card");
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.deepEqual(done.result, { choice: "card" });
  });
});

test("a step calls a child workflow and starts another; ids follow the uuid5 rule; a failed child throws ChildWorkflowError", async () => {
  const queue = unique("q");
  const child = new Workflow(unique("child"), { queue }).step("double", (n: number) => {
    if (n < 0) throw new RangeError("negative");
    return n * 2;
  });
  const caught: unknown[] = [];
  const parent = new Workflow(unique("parent"), { queue }).step("call", async (n: number, ctx) => {
    const started = ctx.startWorkflow(child, 100); // index 0: fire and forget
    const doubled = await ctx.callWorkflow<number>(child.name, n); // index 1
    try {
      await ctx.callWorkflow(child, -1); // index 2
    } catch (err) {
      if (err instanceof ChildWorkflowError) caught.push([err.type, err.status, err.childExecutionId]);
    }
    return { started, doubled };
  });
  await withWorker([child, parent], async () => {
    const { executionId } = await client.start(parent.name, 21);
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    const ids = [0, 1, 2].map((i) => childExecutionId(executionId, 1, i));
    assert.deepEqual(done.result, { started: ids[0], doubled: 42 });
    assert.deepEqual(caught, [["ChildWorkflowFailed", "failed", ids[2]]]);
    const children = await client.listChildren(executionId);
    assert.deepEqual(children.items.map((c) => c.id).sort(), [...ids].sort());
  });
});

test("an into merge or a compensation that waits fails for good (WaitOutsideStep, CallWorkflowOutsideStep)", async () => {
  const wf = new Workflow(unique("outside"), { queue: unique("q") }).parallel(
    "group",
    { a: [step("a", () => 1)] },
    {
      into: async (_data: unknown, _results: unknown, ctx) => {
        await ctx.sleep(10);
        return "never";
      },
    },
  );
  const saga = new Workflow(unique("outside_saga"), { queue: unique("q") })
    .step("s", () => 1, {
      compensate: step("undo", async (_r: unknown, ctx) => ctx.callWorkflow("anything", null)),
    })
    .step("boom", () => {
      throw new Error("boom");
    });
  await withWorker([wf, saga], async () => {
    const [a, b] = await Promise.all([client.start(wf.name, {}), client.start(saga.name, {})]);
    const intoDone = await client.wait(a.executionId, { timeoutMs: 30_000 });
    assert.equal(intoDone.status, "failed");
    assert.equal(intoDone.error?.type, "WaitOutsideStep");
    const sagaDone = await client.wait(b.executionId, { timeoutMs: 30_000 });
    assert.equal(sagaDone.status, "compensation_failed");
    const steps = (await client.get(b.executionId, { includeSteps: true })).steps;
    assert.equal(steps.find((s) => s.stepName === "undo")?.error?.type, "CallWorkflowOutsideStep");
  });
});
