export * from "./client.js";
export * from "./errors.js";
export type { Json } from "./json.js";
export * from "./models.js";
export type { ConnectionOptions, TlsOptions } from "./transport.js";
