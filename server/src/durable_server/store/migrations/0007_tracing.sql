-- 0007_tracing: the W3C trace context of each execution, handed to every task.

ALTER TABLE executions ADD COLUMN traceparent text;
