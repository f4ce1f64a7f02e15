/** What a step run becomes on the wire: a TaskCompletion or a TaskFailure. */
import { create } from "@bufbuild/protobuf";
import type { ErrorInfo, LogLine } from "./gen/durable/v1/common_pb.js";
import { ErrorInfoSchema } from "./gen/durable/v1/common_pb.js";
import type { Task, TaskCompletion, TaskFailure, TaskLease } from "./gen/durable/v1/worker_service_pb.js";
import { TaskCompletionSchema, TaskFailureSchema, TaskLeaseSchema } from "./gen/durable/v1/worker_service_pb.js";
import { NonRetryableError } from "./errors.js";

export const MAX_MESSAGE_CHARS = 16 * 1024;
export const MAX_TRACEBACK_CHARS = 64 * 1024;

export type Report = TaskCompletion | TaskFailure;

/** The lease that lets this worker report on `task`. */
export function leaseOf(task: Task): TaskLease {
  return create(TaskLeaseSchema, { taskId: task.taskId, leaseToken: task.leaseToken });
}

export function completion(task: Task, resultJson: string, logs: LogLine[]): TaskCompletion {
  return create(TaskCompletionSchema, { lease: leaseOf(task), resultJson, logs });
}

export function failure(task: Task, error: ErrorInfo, logs: LogLine[], timedOut = false): TaskFailure {
  return create(TaskFailureSchema, { lease: leaseOf(task), error, timedOut, logs });
}

/** A non-retryable failure decided by the worker, not thrown by the step. */
export function workerFailure(task: Task, type: string, message: string): TaskFailure {
  return failure(task, create(ErrorInfoSchema, { type, message, nonRetryable: true }), []);
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
