/** The gRPC connection: HTTP/2 (plain or TLS), with an optional bearer token on every call. */
import type { Interceptor, Transport } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import type { SecureClientSessionOptions } from "node:http2";

/** TLS to the orchestrator: a private CA, a client certificate (mTLS), a server name. */
export interface TlsOptions {
  /** PEM of the CA(s) that signed the server's certificate; default the system's. */
  ca?: string | Buffer;
  /** PEM client certificate and key, for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to check the server's certificate against (default the address's host). */
  serverName?: string;
}

/** How to reach the orchestrator. */
export interface ConnectionOptions {
  /** A bearer token sent with every call (`authorization: Bearer <token>`). */
  token?: string;
  /** `true` for TLS with the system's CAs, or TLS options; default plain text. */
  tls?: boolean | TlsOptions;
}

/** A transport and a way to close its connection. */
export interface Connection {
  transport: Transport;
  close(): void;
}

/** The base URL of `address`: "host:port", or a URL with http:// or https://. */
export function baseUrl(address: string, tls: boolean): string {
  if (/^https?:\/\//.test(address)) return address;
  return `${tls ? "https" : "http"}://${address}`;
}

function checkToken(token: string): string {
  if (token === "" || /[\s\0]/.test(token)) {
    throw new TypeError("token must be a non-empty string without whitespace");
  }
  return token;
}

function bearer(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (next) => async (req) => {
    req.header.set("authorization", value);
    return next(req);
  };
}

/**
 * Open a gRPC connection to `address` (gRPC is always HTTP/2 here); `interceptors` run on
 * every call, after the bearer token's.
 */
export function connect(
  address: string,
  options: ConnectionOptions = {},
  interceptors: readonly Interceptor[] = [],
): Connection {
  const tls = options.tls ?? false;
  const url = baseUrl(address, tls !== false);
  const nodeOptions: SecureClientSessionOptions = {};
  if (typeof tls === "object") {
    if (tls.ca !== undefined) nodeOptions.ca = tls.ca;
    if (tls.cert !== undefined) nodeOptions.cert = tls.cert;
    if (tls.key !== undefined) nodeOptions.key = tls.key;
    if (tls.serverName !== undefined) nodeOptions.servername = tls.serverName;
  }
  const sessionManager = new Http2SessionManager(
    url,
    { pingIntervalMs: 30_000, pingTimeoutMs: 15_000, idleConnectionTimeoutMs: 15 * 60_000 },
    nodeOptions,
  );
  const all: Interceptor[] = [];
  if (options.token !== undefined) all.push(bearer(checkToken(options.token)));
  all.push(...interceptors);
  const transport = createGrpcTransport({
    baseUrl: url,
    sessionManager,
    interceptors: all,
  });
  return { transport, close: () => sessionManager.abort() };
}
