/**
 * The demo in TypeScript: an orchestrator (`durable server`, on an embedded PostgreSQL
 * unless DURABLE_DATABASE_URL is set), this example's worker as a separate process, and
 * the client, which starts one execution and prints its result. Everything stops at the
 * end, also on Ctrl-C.
 *
 *     node examples/typescript/build/demo.js     (what `make demo-ts` runs)
 *
 * DURABLE_COMMAND names the `durable` command (default: `durable` on PATH).
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { runExample } from "./client.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const SERVER_READY = "durable server ready address=";
const WORKER_READY = "durable-worker ready";
const START_TIMEOUT_MS = 120_000; // a first embedded PostgreSQL runs initdb
const STOP_TIMEOUT_MS = 15_000;

/** Resolve with the first line of `child`'s stdout that starts with `prefix` (each line is echoed). */
function readyLine(child: ChildProcess, prefix: string, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} was not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout! });
    let ready = false;
    lines.on("line", (line) => {
      console.log(`[${what}] ${line}`);
      if (!ready && line.startsWith(prefix)) {
        ready = true;
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${what} exited (code ${code}) before it was ready`));
    });
  });
}

/** SIGTERM `child` (it stops gracefully), SIGKILL it if it has not exited in time. */
async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

async function main(): Promise<number> {
  const durable = process.env.DURABLE_COMMAND || "durable";
  let server: ChildProcess | undefined;
  let worker: ChildProcess | undefined;
  const interrupted = new Promise<number>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(130));
  });
  try {
    server = spawn(durable, ["server", "--listen", "127.0.0.1:0", "--log-level", "WARNING"], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { GRPC_VERBOSITY: "ERROR", ...process.env },
    });
    server.once("error", (err) => console.error(`cannot run ${durable}: ${err.message}`));
    const line = await Promise.race([readyLine(server, SERVER_READY, "orchestrator"), interrupted]);
    if (typeof line === "number") return line;
    const address = line.slice(SERVER_READY.length).split(/\s/)[0] ?? "";
    worker = spawn(process.execPath, [join(HERE, "worker.js"), "--server", address], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const ready = await Promise.race([readyLine(worker, WORKER_READY, "worker"), interrupted]);
    if (typeof ready === "number") return ready;
    const completed = await Promise.race([runExample(address), interrupted]);
    if (typeof completed === "number") return completed;
    return completed ? 0 : 1;
  } finally {
    await stop(worker); // it drains: running steps finish or go back
    await stop(server);
  }
}

process.exitCode = await main();
