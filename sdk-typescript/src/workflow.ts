/**
 * Workflows as data: a named sequence of nodes (steps with an optional retry policy,
 * timeout and compensation; branches, parallel groups, foreach loops, see nodes.ts).
 * `toDefinition()` builds the WorkflowDefinition the worker registers; the orchestrator
 * computes its version and drives the executions.
 *
 *     const order = new Workflow("process_order")
 *       .step("charge", async (order, ctx) => charge(order, ctx.idempotencyKey),
 *             { retry: { maxAttempts: 5 }, timeoutMs: 10_000, compensate: step("refund", refund) })
 *       .branch("by_country", { on: (o) => o.country, cases: { FR: [step("ship_fr", shipFr)] },
 *                               default: [step("ship_abroad", shipAbroad)] })
 *       .step("notify", async (shipped) => notify(shipped));
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { RetryPolicy as RetryPolicyPb } from "./gen/durable/v1/common_pb.js";
import { Backoff, RetryPolicySchema } from "./gen/durable/v1/common_pb.js";
import type { Node as NodePb, WorkflowDefinition } from "./gen/durable/v1/definition_pb.js";
import {
  BranchCaseSchema,
  BranchSchema,
  CompensationSchema,
  ErrorMode as ErrorModePb,
  ForeachSchema,
  NodeSchema,
  ParallelBranchSchema,
  ParallelSchema,
  StepSchema,
  WorkflowDefinitionSchema,
} from "./gen/durable/v1/definition_pb.js";
import type {
  BranchSpec,
  ForeachSpec,
  GroupOptions,
  Node,
  RetryPolicy,
  StepFunction,
  StepNode,
  StepOptions,
} from "./nodes.js";
import { branch, checkDuration, checkName, checkUnique, foreach, makeStep, parallel } from "./nodes.js";
import { Layout } from "./walk.js";

export * from "./nodes.js";

const BACKOFF = { fixed: Backoff.FIXED, linear: Backoff.LINEAR, exponential: Backoff.EXPONENTIAL };

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

export interface WorkflowOptions {
  /** Queue used when a start does not name one (default "default"). */
  queue?: string;
  /** Whole-execution timeout in ms; unset means none. */
  timeoutMs?: number;
  /** Most step runs one execution may make; unset means the orchestrator's default. */
  maxStepRuns?: number;
}

export interface WorkflowOptions {
  /** Queue used when a start does not name one (default "default"). */
  queue?: string;
  /** Whole-execution timeout in ms; unset means none. */
  timeoutMs?: number;
  /** Most step runs one execution may make; unset means the orchestrator's default. */
  maxStepRuns?: number;
}

/** Kept for code written against the first release: a step node. */
export type StepSpec = StepNode;

const ERROR_MODE = { fail_fast: ErrorModePb.FAIL_FAST, collect: ErrorModePb.COLLECT };

function durationOf(ms: number | undefined): { timeout?: ReturnType<typeof durationFromMs> } {
  return ms ? { timeout: durationFromMs(ms) } : {};
}

function nodeToProto(node: Node): NodePb {
  switch (node.kind) {
    case "step": {
      const c = node.compensation;
      return create(NodeSchema, {
        kind: {
          case: "step",
          value: create(StepSchema, {
            name: node.name,
            ...(node.options.retry ? { retry: retryToProto(node.options.retry) } : {}),
            ...durationOf(node.options.timeoutMs),
            ...(c
              ? {
                  compensation: create(CompensationSchema, {
                    name: c.name,
                    ...(c.options.retry ? { retry: retryToProto(c.options.retry) } : {}),
                    ...durationOf(c.options.timeoutMs),
                  }),
                }
              : {}),
          }),
        },
      });
    }
    case "branch":
      return create(NodeSchema, {
        kind: {
          case: "branch",
          value: create(BranchSchema, {
            name: node.name,
            cases: node.cases.map((c) => create(BranchCaseSchema, { keyJson: c.keyJson, nodes: c.nodes.map(nodeToProto) })),
            defaultNodes: (node.default ?? []).map(nodeToProto),
            hasDefault: node.default !== undefined,
          }),
        },
      });
    case "parallel":
      return create(NodeSchema, {
        kind: {
          case: "parallel",
          value: create(ParallelSchema, {
            name: node.name,
            branches: node.branches.map((b) => create(ParallelBranchSchema, { name: b.name, nodes: b.nodes.map(nodeToProto) })),
            onError: ERROR_MODE[node.onError],
            hasInto: node.into !== undefined,
          }),
        },
      });
    case "foreach":
      return create(NodeSchema, {
        kind: {
          case: "foreach",
          value: create(ForeachSchema, {
            name: node.name,
            nodes: node.nodes.map(nodeToProto),
            concurrency: node.concurrency,
            onError: ERROR_MODE[node.onError],
            hasInto: node.into !== undefined,
          }),
        },
      });
  }
}

/** A named workflow: its nodes run in the order they were added. */
export class Workflow {
  readonly name: string;
  readonly options: WorkflowOptions;
  private readonly nodeList: Node[] = [];
  private readonly names = new Map<string, string>();
  private layoutCache: Layout | undefined;

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
    return this.add(makeStep("step", name, fn, options));
  }

  /** Add a branch at the end (see `branch()` in nodes.ts). */
  branch(name: string, spec: BranchSpec): this {
    return this.add(branch(name, spec));
  }

  /** Add a parallel group at the end (see `parallel()` in nodes.ts). */
  parallel(name: string, branches: Record<string, readonly Node[]>, options: GroupOptions = {}): this {
    return this.add(parallel(name, branches, options));
  }

  /** Add a foreach loop at the end (see `foreach()` in nodes.ts). */
  foreach(name: string, spec: ForeachSpec): this {
    return this.add(foreach(name, spec));
  }

  /** Add a node built with step(), branch(), parallel() or foreach() at the end. */
  add(node: Node): this {
    const names = new Map(this.names);
    checkUnique([node], names, `workflow ${this.name}`);
    nodeToProto(node); // a retry policy out of range throws now, not at registration
    for (const [k, v] of names) this.names.set(k, v);
    this.nodeList.push(node);
    this.layoutCache = undefined;
    return this;
  }

  /** The top-level nodes in order. */
  get nodes(): readonly Node[] {
    return this.nodeList;
  }

  /** Every step (compensations excluded), at any depth, depth first. */
  get steps(): readonly StepNode[] {
    return this.layout.nodes().filter((n): n is StepNode => n.kind === "step");
  }

  /** Where each node is, for navigation. */
  get layout(): Layout {
    this.layoutCache ??= new Layout(this.nodeList);
    return this.layoutCache;
  }

  /** The step called `name` (at any depth), if any. */
  getStep(name: string): StepNode | undefined {
    const node = this.layout.node(name);
    return node?.kind === "step" ? node : undefined;
  }

  /** The node called `name` (at any depth), if any. */
  getNode(name: string): Node | undefined {
    return this.layout.node(name);
  }

  /** The compensation called `name`, if any. */
  getCompensation(name: string): StepNode | undefined {
    return this.layout.compensation(name);
  }

  /** The workflow as data, ready to register. */
  toDefinition(): WorkflowDefinition {
    if (this.nodeList.length === 0) throw new TypeError(`workflow ${this.name} has no steps`);
    return create(WorkflowDefinitionSchema, {
      name: this.name,
      queue: this.options.queue ?? "",
      maxStepRuns: this.options.maxStepRuns ?? 0,
      ...(this.options.timeoutMs ? { timeout: durationFromMs(this.options.timeoutMs) } : {}),
      nodes: this.nodeList.map(nodeToProto),
    });
  }
}
