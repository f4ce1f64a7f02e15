/**
 * Errors thrown by the SDK, mirroring the Python SDK's `durable.errors`:
 *
 *     DurableError                  an API call failed; `.code` is its gRPC status name
 *     ├── InvalidArgumentError      INVALID_ARGUMENT: bad input (malformed JSON, too large, bad name)
 *     ├── NotFoundError             NOT_FOUND: unknown workflow or execution
 *     ├── AlreadyExistsError        ALREADY_EXISTS
 *     ├── FailedPreconditionError   FAILED_PRECONDITION: wrong state (finished execution, stale lease)
 *     ├── AbortedError              ABORTED: a conflict that did not resolve; try again
 *     ├── UnavailableError          UNAVAILABLE: the orchestrator or its database is unreachable
 *     ├── DeadlineExceededError     DEADLINE_EXCEEDED
 *     ├── UnauthenticatedError      UNAUTHENTICATED: no token, or a wrong, expired or revoked one
 *     ├── PermissionDeniedError     PERMISSION_DENIED: the token's role or queues do not allow it
 *     └── InternalError             INTERNAL and anything else
 *
 *     NonRetryableError             thrown by a step: fail it now, whatever its retry policy says
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** The gRPC status names, by code. */
const STATUS_NAMES: Record<number, string> = {
  [Code.Canceled]: "CANCELLED",
  [Code.Unknown]: "UNKNOWN",
  [Code.InvalidArgument]: "INVALID_ARGUMENT",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.FailedPrecondition]: "FAILED_PRECONDITION",
  [Code.Aborted]: "ABORTED",
  [Code.OutOfRange]: "OUT_OF_RANGE",
  [Code.Unimplemented]: "UNIMPLEMENTED",
  [Code.Internal]: "INTERNAL",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DataLoss]: "DATA_LOSS",
  [Code.Unauthenticated]: "UNAUTHENTICATED",
};

/** An API call to the orchestrator failed. */
export class DurableError extends Error {
  /** The gRPC status name, e.g. "NOT_FOUND". */
  code: string;
  /** Response metadata and trailers of the failed call. */
  readonly metadata: Headers;

  constructor(message: string, options: { code?: string; metadata?: Headers; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? "UNKNOWN";
    this.metadata = options.metadata ?? new Headers();
  }
}

/** The request is malformed: fix the input and send it again. */
export class InvalidArgumentError extends DurableError {}
/** The named workflow or execution does not exist. */
export class NotFoundError extends DurableError {}
/** The thing to create exists already. */
export class AlreadyExistsError extends DurableError {}
/** The target is not in a state that allows this call. */
export class FailedPreconditionError extends DurableError {}
/** The call conflicted with a concurrent change; it may be retried. */
export class AbortedError extends DurableError {}
/** The orchestrator or its database is unreachable; retry later. */
export class UnavailableError extends DurableError {}
/** The call did not finish before its deadline. */
export class DeadlineExceededError extends DurableError {}
/** The orchestrator requires a valid token: pass `token`. */
export class UnauthenticatedError extends DurableError {}
/** The token's role (or the queues it is limited to) does not allow this call. */
export class PermissionDeniedError extends DurableError {}
/** The orchestrator failed unexpectedly (INTERNAL and any code without its own class). */
export class InternalError extends DurableError {}

type ErrorClass = new (message: string, options?: { code?: string; metadata?: Headers; cause?: unknown }) => DurableError;

const BY_CODE: Partial<Record<Code, ErrorClass>> = {
  [Code.InvalidArgument]: InvalidArgumentError,
  [Code.NotFound]: NotFoundError,
  [Code.AlreadyExists]: AlreadyExistsError,
  [Code.FailedPrecondition]: FailedPreconditionError,
  [Code.Aborted]: AbortedError,
  [Code.Unavailable]: UnavailableError,
  [Code.DeadlineExceeded]: DeadlineExceededError,
  [Code.Unauthenticated]: UnauthenticatedError,
  [Code.PermissionDenied]: PermissionDeniedError,
  [Code.Internal]: InternalError,
};

/** The gRPC status name of a connect code. */
export function statusName(code: Code): string {
  return STATUS_NAMES[code] ?? "UNKNOWN";
}

/** The typed error for a failed call (anything not a ConnectError is wrapped as UNKNOWN). */
export function fromRpcError(err: unknown): DurableError {
  if (err instanceof DurableError) return err;
  const connect = ConnectError.from(err);
  const cls = BY_CODE[connect.code] ?? InternalError;
  return new cls(connect.rawMessage || statusName(connect.code), {
    code: statusName(connect.code),
    metadata: connect.metadata,
    cause: err,
  });
}

/** Node's codes for a TLS handshake the client refused (OpenSSL's verification results). */
const TLS_REFUSALS = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "HOSTNAME_MISMATCH",
]);

/** The message of a TLS failure in `err`'s cause chain, if there is one. */
function tlsFailure(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (TLS_REFUSALS.has(code) || /^ERR_(TLS|SSL)_/.test(code))) return e.message;
  }
  return undefined;
}

/**
 * The typed error of a failed call the caller did not cancel. Beyond `fromRpcError`, a
 * connection that could not be made is UnavailableError, as the Python SDK reports it: a
 * TLS handshake this side refused (an untrusted certificate, another name), or a stream the
 * orchestrator reset before it answered (CANCELLED: plain text to its TLS port, or a
 * client certificate it does not accept).
 */
export function fromCallError(err: unknown, address: string): DurableError {
  if (err instanceof DurableError) return err;
  const connect = ConnectError.from(err);
  const tls = tlsFailure(err);
  if (tls !== undefined) {
    return new UnavailableError(`cannot connect to ${address} over TLS: ${tls}`, {
      code: "UNAVAILABLE",
      metadata: connect.metadata,
      cause: err,
    });
  }
  if (connect.code === Code.Canceled) {
    return new UnavailableError(
      `the orchestrator at ${address} closed the call (${connect.rawMessage}): ` +
        "plain text to a TLS port, or a client certificate it does not accept?",
      { code: "UNAVAILABLE", metadata: connect.metadata, cause: err },
    );
  }
  return fromRpcError(err);
}

/** Thrown by step code to fail the step at once, without further retries. */
export class NonRetryableError extends Error {
  constructor(message?: string) {
    super(message);
    this.name = new.target.name;
  }
}
