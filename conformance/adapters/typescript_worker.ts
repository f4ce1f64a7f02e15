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
 * - CONFORMANCE_STEP_LOG: a file to which every run of a step, into or compensation
 *   appends one JSON line (event "start" then "end", with the process id, the execution,
 *   sequence, attempt, step name, lane and idempotency key);
 * - CONFORMANCE_WORKER_ID, CONFORMANCE_CONCURRENCY: the worker's id and concurrency.
 *
 * Every construct is built as the Python adapter builds it, with the same names and ops.
 */
import { appendFileSync, readdirSync, readFileSync } from "node:fs";
import { NonRetryableError, Worker, Workflow, branch, foreach, goto, parallel, step } from "../../sdk-typescript/dist/index.js";
import type {
  BranchKey,
  Goto,
  GroupOptions,
  Node as SdkNode,
  RetryPolicy,
  StepContext,
  StepOptions,
} from "../../sdk-typescript/dist/index.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Value = { [key: string]: Json };
type Op = { op: string; field?: string; attempts?: number[]; when?: Record<string, Json> } & Record<string, Json | undefined>;
type Node = Record<string, unknown>;
interface IntoSpec {
  field?: string;
  do?: Op[];
}
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
const PEER_PREFIX = process.env.CONFORMANCE_PEER_PREFIX || "py";
const STEP_LOG = process.env.CONFORMANCE_STEP_LOG ?? "";
const SCENARIO_DIR = new URL("../scenarios/", import.meta.url);

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
    lane: ctx.lanePath,
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

function contextValue(ctx: StepContext, name: string): Json {
  const values: Record<string, Json> = {
    attempt: ctx.attempt,
    sequence: ctx.sequence,
    idempotency_key: ctx.idempotencyKey,
    step_name: ctx.stepName,
    lane_path: ctx.lanePath,
    execution_id: ctx.executionId,
  };
  const value = values[name];
  if (value === undefined) throw new Error(`record from ${JSON.stringify(name)}: no such context value`);
  return value;
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

function childName(scenario: string, op: Op): string {
  return `${op.peer ? PEER_PREFIX : PREFIX}.${scenario}.${String(op.workflow)}`;
}

/** Run `ops` on `input`: the step's result (or a goto). */
async function apply(scenario: string, ops: Op[], input: Value, ctx: StepContext): Promise<Value | Goto> {
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
      case "goto":
        return goto(String(op.target), value);
      case "durable_sleep":
        await ctx.sleep(op.ms as number);
        break;
      case "wait_event": {
        const options = {
          ...(op.timeout_ms !== undefined ? { timeoutMs: op.timeout_ms as number } : {}),
          ...("timeout_value" in op ? { timeoutValue: op.timeout_value } : {}),
        };
        value = { ...value, [field]: await ctx.waitForEvent<Json>(String(op.name), options) };
        break;
      }
      case "call_child":
        value = { ...value, [field]: await ctx.callWorkflow<Json>(childName(scenario, op), value) };
        break;
      default:
        throw new Error(`scenario ${scenario}: unknown op ${JSON.stringify(op.op)}`);
    }
  }
  return value;
}

function runner(scenario: string, ops: Op[]): (input: Value, ctx: StepContext) => Promise<Value | Goto> {
  return async (input, ctx) => {
    logRun(ctx, "start");
    try {
      return await apply(scenario, ops, input, ctx);
    } finally {
      logRun(ctx, "end");
    }
  };
}

interface Outcome {
  ok: boolean;
  value?: Json;
  error?: { type: string };
}

/** Lane outcomes with each error cut to its type: what a scenario can expect exactly. */
function outcomes(results: Outcome[] | Record<string, Outcome>): Json {
  const one = (outcome: Outcome): Json => (outcome.ok ? (outcome.value ?? null) : { error: outcome.error?.type ?? null });
  if (Array.isArray(results)) return results.map(one);
  return Object.fromEntries(Object.entries(results).map(([lane, outcome]) => [lane, one(outcome)]));
}

function intoMerge(scenario: string, spec: IntoSpec): NonNullable<GroupOptions["into"]> {
  return async (data: Value, results: Outcome[] | Record<string, Outcome>, ctx: StepContext) => {
    logRun(ctx, "start");
    try {
      const merged = { ...data, [spec.field ?? "results"]: outcomes(results) };
      return await apply(scenario, spec.do ?? [], merged, ctx);
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

function stepOptions(scenario: string, node: Node): StepOptions {
  const options: StepOptions = {};
  const retry = retryPolicy(node.retry as Record<string, Json> | undefined);
  if (retry !== undefined) options.retry = retry;
  if (typeof node.timeout_ms === "number") options.timeoutMs = node.timeout_ms;
  if (node.compensate !== undefined) {
    const comp = node.compensate as Node;
    options.compensate = step(String(comp.step), runner(scenario, (comp.do as Op[] | undefined) ?? []), stepOptions(scenario, comp));
  }
  return options;
}

function groupOptions(scenario: string, node: Node): GroupOptions {
  const options: GroupOptions = { onError: (node.on_error as GroupOptions["onError"]) ?? "fail_fast" };
  if (node.into !== undefined) options.into = intoMerge(scenario, node.into as IntoSpec);
  return options;
}

function nested(scenario: string, nodes: Node[]): SdkNode[] {
  return nodes.map((node) => buildNode(scenario, node));
}

/** A node of a scenario, built with the SDK's node functions. */
function buildNode(scenario: string, node: Node): SdkNode {
  if ("step" in node) {
    return step(String(node.step), runner(scenario, (node.do as Op[] | undefined) ?? []), stepOptions(scenario, node));
  }
  if ("branch" in node) {
    const field = String(node.on);
    const cases = node.cases as { key: BranchKey; nodes: Node[] }[];
    const fallback = node.default as Node[] | undefined;
    return branch(String(node.branch), {
      on: (data: Value) => data[field],
      cases: cases.map((c): [BranchKey, SdkNode[]] => [c.key, nested(scenario, c.nodes)]),
      ...(fallback !== undefined ? { default: nested(scenario, fallback) } : {}),
    });
  }
  if ("parallel" in node) {
    const lanes = Object.fromEntries(
      Object.entries(node.branches as Record<string, Node[]>).map(([lane, nodes]) => [lane, nested(scenario, nodes)]),
    );
    return parallel(String(node.parallel), lanes, groupOptions(scenario, node));
  }
  if ("foreach" in node) {
    return foreach(String(node.foreach), {
      items: String(node.items),
      steps: nested(scenario, node.steps as Node[]),
      concurrency: (node.concurrency as number | undefined) ?? 10,
      ...groupOptions(scenario, node),
    });
  }
  throw new Error(`scenario ${scenario}: a node without step/branch/parallel/foreach: ${JSON.stringify(node)}`);
}

function buildWorkflow(scenario: string, name: string, spec: WorkflowSpec): Workflow {
  const wf = new Workflow(name, {
    queue: `${PREFIX}.${scenario}`,
    ...(spec.timeout_ms !== undefined ? { timeoutMs: spec.timeout_ms } : {}),
    ...(spec.max_step_runs !== undefined ? { maxStepRuns: spec.max_step_runs } : {}),
  });
  for (const node of spec.nodes) wf.add(buildNode(scenario, node));
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
    workflows.push(buildWorkflow(scenario, `${PREFIX}.${scenario}`, data.workflow));
    for (const [child, spec] of Object.entries(data.children ?? {})) {
      workflows.push(buildWorkflow(scenario, `${PREFIX}.${scenario}.${child}`, spec));
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
