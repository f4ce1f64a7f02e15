/** What a step function gets besides its input. */
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { LogLine } from "./gen/durable/v1/common_pb.js";
import { LogLineSchema } from "./gen/durable/v1/common_pb.js";

/** The log of one attempt, sent with its report (shown by `get(..., {includeLogs})`). */
export interface StepLogger {
  debug(message: string): void;
  info(message: string): void;
  warning(message: string): void;
  error(message: string): void;
}

export interface StepContext {
  readonly executionId: string;
  readonly workflowName: string;
  readonly stepName: string;
  /** Position of this step run in the execution, from 1. */
  readonly sequence: number;
  /** Attempt number of this step run, from 1. */
  readonly attempt: number;
  /**
   * Stable across the attempts of this step run, distinct for every other run:
   * `"{executionId}:{sequence}:{stepName}"`. Pass it to external systems so a retried
   * attempt does not repeat their side effect.
   */
  readonly idempotencyKey: string;
  /** The execution's original input. */
  readonly executionInput: unknown;
  /** Aborted when the attempt's timeout passes or its lease is lost: stop working. */
  readonly signal: AbortSignal;
  readonly log: StepLogger;
}

export const MAX_LOG_LINES = 1000;
export const MAX_LOG_BYTES = 64 * 1024;

/** Collects an attempt's log lines, capped; a last line says how many were dropped. */
export class StepLog implements StepLogger {
  private readonly lines: LogLine[] = [];
  private bytes = 0;
  private dropped = 0;

  debug(message: string): void {
    this.add("DEBUG", message);
  }
  info(message: string): void {
    this.add("INFO", message);
  }
  warning(message: string): void {
    this.add("WARNING", message);
  }
  error(message: string): void {
    this.add("ERROR", message);
  }

  private add(level: string, message: string): void {
    const text = String(message);
    const size = Buffer.byteLength(text, "utf8");
    if (this.lines.length >= MAX_LOG_LINES || this.bytes + size > MAX_LOG_BYTES) {
      this.dropped += 1;
      return;
    }
    this.bytes += size;
    this.lines.push(create(LogLineSchema, { time: timestampNow(), level, message: text, logger: "step" }));
  }

  /** The lines to report. */
  take(): LogLine[] {
    if (this.dropped === 0) return this.lines;
    const note = `${this.dropped} log line(s) dropped: over ${MAX_LOG_LINES} lines or ${MAX_LOG_BYTES} bytes`;
    return [...this.lines, create(LogLineSchema, { time: timestampNow(), level: "WARNING", message: note, logger: "durable" })];
  }
}
