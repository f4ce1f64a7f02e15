/**
 * Test your workflows against an orchestrator in test mode, on a clock you move yourself.
 *
 * The orchestrator must run on a manual clock (`durable server --manual-clock`, or
 * `DURABLE_MANUAL_CLOCK=true`): it serves durable.v1.TestingService, and its time moves
 * only when a test moves it. A step that sleeps for a day, an event wait that times out
 * after three days, a retry backed off for an hour all wait until the test moves the
 * clock, and then take no real time at all:
 *
 *     const env = await WorkflowTestEnv.open([reminder], { address: "127.0.0.1:7411" });
 *     try {
 *       const run = await env.start(reminder, { who: "ann" });
 *       await env.skipToNextTimer();          // a day later: the sleep is over
 *       const done = await run.result();
 *       assert.equal(done.status, "completed");
 *     } finally {
 *       await env.close();
 *     }
 *
 * The environment runs the workflows on an in-process Worker polling a queue of its own
 * (`env.queue`, on which `start` starts executions) besides the queues the workflows
 * declare (where the children they call run by default).
 *
 * "Settled" means: no task of those queues is leased (no step running, no report
 * unacknowledged), none is ready now, and no timer is due at the clock's time. Every
 * method that moves the clock waits (in real time, up to `settleTimeoutMs`) for that
 * state before the move, so a step starts sleeping from the right time, and after it, so
 * what a test sees next is deterministic. `start`, `sendEvent` and `provideInput` wait for
 * it after their call.
 *
 * Workers keep real time; only the orchestrator's clock is manual. Keep the manual clock
 * at or after the real time when steps sleep until times computed from the real clock.
 */
import { randomBytes } from "node:crypto";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { durationFromMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client as RpcClient } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import type { StartOptions } from "./client.js";
import { Client } from "./client.js";
import { fromCallError } from "./errors.js";
import { TestingService } from "./gen/durable/v1/testing_service_pb.js";
import type { Execution } from "./models.js";
import { isTerminal } from "./models.js";
import type { WorkflowRef } from "./schedules.js";
import type { Connection, ConnectionOptions } from "./transport.js";
import { connect } from "./transport.js";
import type { WorkerLogger } from "./worker.js";
import { Worker } from "./worker.js";
import type { Workflow } from "./workflow.js";

/** The variable naming the test-mode orchestrator when no `address` is given. */
export const TEST_ADDRESS_ENV = "DURABLE_TEST_ADDRESS";

const POLL_INTERVAL_MS = 10;
const CALL_TIMEOUT_MS = 60_000;

export interface WorkflowTestEnvOptions extends ConnectionOptions {
  /** The test-mode orchestrator ("host:port"); default `$DURABLE_TEST_ADDRESS`. */
  address?: string;
  /** The queue `start` uses and the worker polls; default `durable-test-<random hex>`. */
  queue?: string;
  /** Real milliseconds the waiting methods wait for the worker to settle (default 10 s). */
  settleTimeoutMs?: number;
  /** Steps the worker runs at the same time, at most (default 10). */
  concurrency?: number;
  /** Where the worker's own messages go; default nowhere (kept in `env.logLines`). */
  logger?: WorkerLogger;
}

/** Steps were still running (or ready to run) when the real-time deadline passed. */
export class NotSettledError extends Error {
  override name = "NotSettledError";
}

/** The execution is unfinished and nothing due on the clock will move it on (it waits for an event or an input, or for time). */
export class WorkflowSuspendedError extends Error {
  override name = "WorkflowSuspendedError";
  constructor(
    message: string,
    readonly execution: Execution,
  ) {
    super(message);
  }
}

/** One execution started in a WorkflowTestEnv. */
export class WorkflowRun {
  constructor(
    readonly env: WorkflowTestEnv,
    readonly id: string,
  ) {}

  /** The execution as it is now, with its steps. */
  execution(): Promise<Execution> {
    return this.env.client.get(this.id, { includeSteps: true });
  }

  /** Wait until nothing can run now (the clock does not move); return the execution. */
  async untilSuspended(): Promise<Execution> {
    await this.env.settle();
    return this.execution();
  }

  /** Wait for the execution's end; see WorkflowTestEnv.result. */
  result(options: { skipTimers?: boolean } = {}): Promise<Execution> {
    return this.env.result(this.id, options);
  }

  sendEvent(name: string, payload?: unknown, options: { eventId?: string } = {}): Promise<{ delivered: boolean; duplicate: boolean }> {
    return this.env.sendEvent(this.id, name, payload, options);
  }

  provideInput(name: string, value: unknown): Promise<void> {
    return this.env.provideInput(this.id, name, value);
  }
}

interface Clock {
  now: Date;
  nextTimer: Date | null;
}

function clockOf(response: { now?: Timestamp; nextTimer?: Timestamp }): Clock {
  if (response.now === undefined) throw new TypeError("the orchestrator sent no time");
  return { now: timestampDate(response.now), nextTimer: response.nextTimer ? timestampDate(response.nextTimer) : null };
}

const quiet: WorkerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A worker, a client and the clock of a test-mode orchestrator, for one test. */
export class WorkflowTestEnv {
  readonly address: string;
  readonly queue: string;
  readonly client: Client;
  readonly worker: Worker;
  readonly settleTimeoutMs: number;
  private readonly connection: Connection;
  private readonly testing: RpcClient<typeof TestingService>;
  private readonly queues: ReadonlySet<string>;
  private closed = false;

  private constructor(workflows: Workflow[], options: WorkflowTestEnvOptions) {
    const address = options.address ?? process.env[TEST_ADDRESS_ENV];
    if (!address) {
      throw new TypeError(`WorkflowTestEnv needs the address of an orchestrator in test mode: pass address, or set ${TEST_ADDRESS_ENV}`);
    }
    const settleTimeoutMs = options.settleTimeoutMs ?? 10_000;
    if (!(settleTimeoutMs > 0)) throw new RangeError(`settleTimeoutMs must be positive, got ${settleTimeoutMs}`);
    this.address = address;
    this.settleTimeoutMs = settleTimeoutMs;
    this.queue = options.queue ?? `durable-test-${randomBytes(6).toString("hex")}`;
    const connection: ConnectionOptions = {
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
    };
    const declared = workflows.map((w) => w.options.queue ?? "default");
    this.queues = new Set([this.queue, ...declared]);
    this.client = new Client(address, connection);
    this.worker = new Worker(address, workflows, {
      ...connection,
      queues: [...this.queues],
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      logger: options.logger ?? quiet,
      drainTimeoutMs: 0,
    });
    this.connection = connect(address, connection);
    this.testing = createClient(TestingService, this.connection.transport);
  }

  /**
   * Connect to the test-mode orchestrator and start the worker. Throws (and leaves nothing
   * open) when the orchestrator is not in test mode: FailedPreconditionError.
   */
  static async open(workflows: Workflow[], options: WorkflowTestEnvOptions = {}): Promise<WorkflowTestEnv> {
    const env = new WorkflowTestEnv(workflows, options);
    try {
      await env.clock();
      await env.worker.start();
    } catch (err) {
      env.client.close();
      env.connection.close();
      throw err;
    }
    return env;
  }

  /** Stop the worker (running steps are given back) and close the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.worker.stop();
    } finally {
      this.client.close();
      this.connection.close();
    }
  }

  // -- the clock ------------------------------------------------------------------------

  /** The manual clock's time. */
  async now(): Promise<Date> {
    return (await this.clock()).now;
  }

  /** When something is next due (a sleep's end, a timeout, a retry, a scheduled start, a cron slot), or null. */
  async nextTimer(): Promise<Date | null> {
    return (await this.clock()).nextTimer;
  }

  /** Wait until settled, move the clock forward by `ms`, fire what is due, wait until settled again; return the new time. */
  async advance(ms: number): Promise<Date> {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`advance: ms must be a finite number >= 0, got ${ms}`);
    await this.settle();
    const moved = clockOf(await this.rpc((o) => this.testing.advanceTime({ target: { case: "by", value: durationFromMs(ms) } }, o)));
    await this.settle();
    return moved.now;
  }

  /** As advance, to `when` (at or after the clock's time). */
  async advanceTo(when: Date): Promise<Date> {
    if (!(when instanceof Date) || Number.isNaN(when.getTime())) throw new TypeError("advanceTo: when must be a valid Date");
    await this.settle();
    const moved = clockOf(await this.rpc((o) => this.testing.advanceTime({ target: { case: "to", value: timestampFromDate(when) } }, o)));
    await this.settle();
    return moved.now;
  }

  /** Wait until settled, jump to the next timer and run what it resumes; the new time, or null (unmoved) when nothing is due ever. */
  async skipToNextTimer(): Promise<Date | null> {
    await this.settle();
    const response = await this.rpc((o) => this.testing.skipToNextTimer({}, o));
    await this.settle();
    return response.skipped ? clockOf(response).now : null;
  }

  // -- executions -----------------------------------------------------------------------

  /** Start an execution on the environment's queue, and wait until it settles. */
  async start(workflow: WorkflowRef, input?: unknown, options: StartOptions = {}): Promise<WorkflowRun> {
    const { executionId } = await this.client.start(workflow, input, { queue: this.queue, ...options });
    await this.settle();
    return new WorkflowRun(this, executionId);
  }

  /**
   * Wait until the execution finishes, and return it (whatever its end: check `status`).
   * With `skipTimers`, while it waits for time, jump to the next timer until it ends;
   * without, the clock does not move.
   *
   * Throws WorkflowSuspendedError when it is unfinished and nothing due moves it on.
   */
  async result(executionId: string, options: { skipTimers?: boolean } = {}): Promise<Execution> {
    for (;;) {
      await this.settle();
      const execution = await this.client.get(executionId, { includeSteps: true });
      if (isTerminal(execution.status)) return execution;
      const clock = await this.clock();
      if (options.skipTimers && clock.nextTimer !== null) {
        await this.skipToNextTimer();
        continue;
      }
      const hint =
        clock.nextTimer === null
          ? "nothing is due on the clock: send the event or provide the input it waits for"
          : `its next timer is due at ${clock.nextTimer.toISOString()}: call skipToNextTimer() or advance(ms), or pass skipTimers`;
      throw new WorkflowSuspendedError(
        `execution ${executionId} of ${execution.workflowName} is ${execution.status} at ${clock.now.toISOString()} ` +
          `(step ${JSON.stringify(execution.currentStep)}) and cannot go on by itself: ${hint}`,
        execution,
      );
    }
  }

  /** Send an event to an execution, then wait until settled. */
  async sendEvent(executionId: string, name: string, payload?: unknown, options: { eventId?: string } = {}): Promise<{ delivered: boolean; duplicate: boolean }> {
    const sent = await this.client.sendEvent(executionId, name, payload, options);
    await this.settle();
    return sent;
  }

  /** Answer an execution's input, then wait until settled. */
  async provideInput(executionId: string, name: string, value: unknown): Promise<void> {
    await this.client.provideInput(executionId, name, value);
    await this.settle();
  }

  // -- settling -------------------------------------------------------------------------

  /**
   * Return once no task of the worker's queues is leased or ready now and no timer is due;
   * NotSettledError after `settleTimeoutMs` (or `timeoutMs`).
   */
  async settle(timeoutMs = this.settleTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const busy = await this.busy();
      if (busy.length === 0) return;
      if (Date.now() >= deadline) {
        throw new NotSettledError(`the test environment did not settle within ${timeoutMs} ms: ${busy.join("; ")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  /** What keeps the environment busy now, in words (empty when settled). */
  private async busy(): Promise<string[]> {
    const reasons: string[] = [];
    if (this.worker.runningCount > 0) reasons.push(`${this.worker.runningCount} step(s) running in the worker`);
    for (const q of await this.client.listQueues()) {
      if (!this.queues.has(q.name)) continue;
      if (q.leased > 0) reasons.push(`${q.leased} task(s) leased on queue ${q.name}`);
      if (q.ready > 0) {
        reasons.push(`${q.ready} task(s) ready on queue ${q.name}` + (q.state === "paused" ? " (the queue is paused)" : ""));
      }
    }
    const clock = await this.clock();
    if (clock.nextTimer !== null && clock.nextTimer <= clock.now) reasons.push(`a timer is due at ${clock.nextTimer.toISOString()}`);
    return reasons;
  }

  private async clock(): Promise<Clock> {
    return clockOf(await this.rpc((o) => this.testing.getTime({}, o)));
  }

  private async rpc<T>(fn: (options: { timeoutMs: number }) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error("this WorkflowTestEnv is closed");
    try {
      return await fn({ timeoutMs: CALL_TIMEOUT_MS });
    } catch (err) {
      throw fromCallError(err, this.address);
    }
  }
}
