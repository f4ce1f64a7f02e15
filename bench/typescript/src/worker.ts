/**
 * The TypeScript worker of `bench/suite.py`: the W1 and W2 workflows of `bench/suite_flows.py`
 * (the same steps, no-op bodies) on the queue "typescript", until SIGTERM.
 *
 *     node bench/typescript/build/worker.js --server 127.0.0.1:7411 [--concurrency 100]
 */
import { Workflow, Worker } from "../../../sdk-typescript/dist/index.js";

const QUEUE = "typescript";

function option(name: string, fallback?: string): string {
  const at = process.argv.indexOf(name);
  const value = at >= 0 ? process.argv[at + 1] : fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
}

/** A workflow of `length` sequential no-op steps named s1..sN. */
function chain(name: string, length: number): Workflow {
  const wf = new Workflow(name, { queue: QUEUE });
  for (let i = 1; i <= length; i++) wf.step(`s${i}`, (data: unknown) => data);
  return wf;
}

/** Wall-clock seconds with sub-millisecond precision, like Python's time.time(). */
function now(): number {
  return (performance.timeOrigin + performance.now()) / 1000;
}

interface Timed {
  starts: number[];
  ends: number[];
}

/** Record when this step started and (just before returning) when it ended. */
function timed(data: Timed): Timed {
  const started = now();
  return { starts: [...data.starts, started], ends: [...data.ends, now()] };
}

const w2Timed = new Workflow("bench_ts_w2_timed", { queue: QUEUE });
for (let i = 1; i <= 5; i++) w2Timed.step(`t${i}`, timed);

const concurrency = Number(option("--concurrency", "100"));
const workflows = [chain("bench_ts_w1_three", 3), chain("bench_ts_w1_ten", 10), w2Timed];
const logger = { info: (m: string) => console.log(m), warn: (m: string) => console.error(m), error: (m: string) => console.error(m) };
await new Worker(option("--server"), workflows, { concurrency, logger }).run();
