/** Cron schedules (the ScheduleService): the plain Schedule object and the requests that change one. */
import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CatchUp, Overlap } from "./gen/durable/v1/common_pb.js";
import type {
  Schedule as SchedulePb,
  ListSchedulesRequest,
  UpdateScheduleRequest,
} from "./gen/durable/v1/schedule_service_pb.js";
import {
  ListSchedulesRequestSchema,
  ScheduleSchema,
  UpdateScheduleRequestSchema,
} from "./gen/durable/v1/schedule_service_pb.js";
import { decodeJson, encodeJson } from "./json.js";

/** Slots missed while no orchestrator ran: one run for them all, none, or each (up to a limit). */
export type CatchUpName = "once" | "skip" | "all";
/** A slot while the previous run still runs: start anyway, skip it, or cancel the previous run. */
export type OverlapName = "allow" | "skip" | "cancel_previous";

/** A workflow, or anything with its name (a `Workflow`). */
export type WorkflowRef = string | { readonly name: string };

const CATCH_UP: Record<CatchUpName, CatchUp> = {
  once: CatchUp.ONCE,
  skip: CatchUp.SKIP,
  all: CatchUp.ALL,
};
const OVERLAP: Record<OverlapName, Overlap> = {
  allow: Overlap.ALLOW,
  skip: Overlap.SKIP,
  cancel_previous: Overlap.CANCEL_PREVIOUS,
};

/** A cron schedule that starts a workflow (see `Client.createSchedule`). */
export interface Schedule {
  name: string;
  workflowName: string;
  /** Five fields, six with seconds first, or an alias such as "@daily". */
  cron: string;
  /** The IANA time zone its wall clock follows; "" means UTC. */
  timezone: string;
  /** The input of each run. */
  input: unknown;
  /** The queue its runs go to; "" means the workflow's. */
  queue: string;
  priority: number;
  enabled: boolean;
  catchUp: CatchUpName;
  catchUpLimit: number;
  overlap: OverlapName;
  maxFailures: number;
  /** Its next slot, if enabled. */
  nextFireAt: Date | null;
  lastFireAt: Date | null;
  /** The execution its last slot started, or "". */
  lastExecutionId: string;
  consecutiveFailures: number;
  lastError: string;
  /** Why it disabled itself, or "". */
  disabledReason: string;
  /** True for a schedule declared in a workflow's code, owned by the workers' registrations. */
  declared: boolean;
  createdAt: Date | null;
  updatedAt: Date | null;
}

/** The settings of a new schedule besides its name, workflow and cron expression. */
export interface ScheduleOptions {
  /** An IANA time zone ("America/New_York"); default UTC. */
  timezone?: string;
  /** The input of each run (JSON); default null. */
  input?: unknown;
  /** The runs' queue; default the workflow's. */
  queue?: string;
  priority?: number;
  /** False to create it switched off (default true). */
  enabled?: boolean;
  /** Default "once". */
  catchUp?: CatchUpName;
  /** With "all", at most this many missed slots run (0: 10). */
  catchUpLimit?: number;
  /** Default "allow". */
  overlap?: OverlapName;
  /** Consecutive failures to start a run before it disables itself (0: 5). */
  maxFailures?: number;
}

/** What `Client.updateSchedule` changes: each key given, and only those. */
export interface ScheduleChanges extends Omit<ScheduleOptions, "queue"> {
  workflow?: WorkflowRef;
  cron?: string;
  /** `null` or "" goes back to the workflow's queue. */
  queue?: string | null;
}

export interface ScheduleFilter {
  /** Only the enabled (true) or the disabled (false) ones. */
  enabled?: boolean;
  workflow?: WorkflowRef;
  queue?: string;
  pageSize?: number;
  pageToken?: string;
}

/** The name of a workflow reference. */
export function workflowName(workflow: WorkflowRef): string {
  return typeof workflow === "string" ? workflow : workflow.name;
}

function catchUpToProto(name: CatchUpName): CatchUp {
  const value = CATCH_UP[name];
  if (value === undefined) {
    throw new TypeError(`catchUp must be one of ${Object.keys(CATCH_UP).join(", ")}, got ${JSON.stringify(name)}`);
  }
  return value;
}

function overlapToProto(name: OverlapName): Overlap {
  const value = OVERLAP[name];
  if (value === undefined) {
    throw new TypeError(`overlap must be one of ${Object.keys(OVERLAP).join(", ")}, got ${JSON.stringify(name)}`);
  }
  return value;
}

function nameOf<N extends string, V>(table: Record<N, V>, value: V, what: string): N {
  for (const [name, v] of Object.entries(table) as [N, V][]) {
    if (v === value) return name;
  }
  throw new TypeError(`the orchestrator sent an unknown ${what} ${String(value)}`);
}

function date(ts: Timestamp | undefined): Date | null {
  return ts === undefined ? null : timestampDate(ts);
}

/** The new Schedule message for CreateSchedule. */
export function newSchedule(name: string, workflow: WorkflowRef, cron: string, options: ScheduleOptions): SchedulePb {
  return create(ScheduleSchema, {
    name,
    workflowName: workflowName(workflow),
    cron,
    timezone: options.timezone ?? "",
    inputJson: encodeJson(options.input, "the schedule's input"),
    queue: options.queue ?? "",
    priority: options.priority ?? 0,
    enabled: options.enabled ?? true,
    catchUp: catchUpToProto(options.catchUp ?? "once"),
    catchUpLimit: options.catchUpLimit ?? 0,
    overlap: overlapToProto(options.overlap ?? "allow"),
    maxFailures: options.maxFailures ?? 0,
  });
}

type Write = (schedule: SchedulePb, value: unknown) => void;

/** Each change: the Schedule field it sets (for the update mask) and how its value is written there. */
const CHANGES: Record<keyof ScheduleChanges, [string, Write]> = {
  workflow: ["workflow_name", (s, v) => void (s.workflowName = workflowName(v as WorkflowRef))],
  cron: ["cron", (s, v) => void (s.cron = v as string)],
  timezone: ["timezone", (s, v) => void (s.timezone = v as string)],
  input: ["input_json", (s, v) => void (s.inputJson = encodeJson(v, "the schedule's input"))],
  queue: ["queue", (s, v) => void (s.queue = (v as string | null) ?? "")],
  priority: ["priority", (s, v) => void (s.priority = v as number)],
  enabled: ["enabled", (s, v) => void (s.enabled = v as boolean)],
  catchUp: ["catch_up", (s, v) => void (s.catchUp = catchUpToProto(v as CatchUpName))],
  catchUpLimit: ["catch_up_limit", (s, v) => void (s.catchUpLimit = v as number)],
  overlap: ["overlap", (s, v) => void (s.overlap = overlapToProto(v as OverlapName))],
  maxFailures: ["max_failures", (s, v) => void (s.maxFailures = v as number)],
};

/**
 * The UpdateSchedule request: the given fields and the mask naming them. TypeError for a
 * key that is not a field one can change, or for no change at all.
 */
export function updateScheduleRequest(name: string, changes: ScheduleChanges): UpdateScheduleRequest {
  const keys = Object.keys(changes);
  const unknown = keys.filter((k) => !Object.hasOwn(CHANGES, k));
  if (unknown.length > 0) {
    throw new TypeError(
      `updateSchedule() cannot change ${unknown.join(", ")}; it changes ${Object.keys(CHANGES).join(", ")}`,
    );
  }
  if (keys.length === 0) {
    throw new TypeError(`updateSchedule() needs something to change: ${Object.keys(CHANGES).join(", ")}`);
  }
  const schedule = create(ScheduleSchema, { name });
  const updateMask = keys.map((key) => {
    const [field, write] = CHANGES[key as keyof ScheduleChanges];
    write(schedule, changes[key as keyof ScheduleChanges]);
    return field;
  });
  return create(UpdateScheduleRequestSchema, { schedule, updateMask });
}

export function listSchedulesRequest(filter: ScheduleFilter): ListSchedulesRequest {
  return create(ListSchedulesRequestSchema, {
    workflowName: filter.workflow === undefined ? "" : workflowName(filter.workflow),
    queue: filter.queue ?? "",
    pageSize: filter.pageSize ?? 0,
    pageToken: filter.pageToken ?? "",
    ...(filter.enabled === undefined ? {} : { enabled: filter.enabled }),
  });
}

export function scheduleFromProto(schedule: SchedulePb | undefined): Schedule {
  if (schedule === undefined) throw new TypeError("the orchestrator sent no schedule");
  return {
    name: schedule.name,
    workflowName: schedule.workflowName,
    cron: schedule.cron,
    timezone: schedule.timezone,
    input: decodeJson(schedule.inputJson, "input_json"),
    queue: schedule.queue,
    priority: schedule.priority,
    enabled: schedule.enabled,
    catchUp: nameOf(CATCH_UP, schedule.catchUp === CatchUp.UNSPECIFIED ? CatchUp.ONCE : schedule.catchUp, "catch-up"),
    catchUpLimit: schedule.catchUpLimit,
    overlap: nameOf(OVERLAP, schedule.overlap === Overlap.UNSPECIFIED ? Overlap.ALLOW : schedule.overlap, "overlap"),
    maxFailures: schedule.maxFailures,
    nextFireAt: date(schedule.nextFireAt),
    lastFireAt: date(schedule.lastFireAt),
    lastExecutionId: schedule.lastExecutionId,
    consecutiveFailures: schedule.consecutiveFailures,
    lastError: schedule.lastError,
    disabledReason: schedule.disabledReason,
    declared: schedule.declared,
    createdAt: date(schedule.createdAt),
    updatedAt: date(schedule.updatedAt),
  };
}
