/**
 * OpenTelemetry for the tests, from the API alone (no SDK): a context manager on
 * AsyncLocalStorage (what an SDK registers) and a tracer provider that keeps its spans.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import type {
  Attributes,
  AttributeValue,
  Context,
  ContextManager,
  Exception,
  Link,
  Span,
  SpanContext,
  SpanOptions,
  SpanStatus,
  TimeInput,
  Tracer,
  TracerProvider,
} from "@opentelemetry/api";
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, trace } from "@opentelemetry/api";

export class AsyncLocalContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

/** A span kept in memory: what was set on it, and its parent. */
export class MemorySpan implements Span {
  readonly attributes: Attributes = {};
  readonly events: string[] = [];
  status: SpanStatus = { code: SpanStatusCode.UNSET };
  ended = false;
  private readonly own: SpanContext;

  constructor(
    public name: string,
    readonly kind: SpanKind,
    readonly parent: SpanContext | undefined,
    attributes: Attributes,
  ) {
    Object.assign(this.attributes, attributes);
    this.own = {
      traceId: parent?.traceId ?? randomBytes(16).toString("hex"),
      spanId: randomBytes(8).toString("hex"),
      traceFlags: TraceFlags.SAMPLED,
    };
  }
  spanContext(): SpanContext {
    return this.own;
  }
  setAttribute(key: string, value: AttributeValue): this {
    this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(name: string): this {
    this.events.push(name);
    return this;
  }
  addLink(_link: Link): this {
    return this;
  }
  addLinks(_links: Link[]): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(name: string): this {
    this.name = name;
    return this;
  }
  end(_endTime?: TimeInput): void {
    this.ended = true;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(exception: Exception): void {
    this.events.push(`exception: ${String(exception)}`);
  }
}

/** A tracer provider whose tracers keep every span they start, in `spans`. */
export class MemoryTracerProvider implements TracerProvider {
  readonly spans: MemorySpan[] = [];
  readonly names: string[] = [];
  getTracer(name: string): Tracer {
    this.names.push(name);
    const spans = this.spans;
    const startSpan = (spanName: string, options: SpanOptions = {}, ctx: Context = context.active()): Span => {
      const span = new MemorySpan(spanName, options.kind ?? SpanKind.INTERNAL, trace.getSpanContext(ctx), options.attributes ?? {});
      spans.push(span);
      return span;
    };
    return {
      startSpan,
      startActiveSpan: ((spanName: string, ...rest: unknown[]) => {
        const fn = rest.pop() as (span: Span) => unknown;
        const [options, ctx] = rest as [SpanOptions | undefined, Context | undefined];
        const span = startSpan(spanName, options, ctx);
        return context.with(trace.setSpan(ctx ?? context.active(), span), () => fn(span));
      }) as Tracer["startActiveSpan"],
    };
  }
}
