/**
 * Across languages: the Python workflow `py_calls_ts` (run by the Python worker that
 * tests/e2e/test_typescript_sdk.py starts) calls the TypeScript workflow `ts_child`,
 * run here by a TypeScript worker, and returns its result.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "../src/client.js";
import { ChildWorkflowError, childExecutionId } from "../src/steprun.js";
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

test("a TypeScript workflow calls a Python child and gets its result, or its failure", { skip: !enabled && "needs the Python worker of tests/e2e/test_typescript_sdk.py" }, async () => {
  const tsParent = new Workflow("ts_calls_py", { queue: "ts-cross-language-parent" }).step("call_python", async (input: { n: number }, ctx) => {
    const child = await ctx.callWorkflow<{ tripled: number; lang: string; parent: string }>("py_child", { n: input.n });
    let failure: unknown = null;
    try {
      await ctx.callWorkflow("py_child", { n: input.n, fail: true });
    } catch (err) {
      if (err instanceof ChildWorkflowError) failure = { type: err.type, status: err.status, cause: err.cause };
    }
    return { fromPython: child, failure, typescriptSaw: input.n };
  });
  const client = new Client(address());
  const worker = new Worker(address(), [tsParent], { logger: memoryLogger() });
  await worker.start();
  try {
    const { executionId } = await client.start("ts_calls_py", { n: 7 });
    const done = await client.wait(executionId, { timeoutMs: 30_000 });
    assert.equal(done.status, "completed", JSON.stringify(done.error));
    const result = done.result as { fromPython: unknown; failure: { type: string; status: string; cause: { type: string; message: string } }; typescriptSaw: number };
    assert.deepEqual(result.fromPython, { tripled: 21, lang: "python", parent: childExecutionId(executionId, 1, 0) });
    assert.equal(result.typescriptSaw, 7);
    assert.equal(result.failure.type, "ChildWorkflowFailed");
    assert.equal(result.failure.status, "failed");
    assert.equal(result.failure.cause.type, "ValueError");
    assert.match(result.failure.cause.message, /python refuses 7/);
    const children = await client.listChildren(executionId);
    assert.deepEqual(
      children.items.map((c) => [c.workflowName, c.status]).sort(),
      [
        ["py_child", "completed"],
        ["py_child", "failed"],
      ],
    );
  } finally {
    await worker.drain();
    client.close();
  }
});
