/**
 * The testing helper on the test clock, against an orchestrator in test mode
 * (DURABLE_TEST_ADDRESS: tests/e2e/test_typescript_sdk.py starts one on a manual clock).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FailedPreconditionError } from "../src/errors.js";
import { WorkflowSuspendedError, WorkflowTestEnv } from "../src/testing.js";
import { Workflow } from "../src/workflow.js";
import { address, unique } from "./helpers.js";

const DAY_MS = 24 * 60 * 60 * 1000;

function testAddress(): string {
  const value = process.env.DURABLE_TEST_ADDRESS;
  if (!value) throw new Error("DURABLE_TEST_ADDRESS is not set: these tests need an orchestrator in test mode (a manual clock)");
  return value;
}

async function withEnv<T>(workflows: Workflow[], body: (env: WorkflowTestEnv) => Promise<T>): Promise<T> {
  const env = await WorkflowTestEnv.open(workflows, { address: testAddress() });
  try {
    return await body(env);
  } finally {
    await env.close();
  }
}

test("a workflow that sleeps a day completes after skipToNextTimer, without real waiting", async () => {
  const wf = new Workflow(unique("napper"))
    .step("nap", async (n: number, ctx) => {
      await ctx.sleep(DAY_MS);
      return n + 1;
    })
    .step("after", (n: number) => ({ n }));
  await withEnv([wf], async (env) => {
    const before = await env.now();
    const run = await env.start(wf, 41);
    const suspended = await run.untilSuspended();
    assert.equal(suspended.status, "waiting");
    assert.equal((await env.nextTimer())?.getTime(), before.getTime() + DAY_MS);
    await assert.rejects(run.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowSuspendedError);
      assert.match(err.message, /next timer is due at/);
      return true;
    });
    const realStart = Date.now();
    const moved = await env.skipToNextTimer();
    assert.equal(moved?.getTime(), before.getTime() + DAY_MS);
    const done = await run.result();
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.result, { n: 42 });
    assert.ok(Date.now() - realStart < DAY_MS / 1000); // a day of workflow time, not of real time
    assert.equal(await env.skipToNextTimer(), null); // nothing is due any more
  });
});

test("a wait for an event with a 3-day timeout returns its timeout value after advance", async () => {
  const wf = new Workflow(unique("payment")).step("await_payment", async (_input: unknown, ctx) => {
    const paid = await ctx.waitForEvent("paid", { timeoutMs: 3 * DAY_MS, timeoutValue: "expired" });
    return { paid };
  });
  await withEnv([wf], async (env) => {
    const run = await env.start(wf, {});
    await env.advance(2 * DAY_MS);
    assert.equal((await run.execution()).status, "waiting"); // two days: still waiting
    await env.advance(DAY_MS);
    const done = await run.result();
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.result, { paid: "expired" });
  });
});

test("an event sent in time ends the wait; result with skipTimers runs a later sleep to the end", async () => {
  const wf = new Workflow(unique("shipping")).step("ship", async (_input: unknown, ctx) => {
    const paid = await ctx.waitForEvent<{ amount: number }>("paid", { timeoutMs: 3 * DAY_MS, timeoutValue: null });
    await ctx.sleep(7 * DAY_MS);
    return { paid };
  });
  await withEnv([wf], async (env) => {
    const run = await env.start(wf, {});
    await env.advance(DAY_MS);
    const sent = await run.sendEvent("paid", { amount: 5 });
    assert.equal(sent.delivered, true);
    const start = await env.now();
    const done = await run.result({ skipTimers: true });
    assert.deepEqual(done.result, { paid: { amount: 5 } });
    assert.equal((await env.now()).getTime(), start.getTime() + 7 * DAY_MS);
  });
});

test("the orchestrator on the real clock refuses the environment", async () => {
  const wf = new Workflow(unique("refused")).step("s", () => 1);
  await assert.rejects(WorkflowTestEnv.open([wf], { address: address() }), FailedPreconditionError);
});
