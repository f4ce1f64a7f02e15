/**
 * Per-attempt capture of `console.*`: what a step (or an into merge, or a compensation)
 * writes with console.debug/log/info/warn/error while it runs, including after an
 * `await`, goes to that attempt's log (logger "console"; `console.log` as level PRINT),
 * and still to the console. Attempts running at the same time are told apart with
 * AsyncLocalStorage. Installed when an attempt starts (once, unless
 * something replaced the console methods since).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { format } from "node:util";
import type { StepLog } from "./context.js";

const current = new AsyncLocalStorage<StepLog>();
const LEVELS = { debug: "DEBUG", log: "PRINT", info: "INFO", warn: "WARNING", error: "ERROR" } as const;
const wrappers = new Set<unknown>();

/** Wrap each console method that is not wrapped yet (again, should someone have replaced it). */
function install(): void {
  for (const [method, level] of Object.entries(LEVELS) as [keyof typeof LEVELS, string][]) {
    if (wrappers.has(console[method])) continue;
    const original = console[method].bind(console);
    const wrapper = (...args: unknown[]): void => {
      const log = current.getStore();
      if (log !== undefined) {
        try {
          log.write(level, format(...args), "console");
        } catch {
          // a line that cannot be formatted is not worth failing the step for
        }
      }
      original(...args);
    };
    wrappers.add(wrapper);
    console[method] = wrapper;
  }
}

/** Run `fn` with its console output (and that of what it awaits) captured into `log`. */
export function captured<T>(log: StepLog, fn: () => T): T {
  install();
  return current.run(log, fn);
}
