/**
 * Start one execution of the example workflow, wait for it, print what happened.
 *
 *     node build/client.js [--server 127.0.0.1:7411]
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@durable/sdk";
import { serverAddress } from "./args.js";
import type { Order } from "./order.js";

const ORDER: Order = { id: 1, items: [{ sku: "book", qty: 2 }] };

/** Run the example against the orchestrator at `address`; true when the execution completed. */
export async function runExample(address: string): Promise<boolean> {
  const client = new Client(address);
  try {
    const { executionId } = await client.start("ts_process_order", ORDER);
    console.log(`started ts_process_order execution ${executionId}`);
    await client.wait(executionId, { timeoutMs: 60_000 });
    const execution = await client.get(executionId, { includeSteps: true, includeLogs: true });
    console.log(`status: ${execution.status}`);
    console.log(`result: ${JSON.stringify(execution.result)}`);
    for (const step of execution.steps) {
      console.log(`  step ${step.stepName}: ${step.status} (attempt ${step.attempt})`);
      for (const line of step.logs) console.log(`    ${line.level} ${line.message}`);
    }
    return execution.status === "completed";
  } finally {
    client.close();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  process.exitCode = (await runExample(serverAddress())) ? 0 : 1;
}
