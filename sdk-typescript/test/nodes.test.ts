/** Pure parts of the control-flow DSL: definitions, branch keys, the walk, child ids (no orchestrator). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ErrorMode } from "../src/gen/durable/v1/definition_pb.js";
import { childExecutionId } from "../src/steprun.js";
import { evaluate } from "../src/walk.js";
import { Workflow, branch, foreach, keyJson, parallel, step } from "../src/workflow.js";

const id = (x: unknown): unknown => x;

test("branch keys are written in the canonical form: compact, non-ASCII as itself, minimal escapes", () => {
  assert.equal(keyJson("café"), '"café"');
  assert.equal(keyJson('a"b\\c\n\u0001/'), '"a\\"b\\\\c\\n\\u0001/"');
  assert.equal(keyJson(3), "3");
  assert.equal(keyJson(-0), "0");
  assert.equal(keyJson(true), "true");
  assert.throws(() => keyJson(1.5), /safe integer/);
  assert.throws(() => keyJson(null), /branch key/);
});

test("a workflow of every kind of node becomes its definition", () => {
  const wf = new Workflow("nested")
    .step("first", id, { compensate: step("undo_first", id, { retry: { maxAttempts: 2 }, timeoutMs: 500 }) })
    .branch("pick", { on: () => 1, cases: [[1, [step("one", id)]], [true, [step("yes", id)]]], default: [step("other", id)] })
    .parallel("both", { left: [step("l", id)], right: [step("r", id)] }, { onError: "collect", into: id })
    .foreach("each", { items: "xs", steps: [step("item", id)], concurrency: 3 });
  const def = wf.toDefinition();
  const [first, pick, both, each] = def.nodes.map((n) => n.kind);
  assert.equal(first?.case, "step");
  assert.equal(first?.case === "step" && first.value.compensation?.name, "undo_first");
  assert.equal(first?.case === "step" && first.value.compensation?.retry?.maxAttempts, 2);
  assert.ok(pick?.case === "branch");
  assert.deepEqual(pick.value.cases.map((c) => c.keyJson), ["1", "true"]);
  assert.equal(pick.value.hasDefault, true);
  assert.ok(both?.case === "parallel");
  assert.deepEqual(both.value.branches.map((b) => b.name), ["left", "right"]);
  assert.equal(both.value.onError, ErrorMode.COLLECT);
  assert.equal(both.value.hasInto, true);
  assert.ok(each?.case === "foreach");
  assert.equal(each.value.concurrency, 3);
  assert.equal(each.value.onError, ErrorMode.FAIL_FAST);
  assert.equal(each.value.hasInto, false);
  assert.equal(wf.getStep("item")?.name, "item");
  assert.equal(wf.getCompensation("undo_first")?.name, "undo_first");
});

test("names must be unique across the whole tree, compensations included; sequences must not be empty", () => {
  assert.throws(
    () => new Workflow("dup").step("a", id).branch("b", { on: id, cases: { x: [step("a", id)] } }),
    /the name "a" is used twice/,
  );
  assert.throws(() => new Workflow("dup2").step("a", id, { compensate: step("a", id) }), /used twice/);
  assert.throws(() => branch("b", { on: id, cases: { x: [] } }), /is empty/);
  assert.throws(() => branch("b", { on: id, cases: [["x", [step("s", id)]], ["x", [step("t", id)]]] }), /two cases/);
  assert.throws(() => parallel("p", {}), /no branches/);
  assert.throws(() => foreach("f", { items: "xs", steps: [], concurrency: 1 }), /is empty/);
  assert.throws(() => foreach("f", { items: "xs", steps: [step("s", id)], concurrency: 0 }), /concurrency/);
  assert.throws(() => new Workflow("bad").step("s", id, { retry: { maxAttempts: 0 } }), /maxAttempts/);
});

test("the walk evaluates branches into their cases and stops at a step, a parallel or a foreach", () => {
  const wf = new Workflow("walk")
    .step("start", id)
    .branch("outer", {
      on: (d: { k: string }) => d.k,
      cases: { in: [branch("inner", { on: () => 2, cases: new Map([[2, [foreach("loop", { items: "xs", steps: [step("s", id)] })]]]) })] },
      default: [step("d", id)],
    })
    .step("end", id);
  const walked = evaluate(wf.layout, "start", { k: "in", xs: [1, 2] }, false);
  assert.deepEqual([...walked.entries()], [
    ["outer", { valueJson: '"in"' }],
    ["inner", { valueJson: "2" }],
    ["loop", { valueJson: "[1,2]" }],
  ]);
  assert.deepEqual([...evaluate(wf.layout, "start", { k: "zz" }, false).keys()], ["outer"]);
  const failed = evaluate(wf.layout, "outer", { k: "in" }, true).get("loop");
  assert.ok(failed !== undefined && "error" in failed);
  assert.equal(wf.layout.nextAfter("s"), undefined);
  assert.equal(wf.layout.nextAfter("d")?.name, "end");
  assert.equal(wf.layout.nextAfter("loop")?.name, "end");
});

test("a child's execution id is uuid5 of '<parent>/<sequence>/<index>', as every SDK derives it", () => {
  assert.equal(childExecutionId("0194A3B2-7c1d-7e8f-9a0b-1c2d3e4f5a6b", 3, 1), "04e667f1-ba37-579d-86bd-677539c0423b");
});
