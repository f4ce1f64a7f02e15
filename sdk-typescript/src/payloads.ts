/**
 * Payload checks before a report is sent.
 *
 * The orchestrator refuses a whole report batch (INVALID_ARGUMENT) when one payload in it
 * is outside the JSON profile or over its size limit, and every attempt in the batch is
 * then lost until its lease runs out. So each report is checked here first, and a payload
 * that would be refused fails its own attempt instead, non-retryable, with the Python
 * worker's error types:
 *
 * | type | when |
 * | --- | --- |
 * | `JSONSerializationError` | a result, child input or wait's timeout value is outside the profile |
 * | `PayloadTooLarge` | one of them is over `maxPayloadBytes` (UTF-8 bytes) |
 *
 * A branch key or foreach item list sent ahead that breaks a rule becomes an error
 * evaluation (it fails its node, as its own ROUTE task would), not a failed attempt.
 *
 * The profile (docs/protocol.md, "Payloads: the JSON profile"): at most 64 arrays and
 * objects nested in one another, finite numbers (JSON.stringify writes NaN and Infinity as
 * null; encodeJson refuses them before), no U+0000 and no lone surrogate in a string or key.
 */
import { create } from "@bufbuild/protobuf";
import { ErrorInfoSchema, TaskKind } from "./gen/durable/v1/common_pb.js";
import type { Task } from "./gen/durable/v1/worker_service_pb.js";
import { EvaluationSchema } from "./gen/durable/v1/worker_service_pb.js";
import type { Report } from "./outcome.js";
import { workerFailure } from "./outcome.js";

/** The most arrays and objects a payload may nest (`[[1]]` nests 2). */
export const MAX_DEPTH = 64;
/** The orchestrator's default payload limit (DURABLE_MAX_PAYLOAD_BYTES): 2 MiB of UTF-8. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 2 * 1024 * 1024;

const OPEN = new Set([0x5b, 0x7b]); // [ {
const CLOSE = new Set([0x5d, 0x7d]); // ] }
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
/** A raw U+0000 or surrogate code unit (a pair is fine, but takes the slow path). */
const RAW_SUSPECT = /[\0\ud800-\udfff]/;
const KIND_NAMES: Record<number, string> = { [TaskKind.INTO]: "the into merge of", [TaskKind.COMPENSATION]: "compensation", [TaskKind.ROUTE]: "node" };

function bracketCount(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (OPEN.has(text.charCodeAt(i))) n++;
  return n;
}

/**
 * What keeps `text` (well-formed JSON, as JSON.stringify writes it) out of the profile,
 * as a phrase; null when it keeps to it. Raw lone surrogates are checked too, for text
 * not made by JSON.stringify.
 */
export function profileProblem(text: string): string | null {
  const escapes = text.includes("\\u");
  // Fast path: few brackets cannot nest too deep, and without \u escapes (JSON.stringify
  // escapes U+0000 and lone surrogates) and raw surrogates no string can break a rule.
  if (!escapes && bracketCount(text) <= MAX_DEPTH && !RAW_SUSPECT.test(text)) return null;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === QUOTE) inString = false;
      else if (c === BACKSLASH) {
        if (text.charCodeAt(i + 1) === 0x75 /* u */) {
          const code = parseInt(text.slice(i + 2, i + 6), 16);
          if (code === 0) return "contains U+0000 (\\u0000), which cannot be stored";
          if (code >= 0xd800 && code <= 0xdfff) {
            const pair =
              code <= 0xdbff && text.charCodeAt(i + 6) === BACKSLASH && text.charCodeAt(i + 7) === 0x75 &&
              (parseInt(text.slice(i + 8, i + 12), 16) & 0xfc00) === 0xdc00;
            if (!pair) return `contains a lone surrogate (\\u${text.slice(i + 2, i + 6)})`;
            i += 6;
          }
          i += 5;
        } else {
          i += 1;
        }
      } else if (c === 0) {
        return "contains U+0000, which cannot be stored";
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const next = text.charCodeAt(i + 1);
        if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return `contains a lone surrogate (\\u${c.toString(16)})`;
        i += 1;
      }
    } else if (c === QUOTE) {
      inString = true;
    } else if (OPEN.has(c)) {
      depth += 1;
      if (depth > MAX_DEPTH) return `is nested more than ${MAX_DEPTH} levels deep`;
    } else if (CLOSE.has(c)) {
      depth -= 1;
    }
  }
  return null;
}

/** The size of `text` in UTF-8 bytes. */
export function payloadBytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Why `text` may not be sent: [error type, phrase], or null. */
function refusal(text: string, limit: number): [string, string] | null {
  // A text longer (in UTF-16 units) than the limit is over it in bytes too; a shorter one
  // may still be, when not ASCII.
  const size = text.length > limit ? text.length : payloadBytes(text);
  if (size > limit) {
    return ["PayloadTooLarge", `is ${size.toLocaleString("en")} bytes of JSON, over the limit of ${limit.toLocaleString("en")} bytes (maxPayloadBytes)`];
  }
  const problem = profileProblem(text);
  return problem === null ? null : ["JSONSerializationError", `${problem}: it is outside the JSON profile the orchestrator accepts`];
}

const TOO_LARGE_HINT = ": return a smaller value, or store the data elsewhere and pass a reference to it";

/**
 * The report to send for `task`: `report` itself when every payload in it may be sent;
 * else a non-retryable failure naming the payload and the rule (logs kept), or, for an
 * evaluation sent ahead, the completion with that evaluation made an error.
 */
export function checkedReport(task: Task, report: Report, limit: number): Report {
  if (report.$typeName === "durable.v1.TaskFailure") return report;
  const what = `${KIND_NAMES[task.kind] ?? "step"} ${task.stepName}`;
  const fail = (payload: string, [type, phrase]: [string, string]): Report =>
    workerFailure(task, type, `${payload} of ${what} ${phrase}${type === "PayloadTooLarge" ? TOO_LARGE_HINT : ""}`, report.logs);
  for (const child of report.children) {
    const bad = refusal(child.inputJson, limit);
    if (bad) return fail(`the input of child call ${child.index} (workflow ${child.workflowName})`, bad);
  }
  if (report.$typeName === "durable.v1.TaskSuspension") {
    const wait = report.wait;
    if (wait.case === "child" || wait.case === "events" || wait.case === "input") {
      const bad = wait.value.timeoutValueJson === "" ? null : refusal(wait.value.timeoutValueJson, limit);
      if (bad) return fail(`the timeout value of wait ${wait.value.index}`, bad);
    }
    return report;
  }
  const bad = refusal(report.resultJson, limit);
  if (bad) return fail(report.gotoTarget ? "the goto data" : "the result", bad);
  for (const [name, evaluation] of Object.entries(report.evaluations)) {
    if (evaluation.outcome.case !== "valueJson") continue;
    const wrong = refusal(evaluation.outcome.value, limit);
    if (wrong) {
      const [type, phrase] = wrong;
      const error = create(ErrorInfoSchema, { type, message: `node ${name} evaluated to a value that ${phrase}`, nonRetryable: true });
      report.evaluations[name] = create(EvaluationSchema, { outcome: { case: "error", value: error } });
    }
  }
  return report;
}
