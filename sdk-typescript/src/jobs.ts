/**
 * What a task asks this worker to run, by its kind (docs/walk.md, "Task kinds"):
 *
 * | kind | calls | input | result |
 * | --- | --- | --- | --- |
 * | STEP | `step(input, ctx)` | the walk's data | its return value (a goto's data) |
 * | ROUTE | nothing | the walk's data at the node | the input, with the node's evaluation |
 * | INTO | `into(data, results, ctx)` | `{"data": ..., "results": ...}` | its return value (a goto's data) |
 * | COMPENSATION | `compensation(result, ctx)` | the compensated step's result | its return value |
 */
import { NonRetryableError } from "./errors.js";
import { TaskKind } from "./gen/durable/v1/common_pb.js";
import type { Task } from "./gen/durable/v1/worker_service_pb.js";
import { decodeJson } from "./json.js";
import type { StepRun } from "./steprun.js";
import type { Workflow } from "./workflow.js";

/** A failure the worker decides itself (UnknownStep, UnknownTaskKind, InputDecodeError). */
export class JobError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** A goto the workflow cannot follow (a target outside the sequence, or from a compensation). */
export class GotoError extends NonRetryableError {
  override name = "GotoError";
}

/** User code to run for a task. */
export interface UserJob {
  readonly kind: "step" | "into" | "compensation";
  call(ctx: StepRun): unknown;
}

export type Job = UserJob | { readonly kind: "route"; readonly input: unknown };

function decodeInput(task: Task): unknown {
  try {
    return decodeJson(task.inputJson, "the task's input");
  } catch (err) {
    throw new JobError("InputDecodeError", (err as Error).message);
  }
}

/** The job of `task` in `workflow`; throws JobError when there is none. */
export function jobOf(workflow: Workflow, task: Task): Job {
  const name = task.stepName;
  const where = `workflow ${task.workflowName}`;
  switch (task.kind) {
    case TaskKind.STEP: {
      const step = workflow.getStep(name);
      if (step === undefined) throw new JobError("UnknownStep", `${where} has no step ${JSON.stringify(name)} here`);
      const input = decodeInput(task);
      return { kind: "step", call: (ctx) => step.fn(input, ctx) };
    }
    case TaskKind.ROUTE: {
      const node = workflow.getNode(name);
      if (node === undefined) throw new JobError("UnknownStep", `${where} has no node ${JSON.stringify(name)} here`);
      return { kind: "route", input: decodeInput(task) };
    }
    case TaskKind.INTO: {
      const node = workflow.getNode(name);
      if (node === undefined || (node.kind !== "parallel" && node.kind !== "foreach") || node.into === undefined) {
        throw new JobError("UnknownStep", `${where} has no parallel or foreach ${JSON.stringify(name)} with an into merge here`);
      }
      const input = decodeInput(task);
      if (input === null || typeof input !== "object" || Array.isArray(input) || !("data" in input) || !("results" in input)) {
        throw new JobError(
          "InputDecodeError",
          `the input of the into task of ${name} must be an object with "data" and "results", got ${task.inputJson.slice(0, 200)}`,
        );
      }
      const into = node.into;
      const { data, results } = input as { data: unknown; results: unknown };
      return { kind: "into", call: (ctx) => into(data, results, ctx) };
    }
    case TaskKind.COMPENSATION: {
      const compensation = workflow.getCompensation(name);
      if (compensation === undefined) throw new JobError("UnknownStep", `${where} has no compensation ${JSON.stringify(name)} here`);
      const input = decodeInput(task);
      return { kind: "compensation", call: (ctx) => compensation.fn(input, ctx) };
    }
    default:
      throw new JobError(
        "UnknownTaskKind",
        `this worker does not know task kind ${TaskKind[task.kind] ?? task.kind} (sent for ${task.workflowName}.${name})`,
      );
  }
}
