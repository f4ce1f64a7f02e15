/**
 * Next tasks handed back with reports: a CompleteTasks call asks for the next steps (up to
 * the free slots) and the worker runs what comes back without polling for it. A fake
 * WorkerService on loopback hands out one first step by poll, then the second step only
 * with the first one's completion.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { TaskKind } from "../src/gen/durable/v1/common_pb.js";
import type { Task } from "../src/gen/durable/v1/worker_service_pb.js";
import { TaskSchema, WorkerService } from "../src/gen/durable/v1/worker_service_pb.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";

function task(id: number, step: string, sequence: number, input: string): Task {
  return create(TaskSchema, {
    taskId: BigInt(id),
    leaseToken: `lease-${id}`,
    executionId: "e-1",
    workflowName: "two_steps",
    workflowVersion: "v1",
    stepName: step,
    sequence,
    attempt: 1,
    inputJson: input,
    executionInputJson: "{}",
    kind: TaskKind.STEP,
  });
}

test("the next step comes back with the report and runs without a poll", { timeout: 10_000 }, async () => {
  let polls = 0;
  const asked: number[] = [];
  const completed: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        router.service(WorkerService, {
          registerWorkflows: (req) => ({
            workflows: req.workflows.map((w) => ({ name: w.name, version: "v1", created: true })),
          }),
          pollTasks: async (_req, ctx) => {
            polls += 1;
            if (polls === 1) return { tasks: [task(1, "one", 1, "{}")] };
            // Later polls park, as a long poll with no work does, until the end or a cancel.
            const cancelled = new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
            await Promise.race([finished, cancelled]);
            return { tasks: [] };
          },
          heartbeat: () => ({ lostTaskIds: [] }),
          completeTasks: (req) => {
            asked.push(req.maxNextTasks);
            for (const c of req.completions) completed.push(`${c.lease?.taskId}:${c.resultJson}`);
            if (req.completions.some((c) => c.lease?.taskId === 1n)) {
              return { nextTasks: [task(2, "two", 2, req.completions[0]?.resultJson ?? "null")] };
            }
            done();
            return { nextTasks: [] };
          },
          releaseTasks: () => ({}),
        });
      },
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const wf = new Workflow("two_steps")
    .step("one", () => ({ n: 1 }))
    .step("two", (data: { n: number }) => ({ n: data.n + 1 }));
  const worker = new Worker(address, [wf], { concurrency: 4, drainTimeoutMs: 1_000 });
  await worker.start();
  try {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("the second step never ran: no next task taken")), 5_000);
    });
    await Promise.race([finished, deadline]).finally(() => clearTimeout(timer));
    assert.deepEqual(completed, ['1:{"n":1}', '2:{"n":2}']);
    assert.equal(polls >= 1 && polls <= 2, true, `polls: ${polls}`); // the second one parked
    // The first report asked for as many next tasks as it had free slots (all 4: the step ended).
    assert.equal(asked[0], 4);
  } finally {
    await worker.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
