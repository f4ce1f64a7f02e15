/** Shared by the tests that talk to a real orchestrator (DURABLE_ADDRESS). */
import { randomBytes } from "node:crypto";
import type { WorkerLogger } from "../src/worker.js";

/** The orchestrator the tests use; `make test` starts one (tests/e2e/test_typescript_sdk.py). */
export function address(): string {
  const value = process.env.DURABLE_ADDRESS;
  if (!value) {
    throw new Error(
      "DURABLE_ADDRESS is not set: these tests need a running orchestrator " +
        "(`make test` starts one and runs them through tests/e2e/test_typescript_sdk.py)",
    );
  }
  return value;
}

/** A name no other test uses (workflows and queues: a worker polls a queue, not a workflow). */
export function unique(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

/** A logger that keeps the worker's messages, for assertions and quiet output. */
export function memoryLogger(): WorkerLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

/** A promise the test resolves by hand. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** Await `probe()` until it returns something truthy; fail after `timeoutMs`. */
export async function waitUntil<T>(probe: () => Promise<T> | T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
