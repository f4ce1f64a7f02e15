/**
 * Workflows as data: a named sequence of steps, each with an optional retry policy and
 * timeout. `toDefinition()` builds the WorkflowDefinition the worker registers; the
 * orchestrator computes its version and drives the executions.
 *
 *     const order = new Workflow("process_order")
 *       .step("charge", async (order, ctx) => charge(order, ctx.idempotencyKey),
 *             { retry: { maxAttempts: 5 }, timeoutMs: 10_000 })
 *       .step("ship", async (charged) => ship(charged));
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { RetryPolicy as RetryPolicyPb } from "./gen/durable/v1/common_pb.js";
import { Backoff, RetryPolicySchema } from "./gen/durable/v1/common_pb.js";
import type { WorkflowDefinition } from "./gen/durable/v1/definition_pb.js";
import { NodeSchema, StepSchema, WorkflowDefinitionSchema } from "./gen/durable/v1/definition_pb.js";
import type { StepContext } from "./context.js";

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
/** The rule of every name (workflows, steps, queues), as the orchestrator's. */
export const NAME_RULE =
  "use 1-128 characters from ASCII letters, digits, '_', '-', '.', starting with a letter or '_'";

/** Return `name` if it is a valid workflow, step or queue name; else throw. */
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

const BACKOFF = { fixed: Backoff.FIXED, linear: Backoff.LINEAR, exponential: Backoff.EXPONENTIAL };

function checkDuration(what: string, ms: number, positive: boolean): number {
  if (!Number.isFinite(ms) || ms < 0 || (positive && ms === 0)) {
    throw new TypeError(`${what} must be a ${positive ? "positive" : "non-negative"} number of ms, got ${ms}`);
  }
  return ms;
}

/** The policy's protobuf form; throws TypeError for values out of range. */
export function retryToProto(policy: RetryPolicy): RetryPolicyPb {
  const maxAttempts = policy.maxAttempts ?? 3;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 2 ** 31 - 1) {
    throw new TypeError(`retry.maxAttempts must be an integer >= 1, got ${maxAttempts}`);
  }
  const backoff = policy.backoff ?? "exponential";
  if (!(backoff in BACKOFF)) {
    throw new TypeError(`retry.backoff must be "fixed", "linear" or "exponential", got ${JSON.stringify(backoff)}`);
  }
  const multiplier = policy.multiplier ?? 2.0;
  if (!(multiplier >= 1.0) || !Number.isFinite(multiplier)) {
    throw new TypeError(`retry.multiplier must be >= 1, got ${multiplier}`);
  }
  const jitter = policy.jitter ?? 0.2;
  if (!(jitter >= 0 && jitter <= 1)) throw new TypeError(`retry.jitter must be within 0..1, got ${jitter}`);
  return create(RetryPolicySchema, {
    maxAttempts,
    backoff: BACKOFF[backoff],
    initialDelay: durationFromMs(checkDuration("retry.initialDelayMs", policy.initialDelayMs ?? 1000, false)),
    maxDelay: durationFromMs(checkDuration("retry.maxDelayMs", policy.maxDelayMs ?? 300_000, false)),
    multiplier,
    jitter,
    nonRetryableErrors: [...(policy.nonRetryableErrors ?? [])],
  });
}

/** A step function: receives the previous step's result (the input, for the first). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StepFunction = (input: any, ctx: StepContext) => unknown;

export interface StepOptions {
  /** Unset means one attempt, no retry. */
  retry?: RetryPolicy;
  /** Per-attempt timeout in ms; unset means none. */
  timeoutMs?: number;
}

export interface StepSpec {
  readonly name: string;
  readonly fn: StepFunction;
  readonly options: StepOptions;
}

export interface WorkflowOptions {
  /** Queue used when a start does not name one (default "default"). */
  queue?: string;
  /** Whole-execution timeout in ms; unset means none. */
  timeoutMs?: number;
  /** Most step runs one execution may make; unset means the orchestrator's default. */
  maxStepRuns?: number;
}

/** A named workflow: steps run in the order they were added. */
export class Workflow {
  readonly name: string;
  readonly options: WorkflowOptions;
  private readonly stepList: StepSpec[] = [];

  constructor(name: string, options: WorkflowOptions = {}) {
    this.name = checkName("workflow", name);
    if (options.queue !== undefined) checkName("queue", options.queue);
    if (options.timeoutMs !== undefined) checkDuration(`workflow ${name}: timeoutMs`, options.timeoutMs, true);
    const runs = options.maxStepRuns;
    if (runs !== undefined && (!Number.isInteger(runs) || runs < 1 || runs > 2 ** 31 - 1)) {
      throw new TypeError(`workflow ${name}: maxStepRuns must be an integer >= 1, got ${runs}`);
    }
    this.options = { ...options };
  }

  /** Add a step at the end; returns the workflow, so calls chain. */
  step(name: string, fn: StepFunction, options: StepOptions = {}): this {
    checkName("step", name);
    if (this.stepList.some((s) => s.name === name)) {
      throw new TypeError(`workflow ${this.name}: two steps are named ${JSON.stringify(name)}`);
    }
    if (typeof fn !== "function") throw new TypeError(`step ${name}: not a function`);
    if (options.timeoutMs !== undefined) checkDuration(`step ${name}: timeoutMs`, options.timeoutMs, true);
    if (options.retry !== undefined) retryToProto(options.retry); // throws now, not at registration
    this.stepList.push({ name, fn, options: { ...options } });
    return this;
  }

  /** The steps in order. */
  get steps(): readonly StepSpec[] {
    return this.stepList;
  }

  /** The step called `name`, if any. */
  getStep(name: string): StepSpec | undefined {
    return this.stepList.find((s) => s.name === name);
  }

  /** The workflow as data, ready to register. */
  toDefinition(): WorkflowDefinition {
    if (this.stepList.length === 0) throw new TypeError(`workflow ${this.name} has no steps`);
    return create(WorkflowDefinitionSchema, {
      name: this.name,
      queue: this.options.queue ?? "",
      maxStepRuns: this.options.maxStepRuns ?? 0,
      ...(this.options.timeoutMs ? { timeout: durationFromMs(this.options.timeoutMs) } : {}),
      nodes: this.stepList.map((s) =>
        create(NodeSchema, {
          kind: {
            case: "step",
            value: create(StepSchema, {
              name: s.name,
              ...(s.options.retry ? { retry: retryToProto(s.options.retry) } : {}),
              ...(s.options.timeoutMs ? { timeout: durationFromMs(s.options.timeoutMs) } : {}),
            }),
          },
        }),
      ),
    });
  }
}
