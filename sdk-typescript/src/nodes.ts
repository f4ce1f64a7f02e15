/**
 * The nodes a workflow is made of: steps, branches, parallel groups and foreach loops.
 *
 * A workflow is a sequence of nodes; a branch case, a parallel branch and a foreach body
 * are sequences of their own, so nodes nest. Build nested nodes with these functions and
 * place them in the lists of another node:
 *
 *     const charge = step("charge", chargeCard, { retry: { maxAttempts: 3 }, compensate: step("refund", refund) });
 *     wf.branch("by_kind", { on: (d) => d.kind, cases: { invoice: [charge, step("ship", ship)] } });
 *     wf.parallel("checks", { fraud: [step("fraud_check", fraud)], stock: [step("stock_check", stock)] });
 *     wf.foreach("notify", { items: "users", steps: [step("send_email", send)], concurrency: 50 });
 *
 * Nodes are plain frozen data; mistakes throw TypeError here, at definition time.
 */
import type { StepContext } from "./context.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
/** The rule of every name (workflows, steps, queues, events, inputs), as the orchestrator's. */
export const NAME_RULE =
  "use 1-128 characters from ASCII letters, digits, '_', '-', '.', starting with a letter or '_'";

/** Return `name` if it is a valid workflow, step, queue, event or input name; else throw. */
export function checkName(kind: string, name: string): string {
  if (typeof name !== "string" || !NAME.test(name)) {
    throw new TypeError(`${kind} name ${JSON.stringify(name)} is invalid: ${NAME_RULE}`);
  }
  return name;
}

/** How often and how soon a failed step runs again (defaults as the Python SDK's). */
export interface RetryPolicy {
  /** Total attempts including the first (default 3; 1 means no retry). */
  maxAttempts?: number;
  /** "fixed", "linear" or "exponential" (default). */
  backoff?: "fixed" | "linear" | "exponential";
  /** Delay before the first retry (default 1 s). */
  initialDelayMs?: number;
  /** Upper bound on any delay (default 5 min). */
  maxDelayMs?: number;
  /** Growth factor for exponential backoff (default 2). */
  multiplier?: number;
  /** Random spread as a fraction of the delay, 0..1 (default 0.2). */
  jitter?: number;
  /** Error names (`err.name`) that are never retried. */
  nonRetryableErrors?: string[];
}

/** A step function: receives the previous node's output (the input, for the first). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StepFunction = (input: any, ctx: StepContext) => unknown;

/** An into merge: the group's input and the lanes' outcomes, to the group's output. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type IntoFunction = (data: any, results: any, ctx: StepContext) => unknown;

/** A branch key or foreach items function: plain (not async) user code of the input. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KeyFunction = (input: any) => unknown;

export interface StepOptions {
  /** Unset means one attempt, no retry. */
  retry?: RetryPolicy;
  /** Per-attempt timeout in ms; unset means none. */
  timeoutMs?: number;
  /**
   * Run with this step's result to undo it when the execution fails for good later
   * (the saga pattern): a step node, e.g. `step("refund", refund)`, with its own
   * name (unique in the workflow), retry policy and timeout.
   */
  compensate?: StepNode;
}

export interface StepNode {
  readonly kind: "step";
  readonly name: string;
  readonly fn: StepFunction;
  readonly options: Readonly<Omit<StepOptions, "compensate">>;
  readonly compensation: StepNode | undefined;
}

/** A branch case key: a string, an integer or a boolean (compared as compact JSON). */
export type BranchKey = string | number | boolean;

/** What a failing lane does: "fail_fast" fails the group, "collect" records it. */
export type ErrorMode = "fail_fast" | "collect";

export interface BranchCase {
  readonly key: BranchKey;
  readonly keyJson: string;
  readonly nodes: readonly Node[];
}

export interface BranchNode {
  readonly kind: "branch";
  readonly name: string;
  readonly on: KeyFunction;
  readonly cases: readonly BranchCase[];
  /** Undefined: no default (a key without a case fails with BranchNoMatch). */
  readonly default: readonly Node[] | undefined;
}

export interface ParallelLane {
  readonly name: string;
  readonly nodes: readonly Node[];
}

export interface ParallelNode {
  readonly kind: "parallel";
  readonly name: string;
  readonly branches: readonly ParallelLane[];
  readonly onError: ErrorMode;
  readonly into: IntoFunction | undefined;
}

export interface ForeachNode {
  readonly kind: "foreach";
  readonly name: string;
  readonly items: KeyFunction | string;
  readonly nodes: readonly Node[];
  readonly concurrency: number;
  readonly onError: ErrorMode;
  readonly into: IntoFunction | undefined;
}

export type Node = StepNode | BranchNode | ParallelNode | ForeachNode;

/** Foreach lanes running at the same time, at most, unless told otherwise. */
export const DEFAULT_CONCURRENCY = 10;

export function checkDuration(what: string, ms: number, positive: boolean): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || (positive && ms === 0)) {
    throw new TypeError(`${what} must be a ${positive ? "positive" : "non-negative"} number of ms, got ${ms}`);
  }
  return ms;
}

function checkErrorMode(onError: unknown, what: string): ErrorMode {
  if (onError === undefined) return "fail_fast";
  if (onError === "fail_fast" || onError === "collect") return onError;
  throw new TypeError(`${what}: onError must be "fail_fast" or "collect", got ${JSON.stringify(onError)}`);
}

function checkFunction<T>(fn: T, what: string): T {
  if (typeof fn !== "function") throw new TypeError(`${what} must be a function, got ${typeof fn}`);
  return fn;
}

function checkNodes(nodes: readonly Node[], what: string, allowEmpty: boolean): readonly Node[] {
  if (!Array.isArray(nodes)) throw new TypeError(`${what} must be a list of nodes made by step(), branch(), parallel() or foreach()`);
  for (const node of nodes) {
    if (node === null || typeof node !== "object" || !["step", "branch", "parallel", "foreach"].includes((node as Node).kind)) {
      throw new TypeError(`${what} must hold nodes made by step(), branch(), parallel() or foreach(), got ${typeof node}`);
    }
  }
  if (!allowEmpty && nodes.length === 0) throw new TypeError(`${what} is empty`);
  return Object.freeze([...nodes]);
}

/**
 * A branch key as compact JSON, in the canonical form every SDK writes (no whitespace,
 * integers as plain digits, strings with only the escapes JSON requires, non-ASCII as
 * itself): the text the orchestrator compares keys as. One writer for definitions and
 * evaluations alike.
 */
export function keyJson(key: unknown): string {
  if (typeof key === "string" || typeof key === "boolean") return JSON.stringify(key);
  if (typeof key === "number" && Number.isSafeInteger(key)) return JSON.stringify(key === 0 ? 0 : key);
  const shown = typeof key === "number" ? String(key) : typeof key;
  throw new TypeError(`a branch key must be a string, a safe integer or a boolean, got ${shown}`);
}

/** A step node, to place in a branch case, a parallel branch or a foreach body. */
export function step(name: string, fn: StepFunction, options: StepOptions = {}): StepNode {
  return makeStep("step", name, fn, options);
}

export function makeStep(kind: "step" | "compensation", name: string, fn: StepFunction, options: StepOptions): StepNode {
  checkName(kind, name);
  checkFunction(fn, `${kind} ${name}`);
  if (options.timeoutMs !== undefined) checkDuration(`${kind} ${name}: timeoutMs`, options.timeoutMs, true);
  const { compensate, ...rest } = options;
  let compensation: StepNode | undefined;
  if (compensate !== undefined) {
    if (kind === "compensation") throw new TypeError(`compensation ${name}: a compensation cannot have a compensation`);
    if (compensate === null || typeof compensate !== "object" || compensate.kind !== "step") {
      throw new TypeError(`step ${name}: compensate must be a step node, e.g. step("refund", refund)`);
    }
    if (compensate.compensation !== undefined) {
      throw new TypeError(`step ${name}: its compensation ${compensate.name} cannot have a compensation`);
    }
    compensation = compensate;
  }
  return Object.freeze({ kind: "step", name, fn, options: Object.freeze({ ...rest }), compensation });
}

export interface BranchSpec {
  /** A plain function of the input returning a string, integer or boolean key. */
  on: KeyFunction;
  /**
   * Key -> the nodes to run for it (at least one). An object's keys are string keys; for integer or
   * boolean keys give a Map or a list of [key, nodes] pairs.
   */
  cases: Record<string, readonly Node[]> | ReadonlyMap<BranchKey, readonly Node[]> | readonly (readonly [BranchKey, readonly Node[]])[];
  /** The nodes to run when no key matches. */
  default?: readonly Node[];
}

/** A node that runs one case, chosen by the key `on(input)` returns, with the branch's input. */
export function branch(name: string, spec: BranchSpec): BranchNode {
  checkName("branch", name);
  const what = `branch ${name}`;
  checkFunction(spec.on, `${what}: on`);
  const pairs: (readonly [BranchKey, readonly Node[]])[] =
    spec.cases instanceof Map
      ? [...spec.cases.entries()]
      : Array.isArray(spec.cases)
        ? [...(spec.cases as readonly (readonly [BranchKey, readonly Node[]])[])]
        : Object.entries(spec.cases as Record<string, readonly Node[]>);
  if (pairs.length === 0) throw new TypeError(`${what} has no cases`);
  const cases: BranchCase[] = [];
  const seen = new Set<string>();
  for (const [key, nodes] of pairs) {
    const text = keyJson(key);
    if (seen.has(text)) throw new TypeError(`${what} has two cases with the key ${text}`);
    seen.add(text);
    cases.push(Object.freeze({ key, keyJson: text, nodes: checkNodes(nodes, `${what} case ${text}`, false) }));
  }
  const node: BranchNode = Object.freeze({
    kind: "branch",
    name,
    on: spec.on,
    cases: Object.freeze(cases),
    default: spec.default === undefined ? undefined : checkNodes(spec.default, `${what} default`, false),
  });
  checkUnique([node], new Map(), what);
  return node;
}

export interface GroupOptions {
  /** `into(data, results[, ctx])` merges the outcomes into the group's output. */
  into?: IntoFunction;
  /**
   * "fail_fast" (default): the first lane failing for good fails the group;
   * "collect": every lane runs to its end, each result `{ok: true, value}` or `{ok: false, error}`.
   */
  onError?: ErrorMode;
}

/** A node whose branches (name -> nodes) run at the same time, each from the group's input. */
export function parallel(name: string, branches: Record<string, readonly Node[]>, options: GroupOptions = {}): ParallelNode {
  checkName("parallel", name);
  const what = `parallel ${name}`;
  if (branches === null || typeof branches !== "object") throw new TypeError(`${what}: branches must be an object of name -> nodes`);
  const lanes: ParallelLane[] = [];
  for (const [lane, nodes] of Object.entries(branches)) {
    checkName("parallel branch", lane);
    lanes.push(Object.freeze({ name: lane, nodes: checkNodes(nodes, `${what} branch ${lane}`, false) }));
  }
  if (lanes.length === 0) throw new TypeError(`${what} has no branches`);
  const node: ParallelNode = Object.freeze({
    kind: "parallel",
    name,
    branches: Object.freeze(lanes),
    onError: checkErrorMode(options.onError, what),
    into: options.into === undefined ? undefined : checkFunction(options.into, `${what}: into`),
  });
  checkUnique([node], new Map(), what);
  return node;
}

export interface ForeachSpec extends GroupOptions {
  /** A plain function of the input returning an array, or a key of the input object. */
  items: KeyFunction | string;
  /** The body; its first node receives the item. */
  steps: readonly Node[];
  /** Lanes running at the same time, at most (default 10). */
  concurrency?: number;
}

/** A node that runs `steps` once per item of a list, each item its own lane. */
export function foreach(name: string, spec: ForeachSpec): ForeachNode {
  checkName("foreach", name);
  const what = `foreach ${name}`;
  if (typeof spec.items === "string") {
    if (spec.items === "") throw new TypeError(`${what}: items must be a function or a non-empty key`);
  } else {
    checkFunction(spec.items, `${what}: items`);
  }
  const concurrency = spec.concurrency ?? DEFAULT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 2 ** 31 - 1) {
    throw new TypeError(`${what}: concurrency must be an integer >= 1, got ${concurrency}`);
  }
  const node: ForeachNode = Object.freeze({
    kind: "foreach",
    name,
    items: spec.items,
    nodes: checkNodes(spec.steps, `${what} steps`, false),
    concurrency,
    onError: checkErrorMode(spec.onError, what),
    into: spec.into === undefined ? undefined : checkFunction(spec.into, `${what}: into`),
  });
  checkUnique([node], new Map(), what);
  return node;
}

/** A step's (or an into merge's) result that jumps: execution continues at `target` with `data`. */
export class Goto {
  readonly target: string;
  readonly data: unknown;
  constructor(target: string, data: unknown = null) {
    this.target = checkName("goto target", target);
    this.data = data;
  }
}

/**
 * Return this from a step to continue at the node named `target` with `data`. The target
 * must be in the same sequence as the step (forward or back: a loop is a goto back); for
 * an into merge, in its group's sequence (the group itself included). A compensation
 * cannot jump. `maxStepRuns` on the workflow bounds the loops.
 */
export function goto(target: string, data: unknown = null): Goto {
  return new Goto(target, data);
}

/** The nodes directly inside `node` (its lanes' and cases' nodes), by sequence. */
export function sequencesOf(node: Node): (readonly Node[])[] {
  switch (node.kind) {
    case "step":
      return [];
    case "branch":
      return [...node.cases.map((c) => c.nodes), ...(node.default === undefined ? [] : [node.default])];
    case "parallel":
      return node.branches.map((b) => b.nodes);
    case "foreach":
      return [node.nodes];
  }
}

/** Every name in `nodes` and below them (compensations included), checked unique. */
export function checkUnique(nodes: readonly Node[], seen: Map<string, string>, owner: string): void {
  const add = (name: string, what: string): void => {
    const before = seen.get(name);
    if (before !== undefined) {
      throw new TypeError(
        `${owner}: the name ${JSON.stringify(name)} is used twice: ${before} and ${what} ` +
          "(every step, compensation and node needs its own name)",
      );
    }
    seen.set(name, what);
  };
  for (const node of nodes) {
    add(node.name, node.kind);
    if (node.kind === "step" && node.compensation !== undefined) add(node.compensation.name, `compensation of step ${node.name}`);
    for (const seq of sequencesOf(node)) checkUnique(seq, seen, owner);
  }
}
