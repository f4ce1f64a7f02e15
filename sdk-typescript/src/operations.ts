/** What operators read: queues, stuck executions, workers, and the graph formats. */
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { durationMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Finding as FindingPb, QueueInfo as QueueInfoPb } from "./gen/durable/v1/operations_service_pb.js";
import { QueueState } from "./gen/durable/v1/operations_service_pb.js";
import type { WorkerInfo as WorkerInfoPb } from "./gen/durable/v1/workflow_service_pb.js";
import { GraphFormat } from "./gen/durable/v1/workflow_service_pb.js";

/** "active"; "paused": no task is handed out, new executions are accepted; "draining": the reverse. */
export type QueueStateName = "active" | "paused" | "draining";

/** One queue's state and load (see `Client.listQueues`). */
export interface QueueInfo {
  name: string;
  state: QueueStateName;
  /** Why it was paused or drained, or "". */
  reason: string;
  /** Tasks due now, waiting for a worker. */
  ready: number;
  /** Tasks a worker runs now. */
  leased: number;
  /** Tasks of suspended steps (sleeping, waiting for events, inputs or children). */
  waiting: number;
  /** Ready tasks not due yet (retry backoff, scheduled starts). */
  delayed: number;
  /** How long the oldest due task has waited for a worker, in ms; null when none is due. */
  oldestReadyAgeMs: number | null;
  /** Its concurrency limit, 0 for none. */
  concurrencyLimit: number;
}

/** An unfinished execution that nothing can move forward (see `Client.diagnose`). */
export interface Finding {
  executionId: string;
  workflowName: string;
  status: string;
  /** "no_task", "waiting_on_nothing", "no_worker_for_queue", "no_worker_for_version" or "queue_paused". */
  problem: string;
  /** What is wrong and what to do, in words. */
  detail: string;
  since: Date | null;
}

/** A registered worker (see `Client.listWorkers`). */
export interface WorkerInfo {
  workerId: string;
  queues: string[];
  /** The workflow versions it registered. */
  versions: string[];
  startedAt: Date | null;
  lastSeenAt: Date | null;
  /** Tasks it holds leases on now. */
  leasedTasks: number;
}

/** The text format of `Client.getExecutionGraph`. */
export type GraphFormatName = "mermaid" | "dot";

const QUEUE_STATES: Record<QueueState, QueueStateName> = {
  [QueueState.UNSPECIFIED]: "active",
  [QueueState.ACTIVE]: "active",
  [QueueState.PAUSED]: "paused",
  [QueueState.DRAINING]: "draining",
};

const GRAPH_FORMATS: Record<GraphFormatName, GraphFormat> = {
  mermaid: GraphFormat.MERMAID,
  dot: GraphFormat.DOT,
};

function date(ts: Timestamp | undefined): Date | null {
  return ts === undefined ? null : timestampDate(ts);
}

function ms(duration: Duration | undefined): number | null {
  return duration === undefined ? null : durationMs(duration);
}

export function graphFormatToProto(format: GraphFormatName): GraphFormat {
  const value = GRAPH_FORMATS[format];
  if (value === undefined) {
    throw new TypeError(`format must be one of ${Object.keys(GRAPH_FORMATS).join(", ")}, got ${JSON.stringify(format)}`);
  }
  return value;
}

export function queueInfoFromProto(queue: QueueInfoPb | undefined): QueueInfo {
  if (queue === undefined) throw new TypeError("the orchestrator sent no queue");
  const state = QUEUE_STATES[queue.state];
  if (state === undefined) throw new TypeError(`the orchestrator sent an unknown queue state ${queue.state}`);
  return {
    name: queue.name,
    state,
    reason: queue.reason,
    ready: Number(queue.ready),
    leased: Number(queue.leased),
    waiting: Number(queue.waiting),
    delayed: Number(queue.delayed),
    oldestReadyAgeMs: ms(queue.oldestReadyAge),
    concurrencyLimit: queue.concurrencyLimit,
  };
}

export function findingFromProto(finding: FindingPb): Finding {
  return {
    executionId: finding.executionId,
    workflowName: finding.workflowName,
    status: finding.status,
    problem: finding.problem,
    detail: finding.detail,
    since: date(finding.since),
  };
}

export function workerInfoFromProto(worker: WorkerInfoPb): WorkerInfo {
  return {
    workerId: worker.workerId,
    queues: [...worker.queues],
    versions: [...worker.versions],
    startedAt: date(worker.startedAt),
    lastSeenAt: date(worker.lastSeenAt),
    leasedTasks: worker.leasedTasks,
  };
}
