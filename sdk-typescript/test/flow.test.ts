/** Control flow run by the TypeScript worker against a real orchestrator: branch, parallel, foreach, goto, compensations. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import type { Execution } from "../src/models.js";
import { Worker } from "../src/worker.js";
import { Workflow, branch, foreach, goto, parallel, step } from "../src/workflow.js";
import { address, memoryLogger, unique } from "./helpers.js";

let client: Client;
before(() => {
  client = new Client(address());
});
after(() => client.close());

async function run(wf: Workflow, inputs: unknown[], options: { evaluateAhead?: boolean } = {}): Promise<Execution[]> {
  const worker = new Worker(address(), [wf], { logger: memoryLogger(), ...options });
  await worker.start();
  try {
    const started = await Promise.all(inputs.map((input) => client.start(wf.name, input)));
    const done = await Promise.all(started.map((s) => client.wait(s.executionId, { timeoutMs: 30_000 })));
    return Promise.all(done.map((e) => client.get(e.id, { includeSteps: true })));
  } finally {
    await worker.drain();
  }
}

function kinds(execution: Execution): string[] {
  return execution.steps.map((s) => `${s.kind}:${s.stepName}`);
}

for (const evaluateAhead of [false, true]) {
  const mode = evaluateAhead ? "with evaluations sent ahead" : "answering ROUTE tasks only";

  test(`a branch picks its case by key, falls back to its default, continues after it (${mode})`, async () => {
    const wf = new Workflow(unique("branchy"), { queue: unique("q") })
      .step("classify", (doc: { kind: string; n: number }) => doc)
      .branch("by_kind", {
        on: (doc: { kind: string }) => doc.kind,
        cases: {
          invoice: [step("charge", (d: { n: number }) => ({ ...d, charged: true })), step("ship", (d: object) => ({ ...d, shipped: true }))],
          "café": [step("brew", (d: object) => ({ ...d, brewed: true }))],
          plain: [step("pass", (d: object) => d)],
        },
        default: [step("other", (d: object) => ({ ...d, other: true }))],
      })
      .branch("by_size", {
        on: (d: { n: number }) => d.n > 10,
        cases: new Map([
          [true, [step("big", (d: object) => ({ ...d, big: true }))]],
          [false, [step("small", (d: object) => d)]],
        ]),
      })
      .step("done", (d: object) => ({ ...d, done: true }));
    const [invoice, cafe, unknown, empty] = await run(
      wf,
      [
        { kind: "invoice", n: 20 },
        { kind: "café", n: 1 },
        { kind: "receipt", n: 1 },
        { kind: "plain", n: 11 },
      ],
      { evaluateAhead },
    );
    assert.equal(invoice?.status, "completed", JSON.stringify(invoice?.error));
    assert.deepEqual(invoice?.result, { kind: "invoice", n: 20, charged: true, shipped: true, big: true, done: true });
    assert.deepEqual(cafe?.result, { kind: "café", n: 1, brewed: true, done: true });
    assert.deepEqual(unknown?.result, { kind: "receipt", n: 1, other: true, done: true });
    assert.deepEqual(empty?.result, { kind: "plain", n: 11, big: true, done: true });
    const routes = kinds(invoice!).filter((k) => k.startsWith("route"));
    assert.deepEqual(routes, evaluateAhead ? [] : ["route:by_kind", "route:by_size"]);
  });

  test(`parallel branches run from the group's input; into merges them, collect records failures (${mode})`, async () => {
    const wf = new Workflow(unique("para"), { queue: unique("q") })
      .parallel("checks", {
        fraud: [step("fraud_check", (o: { amount: number }) => ({ risky: o.amount > 100 }))],
        stock: [step("stock_check", (o: { amount: number }) => ({ inStock: true, amount: o.amount })), step("reserve", () => "reserved")],
      })
      .parallel(
        "tolerant",
        {
          good: [step("good", () => "fine")],
          bad: [
            step("bad", () => {
              throw new RangeError("no stock");
            }),
          ],
        },
        { onError: "collect" },
      )
      .parallel(
        "merged",
        { a: [step("a", () => 1)], b: [step("b", () => 2)] },
        { into: (data: unknown, results: Record<string, { ok: boolean; value: number }>, ctx) => ({ data, sum: results.a!.value + results.b!.value, kind: ctx.kind }) },
      );
    const [done] = await run(wf, [{ amount: 150 }], { evaluateAhead });
    assert.equal(done?.status, "completed", JSON.stringify(done?.error));
    const result = done?.result as { data: Record<string, { ok: boolean; value?: unknown; error?: { type: string } }>; sum: number; kind: string };
    assert.equal(result.sum, 3);
    assert.equal(result.kind, "into");
    assert.deepEqual(result.data.good, { ok: true, value: "fine" });
    assert.equal(result.data.bad?.ok, false);
    assert.equal(result.data.bad?.error?.type, "RangeError");
    const lanes = done!.steps.filter((s) => s.stepName === "reserve").map((s) => s.lanePath);
    assert.deepEqual(lanes, ["checks/stock"]);
  });

  test(`foreach runs its body per item with a concurrency limit; into and collect (${mode})`, async () => {
    let active = 0;
    let most = 0;
    const wf = new Workflow(unique("each"), { queue: unique("q") })
      .foreach("square", {
        items: "numbers",
        concurrency: 2,
        steps: [
          step("slow_square", async (n: number) => {
            active += 1;
            most = Math.max(most, active);
            await new Promise((r) => setTimeout(r, 20));
            active -= 1;
            return n * n;
          }),
        ],
      })
      .foreach("halves", {
        items: (squares: number[]) => squares,
        onError: "collect",
        steps: [
          step("half", (n: number) => {
            if (n % 2 === 1) throw new RangeError(`${n} is odd`);
            return n / 2;
          }),
        ],
        into: (_data: unknown, results: { ok: boolean; value?: number }[]) => results.map((r) => (r.ok ? r.value : null)),
      })
      .foreach("none", { items: () => [], steps: [step("never", () => "never")] });
    const [done] = await run(wf, [{ numbers: [1, 2, 3, 4, 5] }], { evaluateAhead });
    assert.equal(done?.status, "completed", JSON.stringify(done?.error));
    assert.deepEqual(done?.result, []);
    const halves = done!.steps.find((s) => s.kind === "into" && s.stepName === "halves");
    assert.deepEqual(halves?.result, [null, 2, null, 8, null]);
    assert.ok(most <= 2, `at most 2 items at once, saw ${most}`);
    const lanes = done!.steps.filter((s) => s.stepName === "slow_square").map((s) => s.lanePath).sort();
    assert.deepEqual(lanes, ["square/0", "square/1", "square/2", "square/3", "square/4"]);
  });
}

test("a failing foreach item fails a fail-fast group and the execution", async () => {
  const wf = new Workflow(unique("failfast"), { queue: unique("q") }).foreach("each", {
    items: (xs: number[]) => xs,
    steps: [
      step("check", (n: number) => {
        if (n === 2) throw new TypeError("two is bad");
        return n;
      }),
    ],
  });
  const [done] = await run(wf, [[1, 2, 3]]);
  assert.equal(done?.status, "failed");
  assert.equal(done?.error?.type, "ForeachFailed");
});

test("a branch key function that throws fails the branch (BranchError); no match without a default is BranchNoMatch", async () => {
  const wf = new Workflow(unique("badkey"), { queue: unique("q") }).branch("pick", {
    on: (d: { kind?: string }) => {
      if (d.kind === undefined) throw new Error("no kind");
      return d.kind;
    },
    cases: { a: [step("a", () => "a")] },
  });
  const [thrown, nomatch] = await run(wf, [{}, { kind: "z" }]);
  assert.equal(thrown?.status, "failed");
  assert.equal(thrown?.error?.type, "BranchError");
  assert.match(thrown?.error?.message ?? "", /no kind/);
  assert.equal(nomatch?.status, "failed");
  assert.equal(nomatch?.error?.type, "BranchNoMatch");
});

test("goto loops back within the sequence; a goto out of it fails with GotoError", async () => {
  const wf = new Workflow(unique("loop"), { queue: unique("q"), maxStepRuns: 50 })
    .step("start", (n: number) => ({ n, seen: [] as number[] }))
    .step("count", (d: { n: number; seen: number[] }) => {
      const next = { n: d.n - 1, seen: [...d.seen, d.n] };
      return next.n > 0 ? goto("count", next) : next;
    })
    .branch("after", {
      on: (d: { seen: number[] }) => d.seen.length > 5,
      cases: new Map([[true, [step("escape", () => goto("start", 1))]]]),
      default: [step("stay", (d: unknown) => d)],
    });
  const [looped, escaped] = await run(wf, [3, 6]);
  assert.equal(looped?.status, "completed", JSON.stringify(looped?.error));
  assert.deepEqual(looped?.result, { n: 0, seen: [3, 2, 1] });
  assert.equal(escaped?.status, "failed");
  assert.equal(escaped?.error?.type, "GotoError");
});

test("a failure after completed steps runs their compensations, newest first, with their results", async () => {
  const undone: unknown[] = [];
  const wf = new Workflow(unique("saga"), { queue: unique("q") })
    .step("reserve", (o: { id: number }) => ({ reservation: `r${o.id}` }), {
      compensate: step("release", (r: { reservation: string }, ctx) => {
        undone.push(["release", r, ctx.kind]);
        return "released";
      }),
    })
    .step("charge", (r: { reservation: string }) => ({ ...r, payment: "p1" }), {
      compensate: step("refund", (p: { payment: string }) => {
        undone.push(["refund", p.payment]);
      }),
    })
    .step("ship", () => {
      throw new Error("no courier");
    });
  const [done] = await run(wf, [{ id: 7 }]);
  assert.equal(done?.status, "compensated", JSON.stringify(done?.error));
  assert.deepEqual(undone, [
    ["refund", "p1"],
    ["release", { reservation: "r7" }, "compensation"],
  ]);
  assert.deepEqual(
    done!.steps.filter((s) => s.kind === "compensation").map((s) => [s.stepName, s.status]),
    [
      ["refund", "completed"],
      ["release", "completed"],
    ],
  );
});

test("a compensation that fails for good ends the execution compensation_failed", async () => {
  const wf = new Workflow(unique("sagafail"), { queue: unique("q") })
    .step("reserve", () => "r", {
      compensate: step("release", () => {
        throw new Error("cannot release");
      }),
    })
    .step("boom", () => {
      throw new Error("boom");
    });
  const [done] = await run(wf, [null]);
  assert.equal(done?.status, "compensation_failed");
});
