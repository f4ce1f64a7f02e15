/** Plain objects for what the orchestrator returns: payloads decoded, enums as strings. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ErrorInfo as ErrorInfoPb, InputField, LogLine as LogLinePb } from "./gen/durable/v1/common_pb.js";
import { EventWaitMode, ExecutionStatus, InputKind, StepAttemptStatus, TaskKind } from "./gen/durable/v1/common_pb.js";
import type {
  Execution as ExecutionPb,
  PendingEventWait as PendingEventWaitPb,
  PendingInput as PendingInputPb,
  StepAttempt as StepAttemptPb,
} from "./gen/durable/v1/workflow_service_pb.js";
import { decodeJson } from "./json.js";

export type Status =
  | "pending"
  | "running"
  | "waiting"
  | "completed"
  | "failed"
  | "cancelled"
  | "timed_out"
  | "compensating"
  | "compensated"
  | "compensation_failed";

const STATUS: Record<ExecutionStatus, Status | undefined> = {
  [ExecutionStatus.UNSPECIFIED]: undefined,
  [ExecutionStatus.PENDING]: "pending",
  [ExecutionStatus.RUNNING]: "running",
  [ExecutionStatus.WAITING]: "waiting",
  [ExecutionStatus.COMPLETED]: "completed",
  [ExecutionStatus.FAILED]: "failed",
  [ExecutionStatus.CANCELLED]: "cancelled",
  [ExecutionStatus.TIMED_OUT]: "timed_out",
  [ExecutionStatus.COMPENSATING]: "compensating",
  [ExecutionStatus.COMPENSATED]: "compensated",
  [ExecutionStatus.COMPENSATION_FAILED]: "compensation_failed",
};

const TERMINAL: ReadonlySet<Status> = new Set<Status>([
  "completed",
  "failed",
  "cancelled",
  "timed_out",
  "compensated",
  "compensation_failed",
]);

/** True when an execution in this status will not change any more. */
export function isTerminal(status: Status): boolean {
  return TERMINAL.has(status);
}

/** The status's protobuf value, for list filters. */
export function statusToProto(status: Status): ExecutionStatus {
  for (const [value, name] of Object.entries(STATUS)) {
    if (name === status) return Number(value) as ExecutionStatus;
  }
  throw new TypeError(`unknown execution status ${JSON.stringify(status)}`);
}

function statusOf(value: ExecutionStatus): Status {
  const status = STATUS[value];
  if (status === undefined) throw new TypeError(`the orchestrator sent an unknown execution status ${value}`);
  return status;
}

function lower<E extends number>(enumObject: Record<string, string | number>, value: E): string {
  const name = enumObject[value];
  return typeof name === "string" ? name.toLowerCase() : String(value);
}

function date(ts: Timestamp | undefined): Date | null {
  return ts === undefined ? null : timestampDate(ts);
}

/** Why a step or an execution failed. */
export interface ErrorInfo {
  type: string;
  message: string;
  traceback: string;
  nonRetryable: boolean;
  cause: ErrorInfo | null;
}

export function errorFromProto(error: ErrorInfoPb | undefined): ErrorInfo | null {
  if (error === undefined) return null;
  return {
    type: error.type,
    message: error.message,
    traceback: error.traceback,
    nonRetryable: error.nonRetryable,
    cause: errorFromProto(error.cause),
  };
}

export interface LogLine {
  time: Date | null;
  level: string;
  message: string;
  logger: string;
}

function logFromProto(line: LogLinePb): LogLine {
  return { time: date(line.time), level: line.level, message: line.message, logger: line.logger };
}

/** One attempt at one step. */
export interface StepAttempt {
  stepName: string;
  sequence: number;
  attempt: number;
  /** "running", "completed", "failed", "lost", "timed_out" or "waiting". */
  status: string;
  /** "step", "route", "into" or "compensation". */
  kind: string;
  lanePath: string;
  result: unknown;
  error: ErrorInfo | null;
  workerId: string;
  startedAt: Date | null;
  finishedAt: Date | null;
  retryAt: Date | null;
  logs: LogLine[];
}

function attemptFromProto(step: StepAttemptPb): StepAttempt {
  return {
    stepName: step.stepName,
    sequence: step.sequence,
    attempt: step.attempt,
    status: lower(StepAttemptStatus, step.status),
    kind: lower(TaskKind, step.kind),
    lanePath: step.lanePath,
    result: decodeJson(step.resultJson, "result_json"),
    error: errorFromProto(step.error),
    workerId: step.workerId,
    startedAt: date(step.startedAt),
    finishedAt: date(step.finishedAt),
    retryAt: date(step.retryAt),
    logs: step.logs.map(logFromProto),
  };
}

/** One run of a workflow. */
export interface Execution {
  id: string;
  workflowName: string;
  workflowVersion: string;
  status: Status;
  queue: string;
  priority: number;
  input: unknown;
  /** The last step's result, when completed (else null). */
  result: unknown;
  error: ErrorInfo | null;
  parentExecutionId: string;
  idempotencyKey: string;
  currentStep: string;
  createdAt: Date | null;
  scheduledAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  deadlineAt: Date | null;
  scheduleName: string;
  /** Every attempt of every step (with `includeSteps`). */
  steps: StepAttempt[];
  /** Events no wait has taken yet (with `includeSteps`). */
  unconsumedEvents: { name: string; payload: unknown; sentAt: Date | null }[];
}

export function executionFromProto(execution: ExecutionPb | undefined): Execution {
  if (execution === undefined) throw new TypeError("the orchestrator sent no execution");
  return {
    id: execution.id,
    workflowName: execution.workflowName,
    workflowVersion: execution.workflowVersion,
    status: statusOf(execution.status),
    queue: execution.queue,
    priority: execution.priority,
    input: decodeJson(execution.inputJson, "input_json"),
    result: decodeJson(execution.resultJson, "result_json"),
    error: errorFromProto(execution.error),
    parentExecutionId: execution.parentExecutionId,
    idempotencyKey: execution.idempotencyKey,
    currentStep: execution.currentStep,
    createdAt: date(execution.createdAt),
    scheduledAt: date(execution.scheduledAt),
    startedAt: date(execution.startedAt),
    finishedAt: date(execution.finishedAt),
    deadlineAt: date(execution.deadlineAt),
    scheduleName: execution.scheduleName,
    steps: execution.steps.map(attemptFromProto),
    unconsumedEvents: execution.unconsumedEvents.map((e) => ({
      name: e.name,
      payload: decodeJson(e.payloadJson, "payload_json"),
      sentAt: date(e.sentAt),
    })),
  };
}

/** A human input an execution waits for. */
export interface PendingInput {
  executionId: string;
  workflowName: string;
  stepName: string;
  name: string;
  /** "approval", "single_choice", "multi_choice", "free_text" or "form". */
  kind: string;
  prompt: string;
  choices: string[];
  fields: { name: string; type: string; required: boolean; label: string }[];
  requestedAt: Date | null;
  deadlineAt: Date | null;
}

export function pendingInputFromProto(input: PendingInputPb): PendingInput {
  return {
    executionId: input.executionId,
    workflowName: input.workflowName,
    stepName: input.stepName,
    name: input.name,
    kind: lower(InputKind, input.kind),
    prompt: input.prompt,
    choices: [...input.choices],
    fields: input.fields.map((f: InputField) => ({
      name: f.name,
      type: f.type,
      required: f.required,
      label: f.label,
    })),
    requestedAt: date(input.requestedAt),
    deadlineAt: date(input.deadlineAt),
  };
}

/** A step waiting for events. */
export interface PendingEventWait {
  executionId: string;
  workflowName: string;
  stepName: string;
  names: string[];
  /** "one", "any" or "all". */
  mode: string;
  received: string[];
  waitingSince: Date | null;
  deadlineAt: Date | null;
}

export function pendingEventWaitFromProto(wait: PendingEventWaitPb): PendingEventWait {
  return {
    executionId: wait.executionId,
    workflowName: wait.workflowName,
    stepName: wait.stepName,
    names: [...wait.names],
    mode: lower(EventWaitMode, wait.mode),
    received: [...wait.received],
    waitingSince: date(wait.waitingSince),
    deadlineAt: date(wait.deadlineAt),
  };
}
