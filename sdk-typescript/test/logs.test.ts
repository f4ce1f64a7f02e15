/** Per-attempt console capture and secrets masking, against a real orchestrator. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, memoryLogger, unique } from "./helpers.js";

let client: Client;
before(() => {
  client = new Client(address());
});
after(() => client.close());

test("console output of each attempt is captured into that attempt's log, even across awaits and concurrent steps", async () => {
  const wf = new Workflow(unique("chatty"), { queue: unique("q") }).step(
    "talk",
    async (n: number, ctx) => {
      console.log("hello from", n, { attempt: ctx.attempt });
      await new Promise((r) => setTimeout(r, 10 * (3 - n)));
      console.warn(`after the await ${n}`);
      ctx.log.info(`logger line ${n}`);
      if (ctx.attempt === 1 && n === 1) throw new Error("first attempt fails");
      return n;
    },
    { retry: { maxAttempts: 2, initialDelayMs: 0, maxDelayMs: 0, jitter: 0 } },
  );
  const worker = new Worker(address(), [wf], { logger: memoryLogger() });
  await worker.start();
  try {
    const started = await Promise.all([1, 2].map((n) => client.start(wf.name, n)));
    for (const [i, { executionId }] of started.entries()) {
      const n = i + 1;
      const done = await client.wait(executionId, { timeoutMs: 30_000 });
      assert.equal(done.status, "completed", JSON.stringify(done.error));
      const steps = (await client.get(executionId, { includeSteps: true, includeLogs: true })).steps;
      for (const s of steps) {
        assert.deepEqual(
          s.logs.map((l) => [l.level, l.logger, l.message]),
          [
            ["PRINT", "console", `hello from ${n} { attempt: ${s.attempt} }`],
            ["WARNING", "console", `after the await ${n}`],
            ["INFO", "step", `logger line ${n}`],
          ],
        );
      }
      assert.equal(steps.length, n === 1 ? 2 : 1);
    }
  } finally {
    await worker.drain();
  }
});

test("a value marked with ctx.secret is masked in the attempt's logs and error", async () => {
  const wf = new Workflow(unique("secretive"), { queue: unique("q") }).step("use_key", (input: { key: string }, ctx) => {
    const key = ctx.secret(input.key);
    ctx.log.info(`calling the bank with ${key}`);
    console.log("key is", key);
    throw new Error(`the bank refused ${key}`);
  });
  const worker = new Worker(address(), [wf], { logger: memoryLogger() });
  await worker.start();
  try {
    const { executionId } = await client.start(wf.name, { key: "sk_live_42" });
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "failed");
    const [attempt] = (await client.get(executionId, { includeSteps: true, includeLogs: true })).steps;
    assert.deepEqual(attempt?.logs.map((l) => l.message), ["calling the bank with ***", "key is ***"]);
    assert.equal(attempt?.error?.message, "the bank refused ***");
    assert.ok(!(attempt?.error?.traceback ?? "").includes("sk_live_42"), attempt?.error?.traceback);
    assert.ok(!JSON.stringify(done.error).includes("sk_live_42"));
  } finally {
    await worker.drain();
  }
});
