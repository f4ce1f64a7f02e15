/**
 * The worker: register workflows, then poll for tasks, run their steps, heartbeat their
 * leases and report the outcomes in batches, until drained.
 *
 *     const worker = new Worker("127.0.0.1:7411", [order], { concurrency: 8 });
 *     await worker.run();   // until SIGTERM or SIGINT: then it drains and returns
 *
 * The protocol it follows (WorkerService):
 * - PollTasks long-polls for up to as many tasks as there are free slots; each task is
 *   leased to this worker until `lease_expires_at`. No poll while `maxUnacknowledged`
 *   reports (twice the concurrency, at least 100) wait for the orchestrator's answer.
 * - Heartbeat extends every held lease (running steps and reports not yet acknowledged),
 *   as often as the shortest `heartbeat_interval` of a running task asks; a lost lease
 *   aborts its step, whose outcome is then not reported.
 * - CompleteTasks / FailTasks carry batched reports. A batch is all or nothing: one
 *   stale lease fails the call with FAILED_PRECONDITION and the stale task ids in the
 *   trailer `durable-stale-task-ids`; those are dropped and the rest sent again.
 * - Task kinds (jobs.ts): STEP runs the step; ROUTE runs no user code and returns its
 *   input with the node's own evaluation (a branch key or foreach item list, walk.ts);
 *   INTO runs a group's into merge on `{data, results}`; COMPENSATION runs a
 *   compensation on the compensated step's result. With `evaluateAhead` (default) a
 *   STEP or INTO result carries the evaluations met on the walk after it.
 * - A step that waits (ctx.sleep, ctx.waitForEvent, ctx.callWorkflow, ...) is reported
 *   with SuspendTasks, with the child starts it recorded (steprun.ts); only a step may
 *   wait (WaitOutsideStep, CallWorkflowOutsideStep).
 * - A step's timeout is enforced here: past it the attempt is reported as a failure
 *   (`StepTimeout`, `timed_out`), retried by the step's policy.
 * - Drain (SIGTERM/SIGINT, or `drain()`): stop polling first, let running steps finish
 *   (up to `drainTimeoutMs`), give the unfinished ones back with ReleaseTasks (no attempt
 *   used), flush the reports, close.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import type { Client as RpcClient } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import type { Tracer, TracerProvider } from "@opentelemetry/api";
import { context as otelContext, trace } from "@opentelemetry/api";
import { captured } from "./capture.js";
import { StepLog } from "./context.js";
import type { DurableError } from "./errors.js";
import { AbortedError, DeadlineExceededError, UnavailableError, fromRpcError } from "./errors.js";
import type { Task, TaskCompletion, TaskFailure, TaskLease, TaskSuspension } from "./gen/durable/v1/worker_service_pb.js";
import { RegisterMode, WorkerService } from "./gen/durable/v1/worker_service_pb.js";
import { decodeJson, encodeJson } from "./json.js";
import type { Job, UserJob } from "./jobs.js";
import { GotoError, JobError, jobOf } from "./jobs.js";
import { Goto } from "./nodes.js";
import type { Report } from "./outcome.js";
import { completion, errorFromThrown, failure, leaseOf, maskSecrets, suspension, workerFailure } from "./outcome.js";
import { DEFAULT_MAX_PAYLOAD_BYTES, checkedReport } from "./payloads.js";
import { StepRun } from "./steprun.js";
import { durableTracer, recordAbandoned, recordOutcome, startAttemptSpan } from "./stepspan.js";
import type { Evaluation } from "./walk.js";
import { evaluate } from "./walk.js";
import type { Connection, ConnectionOptions } from "./transport.js";
import { connect } from "./transport.js";
import type { Workflow } from "./workflow.js";

export const STALE_TRAILER = "durable-stale-task-ids";
/** Trailer naming the cause of a refusal, e.g. `worker-unknown` on a poll. */
export const ERROR_TRAILER = "durable-error";

/**
 * Whether a refused poll says the orchestrator does not know this worker: its
 * `durable-error: worker-unknown` trailer, or, from an orchestrator that sends no such
 * trailer, the word "unknown" in a FAILED_PRECONDITION message.
 */
export function isUnknownWorker(error: DurableError): boolean {
  if (error.code !== "FAILED_PRECONDITION") return false;
  const cause = error.metadata.get(ERROR_TRAILER);
  return cause !== null ? cause === "worker-unknown" : /unknown/i.test(error.message);
}
const DEFAULT_HEARTBEAT_MS = 10_000;
const POLL_DEADLINE_MARGIN_MS = 10_000;
const REPORT_TIMEOUT_MS = 30_000;
const FLUSH_GRACE_MS = 1_000;
const MAX_ITEMS_PER_CALL = 1000;
/** The most next tasks one CompleteTasks call asks for (the orchestrator takes 0..1000). */
const MAX_NEXT_TASKS = 1000;

/** Where the worker's own messages go; default the console. */
export interface WorkerLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface WorkerOptions extends ConnectionOptions {
  /** Queues to poll; default every queue the workflows start on. */
  queues?: string[];
  /** Steps running at the same time, at most (default 10). */
  concurrency?: number;
  /** This worker's id; default "<host>-<pid>-<random hex>". */
  workerId?: string;
  /** How long a drain waits for running steps before giving them back (default 30 s). */
  drainTimeoutMs?: number;
  /** How long one long poll waits on the orchestrator (default 30 s, at most 60 s). */
  pollWaitMs?: number;
  /** Move workflows registered on another queue to the queue they now declare. */
  allowTakeover?: boolean;
  /**
   * Send the branch keys and foreach item lists met after a step's (or an into's) result
   * with the result, saving the ROUTE tasks the orchestrator would ask for (default
   * true). A ROUTE task's own evaluation is always sent.
   */
  evaluateAhead?: boolean;
  logger?: WorkerLogger;
  /** Where each attempt's span goes (`durable.step <name>`); default the global tracer provider. */
  tracerProvider?: TracerProvider;
  /**
   * A result, child input or timeout value larger than this (UTF-8 bytes of JSON) fails its
   * attempt with PayloadTooLarge instead of being sent (default 2 MiB, the orchestrator's).
   */
  maxPayloadBytes?: number;
}

interface Running {
  task: Task;
  abort: AbortController;
  abandoned: boolean;
  done: Promise<void>;
}

/** One queued report: a result or failure, or (a bare lease) a task given back unrun. */
type Item = { kind: "report"; report: Report } | { kind: "release"; lease: TaskLease };

function itemTaskId(item: Item): bigint {
  return item.kind === "release" ? item.lease.taskId : (item.report.lease?.taskId ?? 0n);
}

function itemLease(item: Item): TaskLease | undefined {
  return item.kind === "release" ? item.lease : item.report.lease;
}

function isTransient(err: DurableError): boolean {
  return err instanceof UnavailableError || err instanceof DeadlineExceededError || err instanceof AbortedError;
}

/** The task ids a refused batch names as stale (trailer `durable-stale-task-ids`). */
export function staleTaskIds(err: DurableError): Set<bigint> {
  const ids = new Set<bigint>();
  if (err.code !== "FAILED_PRECONDITION") return ids;
  const value = err.metadata.get(STALE_TRAILER);
  for (const part of (value ?? "").split(",")) {
    if (/^\s*\d+\s*$/.test(part)) ids.add(BigInt(part.trim()));
  }
  return ids;
}

/** Exponential backoff with jitter: 0.1 s doubling to 5 s. */
class Backoff {
  private failures = 0;
  next(): number {
    const base = Math.min(100 * 2 ** this.failures, 5000);
    this.failures = Math.min(this.failures + 1, 30);
    return base * (0.5 + Math.random() / 2);
  }
  reset(): void {
    this.failures = 0;
  }
}

function defaultWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** A promise with its resolve function, for waking loops. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function delay(ms: number, abort?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (abort?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      abort?.removeEventListener("abort", done);
      resolve();
    }
    abort?.addEventListener("abort", done, { once: true });
  });
}

/** Resolves when `abort` is aborted. */
function abortPromise(abort: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (abort.aborted) resolve();
    else abort.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** Await `promise` for at most `ms` (or until `cut` resolves), leaving no timer behind. */
async function within(promise: Promise<unknown>, ms: number, cut?: Promise<void>): Promise<void> {
  const timer = new AbortController();
  try {
    await Promise.race([promise, delay(ms, timer.signal), ...(cut ? [cut] : [])]);
  } finally {
    timer.abort();
  }
}

class StepTimeout extends Error {}

/** Runs the steps of `workflows` for the orchestrator at `address`. */
export class Worker {
  readonly address: string;
  readonly workflows: readonly Workflow[];
  readonly workerId: string;
  readonly queues: readonly string[];
  readonly concurrency: number;
  private readonly drainTimeoutMs: number;
  private readonly pollWaitMs: number;
  private readonly allowTakeover: boolean;
  private readonly evaluateAhead: boolean;
  private readonly log: WorkerLogger;
  private readonly tracer: Tracer;
  private readonly maxPayloadBytes: number;
  private readonly connectionOptions: ConnectionOptions;
  private readonly byName: Map<string, Workflow>;
  private readonly registered = new Map<string, string>();
  private connection: Connection | undefined;
  private rpc: RpcClient<typeof WorkerService> | undefined;
  private readonly running = new Map<bigint, Running>();
  private changed = signal();
  private readonly pending: Item[] = [];
  private readonly inFlight = new Map<bigint, TaskLease>();
  private reportWake = signal();
  private readonly stopPolling = new AbortController();
  private readonly stopBackground = new AbortController();
  private loops: Promise<void>[] = [];
  private started = false;
  private draining: Promise<void> | undefined;
  private stopped = signal();
  private heartbeatMs = DEFAULT_HEARTBEAT_MS;
  /** Free slots held by CompleteTasks calls for the next tasks they may bring back. */
  private reserved = 0;
  /** Reports queued or in flight past which the worker stops polling (backpressure). */
  readonly maxUnacknowledged: number;

  constructor(address: string, workflows: Workflow[], options: WorkerOptions = {}) {
    if (workflows.length === 0) throw new TypeError("a worker needs at least one workflow");
    this.byName = new Map();
    for (const wf of workflows) {
      const seen = this.byName.get(wf.name);
      if (seen !== undefined && seen !== wf) throw new TypeError(`two different workflows are named ${wf.name}`);
      this.byName.set(wf.name, wf);
      wf.toDefinition(); // a workflow without steps fails here, not at registration
    }
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new TypeError(`concurrency must be an integer >= 1, got ${concurrency}`);
    }
    const pollWaitMs = options.pollWaitMs ?? 30_000;
    if (!(pollWaitMs > 0 && pollWaitMs <= 60_000)) throw new TypeError(`pollWaitMs must be within 1..60000, got ${pollWaitMs}`);
    const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    if (!(drainTimeoutMs >= 0)) throw new TypeError(`drainTimeoutMs must not be negative, got ${drainTimeoutMs}`);
    this.address = address;
    this.workflows = [...this.byName.values()];
    this.workerId = options.workerId ?? defaultWorkerId();
    this.queues = options.queues?.length
      ? [...options.queues]
      : [...new Set(this.workflows.map((w) => w.options.queue ?? "default"))].sort();
    this.concurrency = concurrency;
    this.maxUnacknowledged = Math.max(2 * concurrency, 100);
    this.drainTimeoutMs = drainTimeoutMs;
    this.pollWaitMs = pollWaitMs;
    this.allowTakeover = options.allowTakeover ?? false;
    this.evaluateAhead = options.evaluateAhead ?? true;
    this.log = options.logger ?? {
      info: (m) => console.info(m),
      warn: (m) => console.warn(m),
      error: (m) => console.error(m),
    };
    this.tracer = durableTracer(options.tracerProvider);
    const maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes < 1) throw new TypeError(`maxPayloadBytes must be an integer >= 1, got ${maxPayloadBytes}`);
    this.maxPayloadBytes = maxPayloadBytes;
    this.connectionOptions = { ...(options.token !== undefined ? { token: options.token } : {}), ...(options.tls !== undefined ? { tls: options.tls } : {}) };
  }

  /** Workflow name -> the version the orchestrator registered (empty before start). */
  get versions(): ReadonlyMap<string, string> {
    return new Map(this.registered);
  }

  /** How many steps are running now. */
  get runningCount(): number {
    return this.running.size;
  }

  // -- life cycle -----------------------------------------------------------------------

  /** Register the workflows (retrying while the orchestrator is unreachable), then run. */
  async start(): Promise<void> {
    if (this.started) throw new Error("this worker was started already");
    this.started = true;
    this.connection = connect(this.address, this.connectionOptions);
    this.rpc = createClient(WorkerService, this.connection.transport);
    const backoff = new Backoff();
    for (;;) {
      try {
        await this.register();
        break;
      } catch (err) {
        const error = fromRpcError(err);
        if (!isTransient(error) || this.stopPolling.signal.aborted) {
          this.connection.close();
          this.stopped.resolve();
          throw error;
        }
        const wait = backoff.next();
        this.log.warn(`cannot register (${error.code}: ${error.message}); retrying in ${Math.round(wait)} ms`);
        await delay(wait, this.stopPolling.signal);
      }
    }
    this.loops = [this.pollLoop(), this.heartbeatLoop(), this.reportLoop()];
    this.log.info(
      `durable-worker ready worker_id=${this.workerId} queues=${this.queues.join(",")} ` +
        `workflows=${this.workflows.map((w) => w.name).join(",")}`,
    );
  }

  /** Start, drain on SIGTERM or SIGINT (a second signal gives running steps back at once), return when drained. */
  async run(): Promise<void> {
    let signals = 0;
    const onSignal = (): void => {
      signals += 1;
      if (signals === 1) {
        this.log.info(`draining: finishing running steps (up to ${this.drainTimeoutMs} ms)`);
        void this.drain();
      } else {
        this.log.warn("asked again: giving running steps back now");
        this.forceRelease();
      }
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    try {
      await this.start();
      await this.stopped.promise;
    } finally {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  }

  /** Stop polling, let running steps finish (up to drainTimeoutMs), give back the rest, close. */
  drain(): Promise<void> {
    this.draining ??= this.doDrain(this.drainTimeoutMs);
    return this.draining;
  }

  /** Stop now: give running steps back, send the reports already made, close. */
  stop(): Promise<void> {
    this.forceRelease();
    this.draining ??= this.doDrain(0);
    return this.draining;
  }

  private forced = signal();
  private forceRelease(): void {
    this.forced.resolve();
  }

  private async doDrain(timeoutMs: number): Promise<void> {
    // 1. Stop polling first: a release racing this worker's own open poll would be
    //    handed straight back to that dying poll.
    this.stopPolling.abort();
    try {
      if (this.loops.length > 0) {
        await this.loops[0];
        // 2. Let running steps finish, up to the timeout (or a second signal).
        const idle = (async () => {
          while (this.running.size > 0) await this.changed.promise;
        })();
        await within(idle, timeoutMs, this.forced.promise);
        // 3. Give back what still runs, unrun as far as the orchestrator knows.
        const left = [...this.running.values()].filter((r) => !r.abandoned);
        for (const r of left) {
          r.abandoned = true;
          r.abort.abort(new Error("the worker is draining"));
          this.enqueue({ kind: "release", lease: leaseOf(r.task) });
        }
        if (left.length > 0) this.log.warn(`drain: ${left.length} step(s) still running; given back`);
        // 4. Flush the reports.
        const flushed = (async () => {
          while (this.pending.length > 0 || this.inFlight.size > 0) await this.changed.promise;
        })();
        await within(flushed, Math.max(timeoutMs, FLUSH_GRACE_MS));
        if (this.pending.length + this.inFlight.size > 0) {
          this.log.warn(`drain: ${this.pending.length + this.inFlight.size} report(s) not acknowledged in time`);
        }
      }
    } finally {
      // 5. Stop the heartbeat and the reporter, close the connection.
      this.stopBackground.abort();
      this.reportWake.resolve();
      this.notify();
      await Promise.allSettled(this.loops);
      this.connection?.close();
      this.stopped.resolve();
    }
  }

  // -- registration ---------------------------------------------------------------------

  private async register(): Promise<void> {
    const rpc = this.client();
    const response = await rpc.registerWorkflows(
      {
        workerId: this.workerId,
        workflows: this.workflows.map((w) => w.toDefinition()),
        queues: [...this.queues],
        allowTakeover: this.allowTakeover,
        mode: RegisterMode.REPLACE, // every workflow in one call: the worker's whole set
      },
      { timeoutMs: 30_000 },
    );
    for (const r of response.workflows) this.registered.set(r.name, r.version);
  }

  private client(): RpcClient<typeof WorkerService> {
    if (this.rpc === undefined) throw new Error("the worker is not started");
    return this.rpc;
  }

  /** Slots neither running a step nor held for next tasks a report may bring back. */
  private freeSlots(): number {
    return this.concurrency - this.running.size - this.reserved;
  }

  /** Reports queued or in flight, not yet acknowledged by the orchestrator. */
  get unacknowledgedReports(): number {
    return this.pending.length + this.inFlight.size;
  }

  private notify(): void {
    const old = this.changed;
    this.changed = signal();
    old.resolve();
  }

  // -- polling --------------------------------------------------------------------------

  private async pollLoop(): Promise<void> {
    const backoff = new Backoff();
    const stop = this.stopPolling.signal;
    const stopped = abortPromise(stop);
    while (!stop.aborted) {
      const free = this.freeSlots();
      // No new work while reports pile up unacknowledged (the orchestrator is slow or
      // away): finished steps would only add to what a crash or a lost lease wastes.
      if (free <= 0 || this.unacknowledgedReports >= this.maxUnacknowledged) {
        await within(this.changed.promise, 60_000, stopped);
        continue;
      }
      try {
        const response = await this.client().pollTasks(
          {
            workerId: this.workerId,
            queues: [...this.queues],
            maxTasks: free,
            waitTimeout: durationFromMs(this.pollWaitMs),
          },
          { timeoutMs: this.pollWaitMs + POLL_DEADLINE_MARGIN_MS, signal: stop },
        );
        backoff.reset();
        for (const task of response.tasks) this.startTask(task);
      } catch (err) {
        if (stop.aborted) break;
        const error = fromRpcError(err);
        if (isUnknownWorker(error)) {
          this.log.warn("the orchestrator does not know this worker; registering again");
          try {
            await this.register();
            continue;
          } catch (again) {
            this.log.warn(`register failed: ${fromRpcError(again).message}`);
          }
        }
        const wait = backoff.next();
        const say = isTransient(error) ? this.log.warn : this.log.error;
        say.call(this.log, `poll failed (${error.code}: ${error.message}); retrying in ${Math.round(wait)} ms`);
        await delay(wait, stop);
      }
    }
  }

  // -- running --------------------------------------------------------------------------

  private startTask(task: Task): void {
    const running: Running = { task, abort: new AbortController(), abandoned: false, done: Promise.resolve() };
    this.running.set(task.taskId, running);
    if (task.heartbeatInterval !== undefined) {
      const ms = durationMs(task.heartbeatInterval);
      if (ms > 0 && ms < this.heartbeatMs) {
        this.heartbeatMs = ms;
        this.notify();
      }
    }
    running.done = this.runTask(running)
      .catch((err: unknown) => this.log.error(`task ${task.taskId}: ${String(err)}`))
      .finally(() => {
        if (this.running.get(task.taskId) === running) this.running.delete(task.taskId);
        this.notify();
      });
  }

  private async runTask(running: Running): Promise<void> {
    const span = startAttemptSpan(this.tracer, running.task, this.workerId);
    let report: Report;
    try {
      report = await otelContext.with(trace.setSpan(otelContext.active(), span), () => this.outcome(running));
      report = checkedReport(running.task, report, this.maxPayloadBytes); // a refused payload fails its attempt, not the batch
      if (running.abandoned) recordAbandoned(span);
      else recordOutcome(span, report);
    } finally {
      span.end();
    }
    if (running.abandoned) {
      this.log.warn(
        `task ${running.task.taskId} (${running.task.workflowName}.${running.task.stepName}) abandoned: ` +
          "its lease was lost or given back; nothing is reported for it",
      );
      return;
    }
    // Held by the heartbeat until acknowledged, so the lease does not lapse meanwhile.
    this.running.delete(running.task.taskId);
    this.enqueue({ kind: "report", report });
  }

  private async outcome(running: Running): Promise<Report> {
    const task = running.task;
    const workflow = this.byName.get(task.workflowName);
    if (workflow === undefined) {
      return workerFailure(task, "UnknownStep", `this worker has no workflow ${JSON.stringify(task.workflowName)}`);
    }
    const version = this.registered.get(task.workflowName);
    if (version !== undefined && task.workflowVersion !== "" && task.workflowVersion !== version) {
      return workerFailure(
        task,
        "VersionMismatch",
        `the task runs version ${task.workflowVersion} of workflow ${task.workflowName}, ` +
          `this worker registered ${version}`,
      );
    }
    let job: Job;
    try {
      job = jobOf(workflow, task);
    } catch (err) {
      if (err instanceof JobError) return workerFailure(task, err.type, err.message);
      return workerFailure(task, "InputDecodeError", (err as Error).message);
    }
    if (job.kind === "route") {
      // No user step: the input goes through, with the node's own evaluation (and any
      // after it on the walk).
      return completion(task, task.inputJson, [], { evaluations: evaluate(workflow.layout, task.stepName, job.input, true) });
    }
    let memo: unknown;
    let executionInput: unknown;
    try {
      executionInput = decodeJson(task.executionInputJson, "the task's execution input");
      memo = decodeJson(task.memoJson, "the task's memo") ?? {};
      if (memo === null || typeof memo !== "object" || Array.isArray(memo)) {
        throw new TypeError(`the task's memo must be a JSON object, got ${task.memoJson.slice(0, 200)}`);
      }
    } catch (err) {
      return workerFailure(task, "InputDecodeError", (err as Error).message);
    }
    const log = new StepLog();
    const secrets = new Set<string>();
    const ctx = new StepRun(
      task.executionId,
      task.workflowName,
      task.stepName,
      task.sequence,
      task.attempt,
      executionInput,
      task.lanePath,
      job.kind,
      memo as Record<string, unknown>,
      running.abort.signal,
      log,
      secrets,
      task.idempotencyKey,
    );
    return maskSecrets(await this.runJob(running, workflow, job, ctx, log), secrets);
  }

  private async runJob(running: Running, workflow: Workflow, job: UserJob, ctx: StepRun, log: StepLog): Promise<Report> {
    const task = running.task;
    const timeoutMs = task.timeout === undefined ? 0 : durationMs(task.timeout);
    let timer: NodeJS.Timeout | undefined;
    let value: unknown;
    try {
      const call = Promise.resolve().then(() => captured(log, () => job.call(ctx)));
      call.catch(() => undefined); // what it throws after a timeout or a suspension is not reported
      const racers: Promise<unknown>[] = [call, ctx.suspended];
      if (timeoutMs > 0) {
        racers.push(
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new StepTimeout()), timeoutMs);
          }),
        );
      }
      value = await Promise.race(racers);
    } catch (err) {
      if (err instanceof StepTimeout) {
        running.abort.abort(new Error("the step's timeout passed"));
        const error = errorFromThrown(new Error(`step ${task.stepName} exceeded its timeout of ${timeoutMs / 1000} s`));
        return failure(task, { ...error, type: "StepTimeout", traceback: "" }, log.take(), true);
      }
      // A step that caught its suspension's consequences and threw is suspended all the same.
      if (ctx.suspension === undefined) return failure(task, errorFromThrown(err), log.take());
    } finally {
      clearTimeout(timer);
    }
    const suspended = ctx.suspension;
    if (suspended !== undefined) {
      running.abort.abort(new Error("the step is suspended on a wait"));
      if (job.kind === "step") return suspension(task, suspended, log.take());
      const what = `${job.kind} ${task.stepName}`;
      if (suspended.wait.case === "child") {
        return workerFailure(
          task,
          "CallWorkflowOutsideStep",
          `${what} called ctx.callWorkflow, but only a step can wait for a child workflow (ctx.startWorkflow starts one without waiting)`,
          log.take(),
        );
      }
      return workerFailure(task, "WaitOutsideStep", `${what} called ctx.${suspended.method}, but only a step can wait`, log.take());
    }
    const children = ctx.children;
    try {
      if (value instanceof Goto) {
        const target = value.target;
        if (job.kind === "compensation") {
          throw new GotoError(`compensation ${task.stepName} returned goto(${JSON.stringify(target)}): only a step or an into merge can go to another node`);
        }
        if (!workflow.layout.sameSequence(task.stepName, target)) {
          const place = workflow.layout.place(task.stepName);
          const names = (place?.sequence ?? []).map((n) => JSON.stringify(n.name)).join(", ");
          const who = job.kind === "step" ? `step ${task.stepName}` : `into merge of ${task.stepName}`;
          throw new GotoError(`${who} returned goto(${JSON.stringify(target)}), but the target must be a node of the same sequence: ${names}`);
        }
        const resultJson = encodeJson(value.data, `the goto data of ${task.stepName}`);
        return completion(task, resultJson, log.take(), { gotoTarget: target, children, evaluations: this.walk(workflow, target, resultJson, true) });
      }
      const resultJson = encodeJson(value, `the result of ${job.kind} ${task.stepName}`);
      if (job.kind === "compensation") return completion(task, resultJson, log.take(), { children });
      return completion(task, resultJson, log.take(), { children, evaluations: this.walk(workflow, task.stepName, resultJson, false) });
    } catch (err) {
      if (err instanceof GotoError) return failure(task, errorFromThrown(err), log.take());
      return failure(task, { ...errorFromThrown(err), type: "JSONSerializationError", nonRetryable: true }, log.take());
    }
  }

  /** The evaluations sent ahead with a result (walked from `name`): with `evaluateAhead`, else none. */
  private walk(workflow: Workflow, name: string, resultJson: string, inclusive: boolean): Map<string, Evaluation> | undefined {
    if (!this.evaluateAhead) return undefined;
    const start = inclusive ? workflow.layout.node(name) : workflow.layout.nextAfter(name);
    if (start === undefined || (start.kind !== "branch" && start.kind !== "foreach")) return undefined;
    return evaluate(workflow.layout, name, JSON.parse(resultJson), inclusive);
  }

  // -- heartbeats -----------------------------------------------------------------------

  private heldLeases(): TaskLease[] {
    const held = new Map<bigint, TaskLease>();
    for (const item of this.pending) {
      const lease = itemLease(item);
      if (item.kind === "report" && lease) held.set(lease.taskId, lease);
    }
    for (const [id, lease] of this.inFlight) held.set(id, lease);
    for (const r of this.running.values()) if (!r.abandoned) held.set(r.task.taskId, leaseOf(r.task));
    return [...held.values()];
  }

  private async heartbeatLoop(): Promise<void> {
    const stop = this.stopBackground.signal;
    const stopped = abortPromise(stop);
    const backoff = new Backoff();
    let last = Date.now();
    while (!stop.aborted) {
      const due = last + this.heartbeatMs - Date.now();
      if (due > 0) {
        await within(this.changed.promise, due, stopped);
        continue;
      }
      last = Date.now();
      const leases = this.heldLeases();
      if (leases.length === 0) continue;
      try {
        const response = await this.client().heartbeat(
          { workerId: this.workerId, leases },
          { timeoutMs: this.heartbeatMs, signal: stop },
        );
        backoff.reset();
        const sent = new Map(leases.map((l) => [l.taskId, l.leaseToken]));
        for (const id of response.lostTaskIds) {
          const r = this.running.get(id);
          if (r !== undefined && !r.abandoned && sent.get(id) === r.task.leaseToken) {
            r.abandoned = true;
            r.abort.abort(new Error("the task's lease was lost"));
            this.running.delete(id);
            this.notify();
          }
        }
      } catch (err) {
        if (stop.aborted) break;
        const error = fromRpcError(err);
        const wait = Math.min(backoff.next(), this.heartbeatMs);
        this.log.warn(`heartbeat failed (${error.code}: ${error.message}); retrying in ${Math.round(wait)} ms`);
        last = Date.now() - this.heartbeatMs + wait;
      }
    }
  }

  // -- reports --------------------------------------------------------------------------

  private enqueue(item: Item): void {
    this.pending.push(item);
    this.reportWake.resolve();
  }

  private async reportLoop(): Promise<void> {
    const stop = this.stopBackground.signal;
    const backoff = new Backoff();
    for (;;) {
      if (this.pending.length === 0) {
        if (stop.aborted) return;
        await this.reportWake.promise;
        this.reportWake = signal();
        continue;
      }
      const batch = this.pending.splice(0, MAX_ITEMS_PER_CALL);
      for (const item of batch) {
        const lease = itemLease(item);
        if (lease) this.inFlight.set(lease.taskId, lease);
      }
      const retry = await this.send(batch);
      for (const item of batch) this.inFlight.delete(itemTaskId(item));
      if (retry.length > 0) {
        this.pending.unshift(...retry);
        if (stop.aborted) {
          this.log.warn(`${retry.length} report(s) not sent: the worker stopped`);
          this.pending.length = 0;
          this.notify();
          return;
        }
        await delay(backoff.next(), stop);
      } else {
        backoff.reset();
      }
      this.notify();
    }
  }

  /** Send one batch as up to four concurrent calls (one per kind); returns the items to send again. */
  private async send(batch: Item[]): Promise<Item[]> {
    const completions: TaskCompletion[] = [];
    const failures: TaskFailure[] = [];
    const leases: TaskLease[] = [];
    const suspensions: TaskSuspension[] = [];
    const groups: [Item[], Item[], Item[], Item[]] = [[], [], [], []];
    for (const item of batch) {
      if (item.kind === "release") {
        leases.push(item.lease);
        groups[2].push(item);
      } else if (item.report.$typeName === "durable.v1.TaskCompletion") {
        completions.push(item.report);
        groups[0].push(item);
      } else if (item.report.$typeName === "durable.v1.TaskSuspension") {
        suspensions.push(item.report);
        groups[3].push(item);
      } else {
        failures.push(item.report);
        groups[1].push(item);
      }
    }
    const rpc = this.client();
    const workerId = this.workerId;
    const options = { timeoutMs: REPORT_TIMEOUT_MS };
    const again = await Promise.all([
      this.sendOne(groups[0], () => this.complete(completions)),
      this.sendOne(groups[1], () => rpc.failTasks({ workerId, failures }, options)),
      this.sendOne(groups[2], () => rpc.releaseTasks({ workerId, leases }, options)),
      this.sendOne(groups[3], () => rpc.suspendTasks({ workerId, suspensions }, options)),
    ]);
    return again.flat();
  }

  /**
   * CompleteTasks, asking for the next steps of the same executions as they become ready
   * (up to the free slots, held for the call so a poll cannot take them too): they start
   * at once, without a poll's round trip. A draining worker asks for none.
   */
  private async complete(completions: TaskCompletion[]): Promise<void> {
    const room = this.stopPolling.signal.aborted
      ? 0
      : Math.max(0, Math.min(MAX_NEXT_TASKS, this.freeSlots()));
    this.reserved += room;
    try {
      const response = await this.client().completeTasks(
        { workerId: this.workerId, completions, maxNextTasks: room, queues: [...this.queues] },
        { timeoutMs: REPORT_TIMEOUT_MS },
      );
      for (const task of response.nextTasks) this.startTask(task);
    } finally {
      this.reserved -= room;
      this.notify();
    }
  }

  private async sendOne(items: Item[], call: () => Promise<unknown>): Promise<Item[]> {
    if (items.length === 0) return [];
    try {
      await call();
      return [];
    } catch (err) {
      const error = fromRpcError(err);
      const stale = staleTaskIds(error);
      if (stale.size > 0) {
        this.log.warn(`lease(s) of task(s) ${[...stale].join(", ")} lost; their reports are dropped`);
        return items.filter((i) => !stale.has(itemTaskId(i)));
      }
      if (isTransient(error)) {
        this.log.warn(`report failed (${error.code}: ${error.message}); sending again`);
        return items;
      }
      this.log.error(`report refused (${error.code}: ${error.message}); ${items.length} report(s) dropped`);
      return [];
    }
  }
}
