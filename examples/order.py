"""The README's first example: validate an order, then charge it (with retries)."""

from durable import RetryPolicy, Workflow, hours

process_order = Workflow("process_order", timeout=hours(2))


@process_order.step
def validate(order):
    if not order.get("items"):
        raise ValueError("an order needs at least one item")
    return {"order_id": order["id"], "items": order["items"]}


@process_order.step(retry=RetryPolicy(max_attempts=3, backoff="exponential"))
def charge(data):
    return {**data, "receipt": f"rcpt-{data['order_id']}"}
