/** Schedules, queues, retries, diagnostics, workers and graphs, against a real orchestrator. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NonRetryableError,
  NotFoundError,
} from "../src/errors.js";
import type { ScheduleChanges } from "../src/schedules.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, memoryLogger, unique, waitUntil } from "./helpers.js";

const queue = unique("q_ops");
const echo = new Workflow(unique("echo"), { queue }).step("repeat", (input: unknown) => input);
let failing = true;
const flaky = new Workflow(unique("flaky"), { queue })
  .step("first", (input: { n: number }) => ({ n: input.n + 1 }))
  .step("second", (data: { n: number }) => {
    if (failing) throw new NonRetryableError("not yet");
    return { n: data.n * 10 };
  });
// Registered by a worker that polls another queue: its executions stay stuck.
const idleQueue = unique("q_unpolled");
const stuck = new Workflow(unique("stuck"), { queue: idleQueue }).step("never", () => null);

let client: Client;
let worker: Worker;
let registrar: Worker;

before(async () => {
  client = new Client(address());
  worker = new Worker(address(), [echo, flaky], { concurrency: 4, logger: memoryLogger() });
  await worker.start();
  registrar = new Worker(address(), [stuck], { queues: [unique("q_elsewhere")], logger: memoryLogger() });
  await registrar.start();
});

after(async () => {
  await worker.drain();
  await registrar.drain();
  client.close();
});

test("a schedule's life: create, read, list, update, disable, enable, trigger, delete", async () => {
  const name = unique("nightly");
  const created = await client.createSchedule(name, echo, "0 3 * * *", {
    timezone: "Europe/Paris",
    input: { from: "schedule" },
    catchUp: "skip",
    overlap: "cancel_previous",
    maxFailures: 3,
  });
  assert.equal(created.name, name);
  assert.equal(created.workflowName, echo.name);
  assert.equal(created.cron, "0 3 * * *");
  assert.equal(created.timezone, "Europe/Paris");
  assert.deepEqual(created.input, { from: "schedule" });
  assert.equal(created.enabled, true);
  assert.equal(created.catchUp, "skip");
  assert.equal(created.overlap, "cancel_previous");
  assert.equal(created.maxFailures, 3);
  assert.equal(created.declared, false);
  assert.ok(created.nextFireAt instanceof Date && created.nextFireAt.getTime() > Date.now());

  assert.deepEqual(await client.getSchedule(name), created);
  const listed = await client.listSchedules({ workflow: echo, enabled: true });
  assert.deepEqual(
    listed.items.map((s) => s.name),
    [name],
  );
  assert.deepEqual((await client.listSchedules({ workflow: echo.name, enabled: false })).items, []);

  const updated = await client.updateSchedule(name, { cron: "*/5 * * * *", priority: 7, queue: null });
  assert.equal(updated.cron, "*/5 * * * *");
  assert.equal(updated.priority, 7);
  assert.equal(updated.timezone, "Europe/Paris"); // not in the changes: kept
  assert.deepEqual(updated.input, { from: "schedule" });

  const disabled = await client.disableSchedule(name);
  assert.equal(disabled.enabled, false);
  assert.equal((await client.enableSchedule(name)).enabled, true);

  const own = await client.triggerSchedule(name, { input: { from: "trigger" } });
  const theirs = await client.triggerSchedule(name);
  const [ownDone, theirsDone] = await Promise.all([
    client.wait(own, { timeoutMs: 20_000 }),
    client.wait(theirs, { timeoutMs: 20_000 }),
  ]);
  assert.deepEqual(ownDone.result, { from: "trigger" });
  assert.deepEqual(theirsDone.result, { from: "schedule" });
  assert.equal(ownDone.scheduleName, name);
  const runs = await client.list({ scheduleName: name });
  assert.deepEqual(new Set(runs.items.map((e) => e.id)), new Set([own, theirs]));

  await client.deleteSchedule(name);
  await assert.rejects(client.getSchedule(name), NotFoundError);
  assert.equal((await client.wait(own)).status, "completed"); // its runs stay
});

test("schedule refusals: a taken name, a bad cron expression, changes that change nothing", async () => {
  const name = unique("hourly");
  await client.createSchedule(name, echo.name, "@hourly");
  await assert.rejects(client.createSchedule(name, echo.name, "@hourly"), AlreadyExistsError);
  await assert.rejects(client.createSchedule(unique("bad"), echo.name, "61 * * * *"), (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.match(err.message, /cron/);
    return true;
  });
  await assert.rejects(client.updateSchedule(name, {}), /needs something to change/);
  await assert.rejects(
    client.updateSchedule(name, { colour: "red" } as unknown as ScheduleChanges),
    /cannot change colour/,
  );
  await assert.rejects(client.updateSchedule(unique("missing"), { cron: "@daily" }), NotFoundError);
  await client.deleteSchedule(name);
});

test("pause, drain and resume a queue; listQueues shows its state and load", async () => {
  const paused = await client.pauseQueue(queue, "maintenance");
  assert.equal(paused.state, "paused");
  assert.equal(paused.reason, "maintenance");
  const { executionId } = await client.start(echo, "while paused");
  const seen = await waitUntil(async () => {
    const q = (await client.listQueues()).find((info) => info.name === queue);
    return q !== undefined && q.ready >= 1 ? q : undefined;
  });
  assert.ok(seen);
  assert.equal(seen.state, "paused");
  assert.ok(seen.oldestReadyAgeMs !== null && seen.oldestReadyAgeMs >= 0);
  assert.equal((await client.get(executionId)).status, "pending");

  assert.equal((await client.resumeQueue(queue)).state, "active");
  assert.equal((await client.wait(executionId, { timeoutMs: 20_000 })).result, "while paused");

  assert.equal((await client.drainQueue(queue, "moving")).state, "draining");
  await assert.rejects(client.start(echo, "refused"), FailedPreconditionError);
  assert.equal((await client.resumeQueue(queue)).state, "active");
  assert.equal((await client.wait((await client.start(echo, "again")).executionId)).result, "again");
});

test("retryExecution runs a failed execution again from the step that failed", async () => {
  failing = true;
  const { executionId } = await client.start(flaky, { n: 1 });
  const failed = await client.wait(executionId, { timeoutMs: 20_000 });
  assert.equal(failed.status, "failed");
  assert.match(failed.error?.message ?? "", /not yet/);
  failing = false;
  assert.equal(await client.retryExecution(executionId), "second");
  const done = await client.wait(executionId, { timeoutMs: 20_000 });
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { n: 20 });
  await assert.rejects(client.retryExecution(executionId), FailedPreconditionError);
});

test("diagnose finds an execution no worker polls for", async () => {
  const { executionId } = await client.start(stuck, {});
  const findings = await client.diagnose({ limit: 1000, workerAliveWithinMs: 60_000 });
  const mine = findings.find((f) => f.executionId === executionId);
  assert.ok(mine, JSON.stringify(findings));
  assert.equal(mine.workflowName, stuck.name);
  assert.equal(mine.problem, "no_worker_for_queue");
  assert.match(mine.detail, new RegExp(idleQueue));
  await assert.rejects(client.diagnose({ limit: -1 }), RangeError);
  await client.cancel(executionId);
});

test("listWorkers shows the workers, their queues and versions", async () => {
  const workers = await client.listWorkers({ queue, seenWithinMs: 60_000 });
  const me = workers.find((w) => w.workerId === worker.workerId);
  assert.ok(me, JSON.stringify(workers));
  assert.deepEqual(me.queues, [queue]);
  assert.equal(me.versions.length, 2);
  assert.ok(me.lastSeenAt instanceof Date);
  assert.ok(!workers.some((w) => w.workerId === registrar.workerId));
});

test("getExecutionGraph draws a workflow, or an execution with its state", async () => {
  const mermaid = await client.getExecutionGraph({ workflow: flaky });
  assert.match(mermaid, /flowchart/);
  assert.match(mermaid, /first/);
  assert.match(mermaid, /second/);
  const { executionId } = await client.start(echo, 1);
  await client.wait(executionId, { timeoutMs: 20_000 });
  const dot = await client.getExecutionGraph({ executionId }, { format: "dot" });
  assert.match(dot, /^digraph/);
  assert.match(dot, /repeat/);
  await assert.rejects(
    client.getExecutionGraph({ workflow: unique("nothing") }),
    NotFoundError,
  );
  await assert.rejects(
    client.getExecutionGraph({ executionId, workflow: echo } as unknown as { executionId: string }),
    TypeError,
  );
});

test("a closed client refuses calls", async () => {
  const closing = new Client(address());
  assert.equal((await closing.listQueues()).length >= 0, true);
  closing.close();
  await assert.rejects(closing.listQueues(), /this Client is closed/);
});
