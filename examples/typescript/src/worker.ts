/**
 * Run a worker for the example workflow until SIGTERM or Ctrl-C (then it drains).
 *
 *     node build/worker.js [--server 127.0.0.1:7411]
 */
import { Worker } from "@durable/sdk";
import { processOrder } from "./order.js";
import { serverAddress } from "./args.js";

const worker = new Worker(serverAddress(), [processOrder], { concurrency: 8 });
await worker.run(); // prints "durable-worker ready ..." once registered
