/**
 * The TypeScript adapter: the scenarios' workflows built with the TypeScript SDK, run by
 * its Worker until SIGTERM. Built by `tsc -p conformance/tsconfig.json` (after the SDK's
 * own build) into conformance/build/, then:
 *
 *     DURABLE_ADDRESS=127.0.0.1:7411 node conformance/build/typescript_worker.js
 *
 * Environment (as the Python adapter's):
 * - CONFORMANCE_PREFIX (default "ts"), CONFORMANCE_PEER_PREFIX (default "py"): the first
 *   part of this language's and the other language's workflow names;
 * - CONFORMANCE_SCENARIOS: comma-separated scenario names to build (default: all);
 * - CONFORMANCE_STEP_LOG: a file to which every step run appends one JSON line;
 * - CONFORMANCE_WORKER_ID, CONFORMANCE_CONCURRENCY: the worker's id and concurrency.
 *
 * A workflow this adapter cannot build with the SDK (a construct it does not support
 * yet) is left out, with a line saying why; typescript_unsupported.json lists the
 * scenarios that fail for that reason, and the test driver expects them to fail.
 */
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { NonRetryableError, Worker, Workflow } from "../../sdk-typescript/dist/index.js";
import type { RetryPolicy, StepContext, StepOptions } from "../../sdk-typescript/dist/index.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Value = { [key: string]: Json };
type Op = { op: string; field?: string; attempts?: number[]; when?: Record<string, Json> } & Record<string, Json | undefined>;
type Node = Record<string, unknown>;
interface WorkflowSpec {
  nodes: Node[];
  timeout_ms?: number;
  max_step_runs?: number;
}
interface Scenario {
  workflow: WorkflowSpec;
  children?: Record<string, WorkflowSpec>;
}

const PREFIX = process.env.CONFORMANCE_PREFIX || "ts";
const STEP_LOG = process.env.CONFORMANCE_STEP_LOG ?? "";
const SCENARIO_DIR = new URL("../scenarios/", import.meta.url);

/** A construct of the scenario format that this adapter cannot build yet. */
class Unsupported extends Error {}

/** The ops a step can run here; the others (goto, waits, child calls) are Unsupported. */
const OPS = new Set(["append", "set", "add", "mul", "record", "fail", "sleep"]);

// -- ops -------------------------------------------------------------------------------

function logRun(ctx: StepContext, event: "start" | "end"): void {
  if (!STEP_LOG) return;
  const line = {
    event,
    pid: process.pid,
    execution_id: ctx.executionId,
    sequence: ctx.sequence,
    attempt: ctx.attempt,
    step: ctx.stepName,
    lane: "",
    key: ctx.idempotencyKey,
    time: Date.now() / 1000,
  };
  appendFileSync(STEP_LOG, `${JSON.stringify(line)}\n`);
}

/** An error whose name is the scenario's type (the error type the worker reports). */
function scenarioError(op: Op): Error {
  const message = typeof op.message === "string" ? op.message : `${String(op.type)} raised by the scenario`;
  const error = op.non_retryable ? new NonRetryableError(message) : new Error(message);
  error.name = String(op.type);
  return error;
}

function applies(op: Op, value: Value, ctx: StepContext): boolean {
  if (op.attempts !== undefined && !op.attempts.includes(ctx.attempt)) return false;
  const when = op.when;
  if (when === undefined) return true;
  const actual = value[String(when.field)];
  if ("eq" in when) return JSON.stringify(actual) === JSON.stringify(when.eq);
  if ("ne" in when) return JSON.stringify(actual) !== JSON.stringify(when.ne);
  return (actual as number) < (when.lt as number);
}

/** What `record` can read from the context here (the SDK's StepContext has no lane path yet). */
const RECORDABLE = new Set(["attempt", "sequence", "idempotency_key", "step_name", "execution_id"]);

function contextValue(ctx: StepContext, name: string): Json {
  const values: Record<string, Json> = {
    attempt: ctx.attempt,
    sequence: ctx.sequence,
    idempotency_key: ctx.idempotencyKey,
    step_name: ctx.stepName,
    execution_id: ctx.executionId,
  };
  return values[name] ?? null;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

async function apply(ops: Op[], input: Value, ctx: StepContext): Promise<Value> {
  let value = input;
  for (const op of ops) {
    if (!applies(op, value, ctx)) continue;
    const field = op.field ?? "trail";
    switch (op.op) {
      case "append":
        value = { ...value, [field]: [...((value[field] as Json[] | undefined) ?? []), op.value as Json] };
        break;
      case "set":
        value = { ...value, [field]: op.value as Json };
        break;
      case "add":
        value = { ...value, [field]: ((value[field] as number | undefined) ?? 0) + (op.value as number) };
        break;
      case "mul":
        value = { ...value, [field]: ((value[field] as number | undefined) ?? 0) * (op.value as number) };
        break;
      case "record":
        value = { ...value, [field]: contextValue(ctx, String(op.from)) };
        break;
      case "fail":
        throw scenarioError(op);
      case "sleep":
        await sleep(op.ms as number, ctx.signal);
        break;
      default:
        throw new Unsupported(`op ${JSON.stringify(op.op)}`);
    }
  }
  return value;
}

function runner(ops: Op[]): (input: Value, ctx: StepContext) => Promise<Value> {
  return async (input, ctx) => {
    logRun(ctx, "start");
    try {
      return await apply(ops, input, ctx);
    } finally {
      logRun(ctx, "end");
    }
  };
}

// -- nodes -----------------------------------------------------------------------------

function retryPolicy(spec: Record<string, Json> | undefined): RetryPolicy | undefined {
  if (spec === undefined) return undefined;
  return {
    maxAttempts: (spec.max_attempts as number | undefined) ?? 3,
    backoff: (spec.backoff as RetryPolicy["backoff"]) ?? "fixed",
    initialDelayMs: (spec.initial_delay_ms as number | undefined) ?? 0,
    maxDelayMs: (spec.max_delay_ms as number | undefined) ?? 0,
    multiplier: (spec.multiplier as number | undefined) ?? 2,
    jitter: (spec.jitter as number | undefined) ?? 0,
    nonRetryableErrors: (spec.non_retryable_errors as string[] | undefined) ?? [],
  };
}

function addStep(wf: Workflow, node: Node): void {
  if ("compensate" in node) throw new Unsupported("compensations");
  const ops = (node.do as Op[] | undefined) ?? [];
  for (const op of ops) {
    if (!OPS.has(op.op)) throw new Unsupported(`op ${JSON.stringify(op.op)}`);
    if (op.op === "record" && !RECORDABLE.has(String(op.from))) throw new Unsupported(`record from ${JSON.stringify(op.from)}`);
  }
  const options: StepOptions = {};
  const retry = retryPolicy(node.retry as Record<string, Json> | undefined);
  if (retry !== undefined) options.retry = retry;
  if (typeof node.timeout_ms === "number") options.timeoutMs = node.timeout_ms;
  wf.step(String(node.step), runner(ops), options);
}

function buildWorkflow(scenario: string, name: string, spec: WorkflowSpec): Workflow {
  const wf = new Workflow(name, {
    queue: `${PREFIX}.${scenario}`,
    ...(spec.timeout_ms !== undefined ? { timeoutMs: spec.timeout_ms } : {}),
    ...(spec.max_step_runs !== undefined ? { maxStepRuns: spec.max_step_runs } : {}),
  });
  for (const node of spec.nodes) {
    if ("step" in node) addStep(wf, node);
    else if ("branch" in node) throw new Unsupported("branch nodes");
    else if ("parallel" in node) throw new Unsupported("parallel nodes");
    else if ("foreach" in node) throw new Unsupported("foreach nodes");
    else throw new Error(`scenario ${scenario}: a node without step/branch/parallel/foreach`);
  }
  return wf;
}

/** The workflows of the selected scenarios (all when none is named), children included. */
function buildAll(selected: string[]): Workflow[] {
  const workflows: Workflow[] = [];
  const files = readdirSync(SCENARIO_DIR).filter((f) => f.endsWith(".json")).sort();
  for (const file of files) {
    const scenario = file.slice(0, -".json".length);
    if (selected.length > 0 && !selected.includes(scenario)) continue;
    const data = JSON.parse(readFileSync(new URL(file, SCENARIO_DIR), "utf8")) as Scenario;
    const specs: [string, WorkflowSpec][] = [
      [`${PREFIX}.${scenario}`, data.workflow],
      ...Object.entries(data.children ?? {}).map(([child, spec]): [string, WorkflowSpec] => [
        `${PREFIX}.${scenario}.${child}`,
        spec,
      ]),
    ];
    for (const [name, spec] of specs) {
      try {
        workflows.push(buildWorkflow(scenario, name, spec));
      } catch (err) {
        if (!(err instanceof Unsupported)) throw err;
        console.log(`conformance: not building ${name}: ${err.message} not supported by this adapter yet`);
      }
    }
  }
  return workflows;
}

const address = process.env.DURABLE_ADDRESS;
if (!address) throw new Error("DURABLE_ADDRESS is not set");
const selected = (process.env.CONFORMANCE_SCENARIOS ?? "").split(",").filter((s) => s !== "");
const concurrency = Number(process.env.CONFORMANCE_CONCURRENCY || "8");
await new Worker(address, buildAll(selected), {
  concurrency,
  ...(process.env.CONFORMANCE_WORKER_ID ? { workerId: process.env.CONFORMANCE_WORKER_ID } : {}),
  logger: { info: (m) => console.log(m), warn: (m) => console.log(m), error: (m) => console.error(m) },
}).run();
