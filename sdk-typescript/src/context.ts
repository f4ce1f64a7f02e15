/** What a step function gets besides its input. */
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { LogLine } from "./gen/durable/v1/common_pb.js";
import { LogLineSchema } from "./gen/durable/v1/common_pb.js";

/** The log of one attempt, sent with its report (shown by `get(..., {includeLogs})`). */
export interface StepLogger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
}

/** What runs: a step, an into merge or a compensation. */
export type TaskKindName = "step" | "into" | "compensation";

/** A wait's timeout and, optionally, the value it returns when the timeout elapses. */
export interface WaitOptions {
  /** Give up after this long; unset waits as long as the execution lives. */
  timeoutMs?: number;
  /**
   * The wait's result when `timeoutMs` elapses (given, even as `undefined`: it is sent as
   * null). Without it a timeout throws (WaitTimeoutError, or ChildWorkflowError of type
   * "ChildTimeout" for a child call).
   */
  timeoutValue?: unknown;
}

/** Where and how a child workflow runs. */
export interface ChildOptions {
  /** Queue to run the child on; unset means the child workflow's queue. */
  queue?: string;
  /** Higher runs first among ready work on the same queue (32-bit integer). */
  priority?: number;
}

/** A person's input: what to ask and what answer fits. */
export interface InputOptions extends WaitOptions {
  /** "approval" (default), "single_choice", "multi_choice", "free_text" or "form". */
  kind?: "approval" | "single_choice" | "multi_choice" | "free_text" | "form";
  prompt?: string;
  /** The options of a choice input (required for those, refused for the others). */
  choices?: string[];
  /** The fields of a form (required for a form, refused otherwise). */
  fields?: { name: string; type?: "string" | "number" | "integer" | "boolean" | "any"; required?: boolean; label?: string }[];
}

/** The event that ended a `waitForAny`. */
export interface AnyEvent {
  event: string;
  payload: unknown;
}

export interface StepContext {
  readonly executionId: string;
  readonly workflowName: string;
  readonly stepName: string;
  /** Position of this step run in the execution, from 1. */
  readonly sequence: number;
  /** Attempt number of this step run, from 1. */
  readonly attempt: number;
  /**
   * Stable across the attempts of this step run, distinct for every other run:
   * `"{executionId}:{sequence}:{stepName}"`. Pass it to external systems so a retried
   * attempt does not repeat their side effect.
   */
  readonly idempotencyKey: string;
  /** The execution's original input. */
  readonly executionInput: unknown;
  /** Aborted when the attempt's timeout passes or its lease is lost: stop working. */
  readonly signal: AbortSignal;
  readonly log: StepLogger;
  /** "" at the top level, else the lanes from the outside in, e.g. "checks/fraud" or "notify/17". */
  readonly lanePath: string;
  /** What runs: "step", "into" or "compensation" (only a step may wait). */
  readonly kind: TaskKindName;
  /** The outcomes of this step run's earlier waits, by call index (as text). */
  readonly memo: Readonly<Record<string, unknown>>;

  /**
   * Mark `value` as secret for this attempt and return it: it is replaced by `***` in the
   * attempt's log lines and in its error's message and stack before they are reported.
   */
  secret(value: string): string;

  /**
   * Start a child execution of `workflow` (fire and forget) and return its id. Nothing is
   * sent yet: the child is created with the step's result (or its suspension), so a step
   * that fails starts none; a retry or re-run names the same child.
   */
  startWorkflow(workflow: string | { name: string }, input?: unknown, options?: ChildOptions): string;

  /**
   * Run `workflow` as a child execution and return its result. The step is suspended and
   * runs again from the top when the child ends; this call then returns its result at
   * once. Throws ChildWorkflowError when the child failed (or the wait timed out without
   * a timeoutValue). Only a step may wait.
   */
  callWorkflow<T = unknown>(workflow: string | { name: string }, input?: unknown, options?: ChildOptions & WaitOptions): Promise<T>;

  /** Pause the step for `ms`, holding no worker (it runs again from the top afterwards). */
  sleep(ms: number): Promise<void>;

  /** Pause the step until `when`, holding no worker (a time already past returns at once). */
  sleepUntil(when: Date): Promise<void>;

  /** Wait until the event `name` is sent to this execution; return its payload. */
  waitForEvent<T = unknown>(name: string, options?: WaitOptions): Promise<T>;

  /** Wait for the first of the events `names`; return `{event, payload}` (or the timeout value). */
  waitForAny(names: readonly string[], options?: WaitOptions): Promise<AnyEvent>;

  /** Wait until every one of the events `names` has come; return `{name: payload}`. */
  waitForAll(names: readonly string[], options?: WaitOptions): Promise<Record<string, unknown>>;

  /** Wait for a person's answer to the input `name` (client.provideInput); return it. */
  waitForInput<T = unknown>(name: string, options?: InputOptions): Promise<T>;
}

export const MAX_LOG_LINES = 1000;
export const MAX_LOG_BYTES = 64 * 1024;

/** Collects an attempt's log lines, capped; a last line says how many were dropped. */
export class StepLog implements StepLogger {
  private readonly lines: LogLine[] = [];
  private bytes = 0;
  private dropped = 0;

  debug(message: string): void {
    this.add("DEBUG", message);
  }
  info(message: string): void {
    this.add("INFO", message);
  }
  warning(message: string): void {
    this.add("WARNING", message);
  }
  error(message: string): void {
    this.add("ERROR", message);
  }

  private add(level: string, message: string): void {
    this.write(level, message, "step");
  }

  /** Add a line of `logger` at `level` (console output captured during the attempt, say). */
  write(level: string, message: string, logger: string): void {
    const text = String(message);
    const size = Buffer.byteLength(text, "utf8");
    if (this.lines.length >= MAX_LOG_LINES || this.bytes + size > MAX_LOG_BYTES) {
      this.dropped += 1;
      return;
    }
    this.bytes += size;
    this.lines.push(create(LogLineSchema, { time: timestampNow(), level, message: text, logger }));
  }

  /** The lines to report. */
  take(): LogLine[] {
    if (this.dropped === 0) return this.lines;
    const note = `${this.dropped} log line(s) dropped: over ${MAX_LOG_LINES} lines or ${MAX_LOG_BYTES} bytes`;
    return [...this.lines, create(LogLineSchema, { time: timestampNow(), level: "WARNING", message: note, logger: "durable" })];
  }
}
