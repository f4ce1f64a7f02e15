/** What a step run becomes on the wire: a TaskCompletion, a TaskFailure or a TaskSuspension. */
import { create } from "@bufbuild/protobuf";
import type { ErrorInfo, LogLine } from "./gen/durable/v1/common_pb.js";
import { ErrorInfoSchema } from "./gen/durable/v1/common_pb.js";
import type {
  ChildStart,
  Evaluation as EvaluationPb,
  Task,
  TaskCompletion,
  TaskFailure,
  TaskLease,
  TaskSuspension,
} from "./gen/durable/v1/worker_service_pb.js";
import {
  EvaluationSchema,
  TaskCompletionSchema,
  TaskFailureSchema,
  TaskLeaseSchema,
  TaskSuspensionSchema,
} from "./gen/durable/v1/worker_service_pb.js";
import { NonRetryableError } from "./errors.js";
import type { Suspension } from "./steprun.js";
import type { Evaluation } from "./walk.js";

export const MAX_MESSAGE_CHARS = 16 * 1024;
export const MAX_TRACEBACK_CHARS = 64 * 1024;

export type Report = TaskCompletion | TaskFailure | TaskSuspension;

/** The lease that lets this worker report on `task`. */
export function leaseOf(task: Task): TaskLease {
  return create(TaskLeaseSchema, { taskId: task.taskId, leaseToken: task.leaseToken });
}

export interface CompletionParts {
  gotoTarget?: string;
  evaluations?: ReadonlyMap<string, Evaluation>;
  children?: ChildStart[];
}

export function completion(task: Task, resultJson: string, logs: LogLine[], parts: CompletionParts = {}): TaskCompletion {
  return create(TaskCompletionSchema, {
    lease: leaseOf(task),
    resultJson,
    logs,
    gotoTarget: parts.gotoTarget ?? "",
    evaluations: evaluationsToProto(parts.evaluations),
    children: parts.children ?? [],
  });
}

/** Evaluations by node name, as the protocol carries them (a user error as ErrorInfo). */
export function evaluationsToProto(evaluations: ReadonlyMap<string, Evaluation> | undefined): Record<string, EvaluationPb> {
  const out: Record<string, EvaluationPb> = {};
  for (const [name, e] of evaluations ?? []) {
    out[name] =
      "valueJson" in e
        ? create(EvaluationSchema, { outcome: { case: "valueJson", value: e.valueJson } })
        : create(EvaluationSchema, { outcome: { case: "error", value: errorFromThrown(e.error) } });
  }
  return out;
}

/** A step parked on a wait, with the child starts recorded up to it. */
export function suspension(task: Task, suspended: Suspension, logs: LogLine[]): TaskSuspension {
  return create(TaskSuspensionSchema, { lease: leaseOf(task), children: suspended.children, wait: suspended.wait, logs });
}

/** Replace every secret by `***` in the report's logs and error text. */
export function maskSecrets<R extends Report>(report: R, secrets: ReadonlySet<string>): R {
  if (secrets.size === 0) return report;
  // Longest first, so a secret containing another is masked whole.
  const all = [...secrets].sort((a, b) => b.length - a.length);
  const mask = (text: string): string => all.reduce((t, secret) => t.split(secret).join("***"), text);
  for (const line of report.logs) line.message = mask(line.message);
  if (report.$typeName === "durable.v1.TaskFailure" && report.error !== undefined) {
    report.error.message = mask(report.error.message);
    report.error.traceback = mask(report.error.traceback);
  }
  return report;
}

export function failure(task: Task, error: ErrorInfo, logs: LogLine[], timedOut = false): TaskFailure {
  return create(TaskFailureSchema, { lease: leaseOf(task), error, timedOut, logs });
}

/** A non-retryable failure decided by the worker, not thrown by the step. */
export function workerFailure(task: Task, type: string, message: string, logs: LogLine[] = []): TaskFailure {
  return failure(task, create(ErrorInfoSchema, { type, message, nonRetryable: true }), logs);
}

/** What a step threw, as ErrorInfo: its name, message and stack. */
export function errorFromThrown(thrown: unknown): ErrorInfo {
  if (thrown instanceof Error) {
    let message = thrown.message;
    if (message.length > MAX_MESSAGE_CHARS) message = `${message.slice(0, MAX_MESSAGE_CHARS)} [... cut]`;
    let traceback = thrown.stack ?? "";
    if (traceback.length > MAX_TRACEBACK_CHARS) traceback = `[... cut]\n${traceback.slice(-MAX_TRACEBACK_CHARS)}`;
    return create(ErrorInfoSchema, {
      type: thrown.name || thrown.constructor.name || "Error",
      message,
      traceback,
      nonRetryable: thrown instanceof NonRetryableError,
    });
  }
  // `throw "text"` and the like: no class, no stack.
  let message: string;
  try {
    message = typeof thrown === "string" ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    message = String(thrown);
  }
  return create(ErrorInfoSchema, { type: "Error", message: message.slice(0, MAX_MESSAGE_CHARS) });
}
