/**
 * Backpressure: a worker whose reports are not acknowledged stops asking for work. A fake
 * WorkerService on loopback hands out a task per poll and refuses every report as
 * UNAVAILABLE until the test lets them through.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { TaskKind } from "../src/gen/durable/v1/common_pb.js";
import { TaskSchema, WorkerService } from "../src/gen/durable/v1/worker_service_pb.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test("a worker stops polling while its reports wait for the orchestrator, and resumes after", async () => {
  let polls = 0;
  let heartbeats = 0;
  let released = false;
  let pollsBeforeRelease = 0;
  const server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        router.service(WorkerService, {
          registerWorkflows: (req) => ({
            workflows: req.workflows.map((w) => ({ name: w.name, version: "v1", created: true })),
          }),
          pollTasks: () => {
            polls += 1;
            if (!released) pollsBeforeRelease = polls;
            return {
              tasks: [
                create(TaskSchema, {
                  taskId: BigInt(polls),
                  leaseToken: `lease-${polls}`,
                  executionId: `e-${polls}`,
                  workflowName: "bp",
                  workflowVersion: "v1",
                  stepName: "only",
                  sequence: 1,
                  attempt: 1,
                  inputJson: "{}",
                  executionInputJson: "{}",
                  kind: TaskKind.STEP,
                  heartbeatInterval: create(DurationSchema, { nanos: 20_000_000 }), // 20 ms
                }),
              ],
            };
          },
          heartbeat: () => {
            heartbeats += 1;
            return { lostTaskIds: [] };
          },
          // The orchestrator cannot record reports (its database is away, say) until the
          // test lets them through: the worker keeps them and sends them again.
          completeTasks: () => {
            if (!released) throw new ConnectError("the database is unavailable", Code.Unavailable);
            return { nextTasks: [] };
          },
          failTasks: () => {
            if (!released) throw new ConnectError("the database is unavailable", Code.Unavailable);
            return {};
          },
          releaseTasks: () => ({}),
        });
      },
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const wf = new Workflow("bp").step("only", () => ({ ok: true }));
  const worker = new Worker(address, [wf], { concurrency: 1, drainTimeoutMs: 1_000 });
  await worker.start();
  try {
    const limit = worker.maxUnacknowledged;
    assert.equal(limit, 100);
    await until(() => worker.unacknowledgedReports >= limit, `${limit} reports waiting`);
    // Every task it polled has finished and waits to be reported: it asks for no more,
    // while its heartbeats (every 20 ms) go on holding the leases of those reports.
    const seen = heartbeats;
    await until(() => heartbeats >= seen + 3, "three more heartbeats");
    assert.equal(polls, limit);
    released = true;
    await until(() => polls > limit + 5, "polling again once the reports are answered");
    assert.equal(pollsBeforeRelease, limit);
  } finally {
    await worker.drain();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
