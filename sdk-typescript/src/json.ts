/** JSON payloads: every *_json field of the protocol carries one JSON value as text. */

/** A JSON value as `JSON.parse` returns it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Encode a payload; `undefined` is sent as null. Throws TypeError for what JSON cannot carry. */
export function encodeJson(value: unknown, what: string): string {
  if (value === undefined) return "null";
  let text: string | undefined;
  try {
    text = JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === "number" && !Number.isFinite(v)) {
        throw new TypeError(`${v} is not a JSON number`);
      }
      if (typeof v === "bigint") throw new TypeError("a BigInt is not a JSON number");
      return v;
    });
  } catch (err) {
    throw new TypeError(`${what} is not JSON-serializable: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new TypeError(`${what} is not JSON-serializable (${typeof value})`);
  return text;
}

/** Decode a payload; empty text means null. */
export function decodeJson(text: string, what: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new SyntaxError(`${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
