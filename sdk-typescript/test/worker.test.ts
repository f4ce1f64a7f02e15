/** The TypeScript worker against a real orchestrator: retries, timeouts, limits, drains. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import { NonRetryableError } from "../src/errors.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, gate, memoryLogger, unique, waitUntil } from "./helpers.js";

let client: Client;
before(() => {
  client = new Client(address());
});
after(() => client.close());

// Retries due at once. A retry with a delay that becomes due between a parked poll's
// claim and its idle check is not seen by that poll until its wait ends (an orchestrator
// race), which would make these tests wait for the poll's deadline.
const FAST_RETRY = { initialDelayMs: 0, maxDelayMs: 0, jitter: 0 };

async function withWorker<T>(workflows: Workflow[], options: object, body: (w: Worker) => Promise<T>): Promise<T> {
  const worker = new Worker(address(), workflows, { logger: memoryLogger(), ...options });
  await worker.start();
  try {
    return await body(worker);
  } finally {
    await worker.drain();
  }
}

test("a failing step is retried by its policy, with the same idempotency key", async () => {
  const keys: string[] = [];
  const wf = new Workflow(unique("flaky"), { queue: unique("q") }).step(
    "flaky",
    (input: { n: number }, ctx) => {
      keys.push(ctx.idempotencyKey);
      if (ctx.attempt < 3) throw new RangeError(`attempt ${ctx.attempt} fails`);
      return { n: input.n + 1, attempt: ctx.attempt };
    },
    { retry: { maxAttempts: 3, ...FAST_RETRY } },
  );
  await withWorker([wf], {}, async () => {
    const { executionId } = await client.start(wf.name, { n: 1 });
    const done = await client.wait(executionId, { timeoutMs: 20_000 });
    assert.equal(done.status, "completed");
    assert.deepEqual(done.result, { n: 2, attempt: 3 });
    const steps = (await client.get(executionId, { includeSteps: true })).steps;
    assert.deepEqual(
      steps.map((s) => [s.attempt, s.status, s.error?.type ?? null]),
      [
        [1, "failed", "RangeError"],
        [2, "failed", "RangeError"],
        [3, "completed", null],
      ],
    );
    assert.match(steps[0]?.error?.traceback ?? "", /RangeError: attempt 1 fails/);
    assert.deepEqual(keys, Array(3).fill(`${executionId}:1:flaky`));
  });
});

test("a NonRetryableError fails the step at once, whatever its policy", async () => {
  class PaymentDeclined extends NonRetryableError {
    override name = "PaymentDeclined";
  }
  const wf = new Workflow(unique("declined"), { queue: unique("q") }).step(
    "charge",
    () => {
      throw new PaymentDeclined("card declined");
    },
    { retry: { maxAttempts: 5, ...FAST_RETRY } },
  );
  await withWorker([wf], {}, async () => {
    const { executionId } = await client.start(wf.name, {});
    const done = await client.wait(executionId, { timeoutMs: 20_000 });
    assert.equal(done.status, "failed");
    assert.equal(done.error?.type, "PaymentDeclined");
    assert.match(done.error?.message ?? "", /card declined/);
    const steps = (await client.get(executionId, { includeSteps: true })).steps;
    assert.deepEqual(steps.map((s) => s.status), ["failed"]);
  });
});

test("a step past its timeout is reported timed out, aborted, and retried by its policy", async () => {
  const aborted: boolean[] = [];
  const wf = new Workflow(unique("slow"), { queue: unique("q") }).step(
    "slow",
    (_input: unknown, ctx) =>
      new Promise((resolve) => {
        ctx.signal.addEventListener("abort", () => {
          aborted.push(true);
          resolve("too late");
        });
      }),
    { timeoutMs: 100, retry: { maxAttempts: 2, ...FAST_RETRY } },
  );
  await withWorker([wf], {}, async () => {
    const { executionId } = await client.start(wf.name, {});
    const done = await client.wait(executionId, { timeoutMs: 20_000 });
    assert.equal(done.status, "failed");
    assert.equal(done.error?.type, "StepTimeout");
    const steps = (await client.get(executionId, { includeSteps: true })).steps;
    assert.deepEqual(steps.map((s) => s.status), ["timed_out", "timed_out"]);
    assert.deepEqual(aborted, [true, true]);
  });
});

test("no more steps run at once than the concurrency limit", async () => {
  let active = 0;
  let most = 0;
  const wf = new Workflow(unique("limited"), { queue: unique("q") }).step("work", async (n: number) => {
    active += 1;
    most = Math.max(most, active);
    await new Promise((r) => setTimeout(r, 30));
    active -= 1;
    return n * 2;
  });
  await withWorker([wf], { concurrency: 2 }, async () => {
    const started = await client.startMany([1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({ workflow: wf.name, input: n })));
    const done = await Promise.all(started.map((s) => client.wait(s.executionId, { timeoutMs: 30_000 })));
    assert.deepEqual(done.map((e) => e.result), [2, 4, 6, 8, 10, 12, 14, 16]);
  });
  assert.ok(most >= 1 && most <= 2, `at most 2 steps at once, saw ${most}`);
});

test("a drain lets running steps finish and report, and stops polling", async () => {
  const running = gate();
  const finish = gate();
  const queue = unique("q");
  const wf = new Workflow(unique("drained"), { queue }).step("work", async () => {
    running.open();
    await finish.promise;
    return "finished";
  });
  const worker = new Worker(address(), [wf], { logger: memoryLogger(), drainTimeoutMs: 30_000 });
  await worker.start();
  const { executionId } = await client.start(wf.name, {});
  await running.promise;
  const drained = worker.drain();
  finish.open();
  await drained;
  const done = await client.wait(executionId, { timeoutMs: 20_000 });
  assert.equal(done.status, "completed");
  assert.equal(done.result, "finished");
  const later = await client.start(wf.name, {});
  assert.equal((await client.get(later.executionId)).status, "pending");
  await client.cancel(later.executionId);
});

test("a drain gives back a step still running at its timeout; another worker runs it at once", async () => {
  const queue = unique("q");
  const running = gate();
  let release = true;
  const wf = new Workflow(unique("handover"), { queue }).step("work", async (_input: unknown, ctx) => {
    if (!release) return `done by ${ctx.attempt}`;
    running.open();
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    return "never reported";
  });
  const first = new Worker(address(), [wf], { logger: memoryLogger(), drainTimeoutMs: 50, workerId: unique("first") });
  await first.start();
  const { executionId } = await client.start(wf.name, {});
  await running.promise;
  await first.drain();
  release = false;
  await withWorker([wf], { workerId: unique("second") }, async (second) => {
    const done = await client.wait(executionId, { timeoutMs: 20_000 });
    assert.equal(done.status, "completed");
    const steps = (await client.get(executionId, { includeSteps: true })).steps;
    // Released, not lost: no attempt is used up, nothing waited for the lease to lapse.
    const last = steps.at(-1);
    assert.equal(last?.workerId, second.workerId);
    assert.equal(last?.attempt, 1);
    assert.equal(done.result, "done by 1");
    assert.ok(steps.every((s) => s.status !== "lost"), JSON.stringify(steps.map((s) => s.status)));
  });
});

test("SIGTERM drains a worker process: its running step finishes and the process exits 0", async () => {
  const queue = unique("q");
  const name = unique("sigterm");
  const script = fileURLToPath(new URL("./fixtures/sigterm-worker.js", import.meta.url));
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, WORKFLOW: name, QUEUE: queue },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => (out += chunk));
  try {
    await waitUntil(() => out.includes("durable-worker ready"), 20_000);
    const { executionId } = await client.start(name, { n: 5 });
    await waitUntil(() => out.includes("step started"), 20_000);
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, out);
    assert.match(out, /step finished/);
    const done = await client.wait(executionId, { timeoutMs: 20_000 });
    assert.equal(done.status, "completed");
    assert.deepEqual(done.result, { n: 5, by: "child process" });
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});
