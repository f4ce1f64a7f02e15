/** The workflow: validate an order, then charge it (with retries), then ship it. */
import { NonRetryableError, Workflow } from "@durable/sdk";

export interface Order {
  id: number;
  items: { sku: string; qty: number }[];
}

export interface Charged {
  orderId: number;
  items: Order["items"];
  receipt: string;
}

export const processOrder = new Workflow("ts_process_order", { queue: "typescript" })
  .step("validate", (order: Order) => {
    if (!order.items?.length) throw new NonRetryableError("an order needs at least one item");
    return { orderId: order.id, items: order.items };
  })
  .step(
    "charge",
    (data: Omit<Charged, "receipt">, ctx) => {
      ctx.log.info(`charging order ${data.orderId} (key ${ctx.idempotencyKey})`);
      return { ...data, receipt: `rcpt-${data.orderId}` };
    },
    { retry: { maxAttempts: 3, backoff: "exponential" }, timeoutMs: 10_000 },
  )
  .step("ship", (data: Charged) => ({
    ...data,
    shipped: data.items.reduce((n, item) => n + item.qty, 0),
  }));
