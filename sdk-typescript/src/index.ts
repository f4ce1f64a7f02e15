export * from "./client.js";
export * from "./errors.js";
export type { Json } from "./json.js";
export * from "./models.js";
export type { ConnectionOptions, TlsOptions } from "./transport.js";
export type { StepContext, StepLogger } from "./context.js";
export type { AnyEvent, ChildOptions, InputOptions, TaskKindName, WaitOptions } from "./context.js";
export { ChildWorkflowError, WaitError, WaitTimeoutError, childExecutionId } from "./steprun.js";
export * from "./workflow.js";
export * from "./worker.js";
export type { Finding, GraphFormatName, QueueInfo, QueueStateName, WorkerInfo } from "./operations.js";
export type {
  CatchUpName,
  OverlapName,
  Schedule,
  ScheduleChanges,
  ScheduleFilter,
  ScheduleOptions,
  WorkflowRef,
} from "./schedules.js";
export { traceparentOf } from "./tracing.js";
export { NotSettledError, TEST_ADDRESS_ENV, WorkflowRun, WorkflowSuspendedError, WorkflowTestEnv } from "./testing.js";
export type { WorkflowTestEnvOptions } from "./testing.js";
