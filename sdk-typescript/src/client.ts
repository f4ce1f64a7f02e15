/**
 * The client: start workflows and follow, cancel and feed their executions.
 *
 *     const client = new Client("127.0.0.1:7411");
 *     const { executionId } = await client.start("process_order", { orderId: 7 });
 *     const execution = await client.wait(executionId);
 *     console.log(execution.status, execution.result);
 *     client.close();
 *
 * Besides executions, it manages cron schedules (`createSchedule`, `getSchedule`,
 * `listSchedules`, `updateSchedule`, `enableSchedule`, `disableSchedule`, `deleteSchedule`,
 * `triggerSchedule`), serves operators (`pauseQueue`, `drainQueue`, `resumeQueue`,
 * `listQueues`, `retryExecution`, `diagnose`, `listWorkers`) and draws workflows
 * (`getExecutionGraph`). The caller's active OpenTelemetry span travels with every call
 * as W3C trace context.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { CallOptions, Client as RpcClient } from "@connectrpc/connect";
import { createClient } from "@connectrpc/connect";
import {
  DeadlineExceededError,
  DurableError,
  UnavailableError,
  fromCallError,
} from "./errors.js";
import type { StartWorkflowRequest } from "./gen/durable/v1/workflow_service_pb.js";
import { StartWorkflowRequestSchema, WorkflowService } from "./gen/durable/v1/workflow_service_pb.js";
import { OperationsService } from "./gen/durable/v1/operations_service_pb.js";
import { ScheduleService } from "./gen/durable/v1/schedule_service_pb.js";
import { encodeJson } from "./json.js";
import type { Execution, PendingEventWait, PendingInput, Status } from "./models.js";
import {
  executionFromProto,
  isTerminal,
  pendingEventWaitFromProto,
  pendingInputFromProto,
  statusToProto,
} from "./models.js";
import type { Finding, GraphFormatName, QueueInfo, WorkerInfo } from "./operations.js";
import { findingFromProto, graphFormatToProto, queueInfoFromProto, workerInfoFromProto } from "./operations.js";
import type { Schedule, ScheduleChanges, ScheduleFilter, ScheduleOptions, WorkflowRef } from "./schedules.js";
import {
  listSchedulesRequest,
  newSchedule,
  scheduleFromProto,
  updateScheduleRequest,
  workflowName,
} from "./schedules.js";
import { traceContextInterceptor } from "./tracing.js";
import type { Connection, ConnectionOptions } from "./transport.js";
import { connect } from "./transport.js";

export interface ClientOptions extends ConnectionOptions {
  /** Deadline of each call, in milliseconds (default 30 s; a wait adds its own wait). */
  timeoutMs?: number;
}

export interface StartOptions {
  /** The queue to run on; default the workflow's queue. */
  queue?: string;
  /** Higher runs first (default 0). */
  priority?: number;
  /** Start no sooner than this. */
  scheduledAt?: Date;
  /** A second start with the same key returns the first execution (`created` false). */
  idempotencyKey?: string;
}

export interface StartRequest extends StartOptions {
  /** The workflow, or its name. */
  workflow: WorkflowRef;
  input?: unknown;
}

export interface StartResult {
  executionId: string;
  /** False when the idempotency key named an execution that existed already. */
  created: boolean;
}

export interface ListFilter {
  workflow?: string;
  statuses?: Status[];
  queue?: string;
  parentExecutionId?: string;
  topLevelOnly?: boolean;
  createdAfter?: Date;
  createdBefore?: Date;
  scheduleName?: string;
  pageSize?: number;
  pageToken?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `pageToken` for the next page; empty on the last one. */
  nextPageToken: string;
}

export interface ExecutionPage extends Page<Execution> {
  totalCount: number;
}

export interface PendingFilter {
  executionId?: string;
  workflow?: string;
  name?: string;
  pageSize?: number;
  pageToken?: string;
}

/** The longest one WaitExecution call waits on the orchestrator. */
const MAX_SERVER_WAIT_MS = 30_000;
const RETRY_DELAY_MS = [100, 200, 400, 800, 1600, 3200, 5000];

function startRequest(workflow: WorkflowRef, input: unknown, options: StartOptions): StartWorkflowRequest {
  return create(StartWorkflowRequestSchema, {
    workflowName: workflowName(workflow),
    inputJson: encodeJson(input, "the workflow input"),
    queue: options.queue ?? "",
    priority: options.priority ?? 0,
    idempotencyKey: options.idempotencyKey ?? "",
    ...(options.scheduledAt ? { scheduledAt: timestampFromDate(options.scheduledAt) } : {}),
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A client of the orchestrator's WorkflowService at `address` ("host:port"). */
export class Client {
  readonly address: string;
  private readonly connection: Connection;
  private readonly rpc: RpcClient<typeof WorkflowService>;
  private readonly schedules: RpcClient<typeof ScheduleService>;
  private readonly operations: RpcClient<typeof OperationsService>;
  private readonly timeoutMs: number;
  private closed = false;

  constructor(address: string, options: ClientOptions = {}) {
    const timeoutMs = options.timeoutMs ?? 30_000;
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    this.address = address;
    this.timeoutMs = timeoutMs;
    this.connection = connect(address, options, [traceContextInterceptor]);
    this.rpc = createClient(WorkflowService, this.connection.transport);
    this.schedules = createClient(ScheduleService, this.connection.transport);
    this.operations = createClient(OperationsService, this.connection.transport);
  }

  /** Close the connection; calls in flight fail, and later ones throw. */
  close(): void {
    this.closed = true;
    this.connection.close();
  }

  private async call<T>(fn: (options: CallOptions) => Promise<T>, extraMs = 0): Promise<T> {
    if (this.closed) throw new Error("this Client is closed");
    try {
      return await fn({ timeoutMs: this.timeoutMs + extraMs });
    } catch (err) {
      if (this.closed) throw new Error("this Client is closed", { cause: err });
      throw fromCallError(err, this.address);
    }
  }

  /** Start one execution of `workflow` with `input` (JSON). */
  async start(workflow: WorkflowRef, input?: unknown, options: StartOptions = {}): Promise<StartResult> {
    const request = startRequest(workflow, input, options);
    const response = await this.call((o) => this.rpc.startWorkflow(request, o));
    return { executionId: response.executionId, created: response.created };
  }

  /** Start several executions in one call, all or none; results in request order. */
  async startMany(starts: StartRequest[]): Promise<StartResult[]> {
    const requests = starts.map((s) => startRequest(s.workflow, s.input, s));
    const response = await this.call((o) => this.rpc.startWorkflows({ requests }, o));
    return response.results.map((r) => ({ executionId: r.executionId, created: r.created }));
  }

  /** One execution, with its step attempts (and their logs) when asked. */
  async get(
    executionId: string,
    options: { includeSteps?: boolean; includeLogs?: boolean } = {},
  ): Promise<Execution> {
    const response = await this.call((o) =>
      this.rpc.getExecution(
        {
          executionId,
          includeSteps: options.includeSteps ?? false,
          includeLogs: options.includeLogs ?? false,
        },
        o,
      ),
    );
    return executionFromProto(response.execution);
  }

  /**
   * Wait until the execution reaches a terminal status, and return it.
   *
   * The orchestrator answers as soon as it finishes (WaitExecution, a long poll). An
   * outage does not end the wait: it asks again, with backoff, until `timeoutMs`
   * (default 60 s; `Infinity` waits for ever), past which DeadlineExceededError is thrown.
   */
  async wait(executionId: string, options: { timeoutMs?: number } = {}): Promise<Execution> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let failures = 0;
    for (;;) {
      const left = deadline - Date.now();
      const serverWait = Math.max(0, Math.min(MAX_SERVER_WAIT_MS, left));
      try {
        const response = await this.call(
          (o) => this.rpc.waitExecution({ executionId, timeout: durationFromMs(serverWait) }, o),
          serverWait,
        );
        failures = 0;
        const execution = executionFromProto(response.execution);
        if (isTerminal(execution.status)) return execution;
      } catch (err) {
        const transient = err instanceof UnavailableError || err instanceof DeadlineExceededError;
        if (!transient || Date.now() >= deadline) throw err;
        const delay = RETRY_DELAY_MS[Math.min(failures, RETRY_DELAY_MS.length - 1)] ?? 5000;
        failures += 1;
        await sleep(Math.min(delay, Math.max(deadline - Date.now(), 0)));
        continue;
      }
      if (Date.now() >= deadline) {
        throw new DeadlineExceededError(
          `execution ${executionId} did not finish within ${timeoutMs} ms`,
          { code: "DEADLINE_EXCEEDED" },
        );
      }
    }
  }

  /** One page of executions, newest first, with the total count of matches. */
  async list(filter: ListFilter = {}): Promise<ExecutionPage> {
    const response = await this.call((o) =>
      this.rpc.listExecutions(
        {
          workflowName: filter.workflow ?? "",
          statuses: (filter.statuses ?? []).map(statusToProto),
          queue: filter.queue ?? "",
          parentExecutionId: filter.parentExecutionId ?? "",
          topLevelOnly: filter.topLevelOnly ?? false,
          scheduleName: filter.scheduleName ?? "",
          pageSize: filter.pageSize ?? 0,
          pageToken: filter.pageToken ?? "",
          ...(filter.createdAfter ? { createdAfter: timestampFromDate(filter.createdAfter) } : {}),
          ...(filter.createdBefore ? { createdBefore: timestampFromDate(filter.createdBefore) } : {}),
        },
        o,
      ),
    );
    return {
      items: response.executions.map(executionFromProto),
      nextPageToken: response.nextPageToken,
      totalCount: Number(response.totalCount),
    };
  }

  /** Cancel an execution (and its children); returns it as it is after the cancel. */
  async cancel(executionId: string, reason = ""): Promise<Execution> {
    const response = await this.call((o) => this.rpc.cancelExecution({ executionId, reason }, o));
    return executionFromProto(response.execution);
  }

  /** One page of the child executions an execution started. */
  async listChildren(
    parentExecutionId: string,
    options: { statuses?: Status[]; pageSize?: number; pageToken?: string } = {},
  ): Promise<Page<Execution>> {
    const response = await this.call((o) =>
      this.rpc.listChildren(
        {
          parentExecutionId,
          statuses: (options.statuses ?? []).map(statusToProto),
          pageSize: options.pageSize ?? 0,
          pageToken: options.pageToken ?? "",
        },
        o,
      ),
    );
    return { items: response.executions.map(executionFromProto), nextPageToken: response.nextPageToken };
  }

  /**
   * Send an event to an execution. With `eventId`, sending the same id again is a
   * no-op (`duplicate` true), so a retried send is safe.
   */
  async sendEvent(
    executionId: string,
    name: string,
    payload?: unknown,
    options: { eventId?: string } = {},
  ): Promise<{ delivered: boolean; duplicate: boolean }> {
    const payloadJson = encodeJson(payload, "the event payload");
    const response = await this.call((o) =>
      this.rpc.sendEvent({ executionId, name, payloadJson, eventId: options.eventId ?? "" }, o),
    );
    return { delivered: response.delivered, duplicate: response.duplicate };
  }

  /** Answer a human input an execution waits for. */
  async provideInput(executionId: string, name: string, value: unknown): Promise<void> {
    const valueJson = encodeJson(value, "the input value");
    await this.call((o) => this.rpc.provideInput({ executionId, name, valueJson }, o));
  }

  /** One page of the human inputs executions wait for. */
  async listPendingInputs(filter: PendingFilter = {}): Promise<Page<PendingInput>> {
    const response = await this.call((o) =>
      this.rpc.listPendingInputs(
        {
          executionId: filter.executionId ?? "",
          workflowName: filter.workflow ?? "",
          name: filter.name ?? "",
          pageSize: filter.pageSize ?? 0,
          pageToken: filter.pageToken ?? "",
        },
        o,
      ),
    );
    return { items: response.inputs.map(pendingInputFromProto), nextPageToken: response.nextPageToken };
  }

  /** One page of the steps waiting for events. */
  async listPendingEvents(filter: PendingFilter = {}): Promise<Page<PendingEventWait>> {
    const response = await this.call((o) =>
      this.rpc.listPendingEvents(
        {
          executionId: filter.executionId ?? "",
          workflowName: filter.workflow ?? "",
          name: filter.name ?? "",
          pageSize: filter.pageSize ?? 0,
          pageToken: filter.pageToken ?? "",
        },
        o,
      ),
    );
    return { items: response.waits.map(pendingEventWaitFromProto), nextPageToken: response.nextPageToken };
  }

  /**
   * A workflow drawn as a graph: Mermaid flowchart or Graphviz DOT text. Given an
   * execution, its definition version with each node's state; given a workflow, its
   * latest definition. TypeError unless exactly one of the two is given.
   */
  async getExecutionGraph(
    target: { executionId: string; workflow?: undefined } | { workflow: WorkflowRef; executionId?: undefined },
    options: { format?: GraphFormatName } = {},
  ): Promise<string> {
    const { executionId, workflow } = target;
    if ((executionId === undefined) === (workflow === undefined)) {
      throw new TypeError("give an executionId or a workflow (not both)");
    }
    const request = {
      executionId: executionId ?? "",
      workflowName: workflow === undefined ? "" : workflowName(workflow),
      format: graphFormatToProto(options.format ?? "mermaid"),
    };
    const response = await this.call((o) => this.rpc.getExecutionGraph(request, o));
    return response.text;
  }

  /** The workers that registered, with their last heartbeat; optionally only those on `queue`, or seen lately. */
  async listWorkers(filter: { queue?: string; seenWithinMs?: number } = {}): Promise<WorkerInfo[]> {
    const seenWithinMs = filter.seenWithinMs ?? 0;
    if (!(seenWithinMs >= 0)) throw new RangeError(`seenWithinMs must not be negative, got ${seenWithinMs}`);
    const request = { queue: filter.queue ?? "", seenWithinSeconds: Math.ceil(seenWithinMs / 1000) };
    const response = await this.call((o) => this.rpc.listWorkers(request, o));
    return response.workers.map(workerInfoFromProto);
  }

  // -- schedules ------------------------------------------------------------------------

  /**
   * Create a cron schedule that starts `workflow`; return it. `cron` has five fields
   * (minute hour day-of-month month day-of-week), six with seconds first, or is an alias
   * ("@daily"). AlreadyExistsError when the name is taken; InvalidArgumentError for a bad
   * name, cron expression, time zone or value.
   */
  async createSchedule(
    name: string,
    workflow: WorkflowRef,
    cron: string,
    options: ScheduleOptions = {},
  ): Promise<Schedule> {
    const schedule = newSchedule(name, workflow, cron, options);
    const response = await this.call((o) => this.schedules.createSchedule({ schedule }, o));
    return scheduleFromProto(response.schedule);
  }

  /** One schedule; NotFoundError if there is none by that name. */
  async getSchedule(name: string): Promise<Schedule> {
    const response = await this.call((o) => this.schedules.getSchedule({ name }, o));
    return scheduleFromProto(response.schedule);
  }

  /** One page of schedules, by name; every filter given must match. */
  async listSchedules(filter: ScheduleFilter = {}): Promise<Page<Schedule>> {
    const request = listSchedulesRequest(filter);
    const response = await this.call((o) => this.schedules.listSchedules(request, o));
    return { items: response.schedules.map(scheduleFromProto), nextPageToken: response.nextPageToken };
  }

  /**
   * Change the given fields of a schedule, and only those; return it:
   * `updateSchedule("nightly", { cron: "0 3 * * *", input: { full: true } })`.
   */
  async updateSchedule(name: string, changes: ScheduleChanges): Promise<Schedule> {
    const request = updateScheduleRequest(name, changes);
    const response = await this.call((o) => this.schedules.updateSchedule(request, o));
    return scheduleFromProto(response.schedule);
  }

  /** Turn a schedule on (it fires from its next slot on); return it. */
  async enableSchedule(name: string): Promise<Schedule> {
    const response = await this.call((o) => this.schedules.enableSchedule({ name }, o));
    return scheduleFromProto(response.schedule);
  }

  /** Turn a schedule off; return it. */
  async disableSchedule(name: string): Promise<Schedule> {
    const response = await this.call((o) => this.schedules.disableSchedule({ name }, o));
    return scheduleFromProto(response.schedule);
  }

  /** Delete a schedule; the executions it started stay. */
  async deleteSchedule(name: string): Promise<void> {
    await this.call((o) => this.schedules.deleteSchedule({ name }, o));
  }

  /**
   * Start one run of a schedule now; return the execution's id. Without `input` the run
   * gets the schedule's input (`{ input: null }` is a null input).
   */
  async triggerSchedule(name: string, options: { input?: unknown } = {}): Promise<string> {
    const inputJson = "input" in options ? encodeJson(options.input, "the run's input") : "";
    const response = await this.call((o) => this.schedules.triggerSchedule({ name, inputJson }, o));
    return response.executionId;
  }

  // -- operations -----------------------------------------------------------------------

  /** Stop workers from taking the queue's tasks (running ones finish); new starts wait. */
  async pauseQueue(queue: string, reason = ""): Promise<QueueInfo> {
    const response = await this.call((o) => this.operations.pauseQueue({ queue, reason }, o));
    return queueInfoFromProto(response.queue);
  }

  /** Let workers take a paused or draining queue's tasks, and new starts, again. */
  async resumeQueue(queue: string): Promise<QueueInfo> {
    const response = await this.call((o) => this.operations.resumeQueue({ queue }, o));
    return queueInfoFromProto(response.queue);
  }

  /** Refuse new executions on the queue (FailedPreconditionError) while its work runs to its end. */
  async drainQueue(queue: string, reason = ""): Promise<QueueInfo> {
    const response = await this.call((o) => this.operations.drainQueue({ queue, reason }, o));
    return queueInfoFromProto(response.queue);
  }

  /** Every queue with work or a state: its state, counts and oldest ready age. */
  async listQueues(): Promise<QueueInfo[]> {
    const response = await this.call((o) => this.operations.listQueues({}, o));
    return response.queues.map(queueInfoFromProto);
  }

  /**
   * Run a failed execution again from the top-level step that failed, with its input;
   * return that step's name. FailedPreconditionError when the execution has not failed.
   */
  async retryExecution(executionId: string): Promise<string> {
    const response = await this.call((o) => this.operations.retryExecution({ executionId }, o));
    return response.stepName;
  }

  /**
   * Unfinished executions that nothing can move forward, and why: at most `limit` (0: the
   * orchestrator's 100); workers seen within `workerAliveWithinMs` count as alive (default 60 s).
   */
  async diagnose(options: { limit?: number; workerAliveWithinMs?: number } = {}): Promise<Finding[]> {
    const limit = options.limit ?? 0;
    if (!(limit >= 0)) throw new RangeError(`limit must not be negative, got ${limit}`);
    const alive = options.workerAliveWithinMs;
    if (alive !== undefined && !(alive > 0)) {
      throw new RangeError(`workerAliveWithinMs must be positive, got ${alive}`);
    }
    const request = { limit, ...(alive === undefined ? {} : { workerAliveWithin: durationFromMs(alive) }) };
    const response = await this.call((o) => this.operations.diagnose(request, o));
    return response.findings.map(findingFromProto);
  }
}


