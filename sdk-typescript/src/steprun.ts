/**
 * The context of one step run: its identity, its child workflows and its waits, by the
 * memo protocol (docs/protocol.md, "Waits inside a step").
 *
 * Every `startWorkflow`, `callWorkflow`, `sleep`, `sleepUntil`, `waitForEvent`,
 * `waitForAny`, `waitForAll` and `waitForInput` takes the run's next index (0, 1, 2, ...
 * in call order). A wait whose index is in the task's memo returns its recorded outcome
 * at once. Otherwise the step is suspended there: the wait's promise never settles (no
 * code after it runs, and no `catch` can swallow it), the worker reports the wait with
 * SuspendTasks, and when the wait is over the step **runs again from the top**; every
 * wait it passed then answers from the memo. So code before a wait runs once more per
 * wait and must be safe to repeat (use `ctx.idempotencyKey`), and a step must make the
 * same calls in the same order on every run.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { StepContext, StepLogger, TaskKindName, WaitOptions, ChildOptions, InputOptions, AnyEvent } from "./context.js";
import { EventWaitMode, InputFieldSchema, InputKind } from "./gen/durable/v1/common_pb.js";
import type { ChildStart, ChildWait, EventWait, InputWait, SleepWait } from "./gen/durable/v1/worker_service_pb.js";
import {
  ChildStartSchema,
  ChildWaitSchema,
  EventWaitSchema,
  InputWaitSchema,
  SleepWaitSchema,
} from "./gen/durable/v1/worker_service_pb.js";
import { NonRetryableError } from "./errors.js";
import { encodeJson } from "./json.js";
import { checkName } from "./nodes.js";

/** The uuid5 namespace of child execution ids (RFC 4122's URL namespace). */
export const CHILD_NAMESPACE = "6ba7b811-9dad-11d1-80b4-00c04fd430c8";

/** RFC 4122 name-based UUID (version 5, SHA-1) of `name` in `namespace`. */
export function uuid5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ""), "hex");
  const hash = createHash("sha1").update(ns).update(name, "utf8").digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The id of the child that step run `sequence` of `executionId` starts at `index`. */
export function childExecutionId(executionId: string, sequence: number, index: number): string {
  return uuid5(CHILD_NAMESPACE, `${executionId.toLowerCase()}/${sequence}/${index}`);
}

/** A child workflow called with `ctx.callWorkflow` gave no result (non-retryable). */
export class ChildWorkflowError extends NonRetryableError {
  /** The orchestrator's name for the outcome: "ChildWorkflowFailed" or "ChildTimeout". */
  readonly type: string;
  readonly childExecutionId: string;
  /** The child's final status (e.g. "failed"), when the orchestrator says. */
  readonly status: string | undefined;
  /** The child's error object, when it failed. */
  override readonly cause: unknown;
  constructor(message: string, options: { type: string; childExecutionId: string; status?: string; cause?: unknown }) {
    super(message);
    this.name = "ChildWorkflowError";
    this.type = options.type;
    this.childExecutionId = options.childExecutionId;
    this.status = options.status;
    this.cause = options.cause;
  }
}

/** A wait ended without a value (the orchestrator recorded an error); non-retryable. */
export class WaitError extends NonRetryableError {
  /** The orchestrator's name for the outcome, e.g. "EventTimeout". */
  readonly type: string;
  /** The wait's position among the step run's waits and child calls. */
  readonly index: number;
  constructor(message: string, options: { type: string; index: number }) {
    super(message);
    this.name = new.target.name;
    this.type = options.type;
    this.index = options.index;
  }
}

/** A wait's timeout elapsed and it has no timeout value ("EventTimeout", "InputTimeout"). */
export class WaitTimeoutError extends WaitError {}

/** What a suspended step waits for, and the child starts recorded up to it. */
export interface Suspension {
  readonly wait:
    | { case: "child"; value: ChildWait }
    | { case: "sleep"; value: SleepWait }
    | { case: "events"; value: EventWait }
    | { case: "input"; value: InputWait };
  readonly children: ChildStart[];
  /** The context method that waits, e.g. "callWorkflow". */
  readonly method: string;
}

const INPUT_KINDS: Record<string, InputKind> = {
  approval: InputKind.APPROVAL,
  single_choice: InputKind.SINGLE_CHOICE,
  multi_choice: InputKind.MULTI_CHOICE,
  free_text: InputKind.FREE_TEXT,
  form: InputKind.FORM,
};
const FIELD_TYPES = new Set(["string", "number", "integer", "boolean", "any"]);
const NEVER = new Promise<never>(() => {});

function has(options: object | undefined, key: string): boolean {
  return options !== undefined && Object.prototype.hasOwnProperty.call(options, key);
}

function timeoutOf(method: string, options: WaitOptions | undefined): { timeout?: ReturnType<typeof durationFromMs>; timeoutValueJson: string; hasTimeoutValue: boolean } {
  const ms = options?.timeoutMs;
  const hasValue = has(options, "timeoutValue");
  if (ms !== undefined && (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0)) {
    throw new TypeError(`${method}: timeoutMs must be a positive number of ms, got ${ms}`);
  }
  if (hasValue && ms === undefined) throw new TypeError(`${method}: timeoutValue is only used with a timeoutMs`);
  return {
    ...(ms !== undefined ? { timeout: durationFromMs(ms) } : {}),
    timeoutValueJson: hasValue ? encodeJson(options?.timeoutValue, `${method}: timeoutValue`) : "",
    hasTimeoutValue: hasValue,
  };
}

function eventNames(method: string, names: readonly string[]): string[] {
  if (typeof names === "string" || !Array.isArray(names)) throw new TypeError(`${method}: names must be an array of event names`);
  const out = names.map((n) => checkName("event", n));
  if (out.length === 0) throw new TypeError(`${method}: give at least one event name`);
  if (new Set(out).size !== out.length) throw new TypeError(`${method}: event names must be distinct, got ${JSON.stringify(out)}`);
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** The context a step, an into merge or a compensation gets for one run. */
export class StepRun implements StepContext {
  private counter = 0;
  private readonly starts: ChildStart[] = [];
  private first: Suspension | undefined;
  private lastTimedOut = false;
  private wake: ((s: Suspension) => void) | undefined;
  /** Resolves with the run's first suspension, if it ever suspends. */
  readonly suspended: Promise<Suspension>;

  constructor(
    readonly executionId: string,
    readonly workflowName: string,
    readonly stepName: string,
    readonly sequence: number,
    readonly attempt: number,
    readonly executionInput: unknown,
    readonly lanePath: string,
    readonly kind: TaskKindName,
    readonly memo: Readonly<Record<string, unknown>>,
    readonly signal: AbortSignal,
    readonly log: StepLogger,
    private readonly secrets: Set<string>,
    /** The key the orchestrator sent with the task; empty from one that predates the field. */
    private readonly sentIdempotencyKey = "",
  ) {
    this.suspended = new Promise((resolve) => (this.wake = resolve));
  }

  get idempotencyKey(): string {
    return this.sentIdempotencyKey || `${this.executionId}:${this.sequence}:${this.stepName}`;
  }

  /** The first suspension of this run (even if the step went on after it). */
  get suspension(): Suspension | undefined {
    return this.first;
  }

  /** Every child start recorded so far, in call order. */
  get children(): ChildStart[] {
    return [...this.starts];
  }

  secret(value: string): string {
    if (typeof value !== "string") throw new TypeError("secret: the value must be a string");
    if (value !== "") this.secrets.add(value);
    return value;
  }

  startWorkflow(workflow: string | { name: string }, input?: unknown, options: ChildOptions = {}): string {
    const index = this.counter++;
    this.childStart(index, workflow, input, options);
    return childExecutionId(this.executionId, this.sequence, index);
  }

  callWorkflow<T = unknown>(workflow: string | { name: string }, input?: unknown, options: ChildOptions & WaitOptions = {}): Promise<T> {
    const timeout = timeoutOf("callWorkflow", options);
    const index = this.counter++;
    const key = String(index);
    if (key in this.memo) return this.replayChild(index, this.memo[key]) as Promise<T>;
    this.childStart(index, workflow, input, options);
    return this.suspend({ case: "child", value: create(ChildWaitSchema, { index, ...timeout }) }, "callWorkflow");
  }

  sleep(ms: number): Promise<void> {
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new TypeError(`sleep: the duration must be a non-negative number of ms, got ${ms}`);
    }
    const index = this.counter++;
    const key = String(index);
    if (key in this.memo) return this.waitValue(index, this.memo[key]).then(() => undefined);
    if (ms === 0) return Promise.resolve();
    const wait = create(SleepWaitSchema, { index, until: { case: "duration", value: durationFromMs(ms) } });
    return this.suspend({ case: "sleep", value: wait }, "sleep");
  }

  sleepUntil(when: Date): Promise<void> {
    if (!(when instanceof Date) || Number.isNaN(when.getTime())) throw new TypeError(`sleepUntil: when must be a valid Date`);
    const index = this.counter++;
    const key = String(index);
    if (key in this.memo) return this.waitValue(index, this.memo[key]).then(() => undefined);
    if (when.getTime() <= Date.now()) return Promise.resolve();
    const wait = create(SleepWaitSchema, { index, until: { case: "untilTime", value: timestampFromDate(when) } });
    return this.suspend({ case: "sleep", value: wait }, "sleepUntil");
  }

  waitForEvent<T = unknown>(name: string, options?: WaitOptions): Promise<T> {
    const names = [checkName("event", name)];
    return this.events("waitForEvent", names, EventWaitMode.ONE, options) as Promise<T>;
  }

  async waitForAny(names: readonly string[], options?: WaitOptions): Promise<AnyEvent> {
    const checked = eventNames("waitForAny", names);
    const value = await this.events("waitForAny", checked, EventWaitMode.ANY, options);
    if (this.lastTimedOut) return value as AnyEvent;
    if (isObject(value) && typeof value.event === "string" && checked.includes(value.event) && "payload" in value) {
      return { event: value.event, payload: value.payload };
    }
    if (has(options, "timeoutValue")) return value as AnyEvent;
    throw new NonRetryableError(`the orchestrator recorded a malformed value for waitForAny: ${JSON.stringify(value).slice(0, 200)}`);
  }

  async waitForAll(names: readonly string[], options?: WaitOptions): Promise<Record<string, unknown>> {
    const checked = eventNames("waitForAll", names);
    const value = await this.events("waitForAll", checked, EventWaitMode.ALL, options);
    if (isObject(value) || has(options, "timeoutValue")) return value as Record<string, unknown>;
    throw new NonRetryableError(`the orchestrator recorded a malformed value for waitForAll: ${JSON.stringify(value).slice(0, 200)}`);
  }

  waitForInput<T = unknown>(name: string, options: InputOptions = {}): Promise<T> {
    checkName("input", name);
    const kindName = options.kind ?? "approval";
    const kind = INPUT_KINDS[kindName];
    if (kind === undefined) throw new TypeError(`waitForInput: kind must be one of ${Object.keys(INPUT_KINDS).join(", ")}, got ${JSON.stringify(kindName)}`);
    const prompt = options.prompt ?? "";
    if (typeof prompt !== "string") throw new TypeError("waitForInput: prompt must be a string");
    const choiceKind = kind === InputKind.SINGLE_CHOICE || kind === InputKind.MULTI_CHOICE;
    if (choiceKind !== (options.choices !== undefined)) {
      throw new TypeError(`waitForInput: choices are ${choiceKind ? "required" : "refused"} for a ${kindName} input`);
    }
    const choices = [...(options.choices ?? [])];
    if (choiceKind && (choices.length === 0 || new Set(choices).size !== choices.length || choices.some((c) => typeof c !== "string" || c === ""))) {
      throw new TypeError(`waitForInput: choices must be distinct non-empty strings, at least one`);
    }
    if ((kind === InputKind.FORM) !== (options.fields !== undefined)) {
      throw new TypeError(`waitForInput: fields are ${kind === InputKind.FORM ? "required" : "refused"} for a ${kindName} input`);
    }
    const fields = (options.fields ?? []).map((f) => {
      checkName("field", f.name);
      const type = f.type ?? "string";
      if (!FIELD_TYPES.has(type)) throw new TypeError(`waitForInput: field ${f.name} has type ${JSON.stringify(type)}`);
      return create(InputFieldSchema, { name: f.name, type, required: f.required ?? false, label: f.label ?? "" });
    });
    if (kind === InputKind.FORM && fields.length === 0) throw new TypeError("waitForInput: a form input needs at least one field");
    const timeout = timeoutOf("waitForInput", options);
    const index = this.counter++;
    const key = String(index);
    if (key in this.memo) return this.waitValue(index, this.memo[key]) as Promise<T>;
    const wait = create(InputWaitSchema, { index, name, kind, prompt, choices, fields, ...timeout });
    return this.suspend({ case: "input", value: wait }, "waitForInput");
  }

  // -- the memo protocol ----------------------------------------------------------------

  private events(method: string, names: string[], mode: EventWaitMode, options: WaitOptions | undefined): Promise<unknown> {
    const timeout = timeoutOf(method, options);
    const index = this.counter++;
    const key = String(index);
    if (key in this.memo) return this.waitValue(index, this.memo[key]);
    const wait = create(EventWaitSchema, { index, names, mode, ...timeout });
    return this.suspend({ case: "events", value: wait }, method);
  }

  private suspend(wait: Suspension["wait"], method: string): Promise<never> {
    if (this.first === undefined) {
      this.first = { wait, children: [...this.starts], method };
      this.wake?.(this.first);
    }
    return NEVER;
  }

  private childStart(index: number, workflow: string | { name: string }, input: unknown, options: ChildOptions): void {
    const name = checkName("workflow", typeof workflow === "string" ? workflow : workflow?.name);
    if (options.queue) checkName("queue", options.queue);
    const priority = options.priority ?? 0;
    if (!Number.isInteger(priority) || priority < -(2 ** 31) || priority >= 2 ** 31) {
      throw new TypeError(`priority must be a 32-bit integer, got ${priority}`);
    }
    const inputJson = encodeJson(input, `the input of child workflow ${name}`);
    this.starts.push(create(ChildStartSchema, { index, workflowName: name, inputJson, queue: options.queue ?? "", priority }));
  }

  private async waitValue(index: number, outcome: unknown): Promise<unknown> {
    const doc = isObject(outcome) ? outcome : {};
    this.lastTimedOut = doc.timed_out === true;
    if (doc.ok === true && "value" in doc) return doc.value;
    const error = doc.error;
    if (doc.ok !== false || !isObject(error)) {
      throw new NonRetryableError(`the orchestrator recorded a malformed outcome for wait ${index}: ${JSON.stringify(outcome).slice(0, 200)}`);
    }
    const type = typeof error.type === "string" && error.type ? error.type : "WaitError";
    const message = typeof error.message === "string" && error.message ? error.message : "the wait ended without a value";
    const Cls = type.endsWith("Timeout") ? WaitTimeoutError : WaitError;
    throw new Cls(message, { type, index });
  }

  private async replayChild(index: number, outcome: unknown): Promise<unknown> {
    const doc = isObject(outcome) ? outcome : {};
    if (doc.ok === true && "value" in doc) return doc.value;
    const error = doc.error;
    if (doc.ok !== false || !isObject(error)) {
      throw new NonRetryableError(`the orchestrator recorded a malformed outcome for child call ${index}: ${JSON.stringify(outcome).slice(0, 200)}`);
    }
    const childId = typeof error.execution_id === "string" && error.execution_id ? error.execution_id : childExecutionId(this.executionId, this.sequence, index);
    throw new ChildWorkflowError(typeof error.message === "string" && error.message ? error.message : "the child workflow ended without a result", {
      type: typeof error.type === "string" && error.type ? error.type : "ChildWorkflowFailed",
      childExecutionId: childId,
      ...(typeof error.status === "string" ? { status: error.status } : {}),
      cause: error.cause ?? undefined,
    });
  }
}
