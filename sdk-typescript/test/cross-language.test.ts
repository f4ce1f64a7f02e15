/**
 * Across languages: the Python workflow `py_calls_ts` (run by the Python worker that
 * tests/e2e/test_typescript_sdk.py starts) calls the TypeScript workflow `ts_child`,
 * run here by a TypeScript worker, and returns its result.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { address, memoryLogger } from "./helpers.js";

const enabled = process.env.DURABLE_CROSS_LANGUAGE === "1";

test("a Python workflow calls a TypeScript child and gets its result", { skip: !enabled && "needs the Python worker of tests/e2e/test_typescript_sdk.py" }, async () => {
  const tsChild = new Workflow("ts_child", { queue: "ts-cross-language" }).step(
    "double",
    (input: { n: number }, ctx) => ({ doubled: input.n * 2, lang: "typescript", parentStep: ctx.workflowName }),
  );
  const client = new Client(address());
  const worker = new Worker(address(), [tsChild], { logger: memoryLogger() });
  await worker.start();
  try {
    const { executionId } = await client.start("py_calls_ts", { n: 21 });
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    assert.deepEqual(done.result, {
      from_ts: { doubled: 42, lang: "typescript", parentStep: "ts_child" },
      python_saw: 21,
    });
    const children = await client.listChildren(executionId);
    assert.deepEqual(
      children.items.map((c) => [c.workflowName, c.status, c.parentExecutionId]),
      [["ts_child", "completed", executionId]],
    );
  } finally {
    await worker.drain();
    client.close();
  }
});
