/**
 * TLS, mutual TLS and bearer tokens against a secured orchestrator.
 *
 * tests/e2e/test_typescript_secure.py starts an orchestrator that requires client
 * certificates and tokens, makes the certificates and tokens, and runs this file with
 * them in the environment; without DURABLE_SECURE_ADDRESS (plain `npm test`) it skips.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { Client } from "../src/client.js";
import { DurableError, PermissionDeniedError, UnauthenticatedError, UnavailableError } from "../src/errors.js";
import type { TlsOptions } from "../src/transport.js";
import { Worker } from "../src/worker.js";
import { Workflow } from "../src/workflow.js";
import { memoryLogger } from "./helpers.js";

const env = process.env;
const skip = env.DURABLE_SECURE_ADDRESS
  ? false
  : "needs a secured orchestrator (tests/e2e/test_typescript_secure.py starts one)";

function setting(name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function pem(name: string): Buffer {
  return readFileSync(setting(name));
}

/** A short deadline: a connection the orchestrator refuses fails fast. */
const QUICK = { timeoutMs: 5_000 };

let address: string;
let mine: TlsOptions;
let echo: Workflow;
let worker: Worker | undefined;
const clients: Client[] = [];

function client(options: ConstructorParameters<typeof Client>[1]): Client {
  const made = new Client(address, { ...QUICK, ...options });
  clients.push(made);
  return made;
}

/** The call's typed error (it must fail). */
async function failure(call: Promise<unknown>): Promise<DurableError> {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof DurableError, `not a DurableError: ${String(err)}`);
    return err;
  }
  assert.fail("the call succeeded");
}

before(async () => {
  if (skip) return;
  address = setting("DURABLE_SECURE_ADDRESS");
  mine = { ca: pem("DURABLE_TLS_CA"), cert: pem("DURABLE_TLS_CERT"), key: pem("DURABLE_TLS_KEY") };
  echo = new Workflow("secure_echo", { queue: setting("DURABLE_SECURE_QUEUE") }).step(
    "repeat",
    (input: unknown) => input,
  );
  worker = new Worker(address, [echo], {
    token: setting("DURABLE_WORKER_TOKEN"),
    tls: mine,
    pollWaitMs: 1_000,
    logger: memoryLogger(),
  });
  await worker.start();
});

after(async () => {
  await worker?.drain();
  for (const c of clients) c.close();
});

test("a worker and a client run a workflow over mutual TLS with tokens", { skip }, async () => {
  const c = client({ token: setting("DURABLE_CLIENT_TOKEN"), tls: mine });
  const { executionId } = await c.start(echo, { hello: "tls" });
  const done = await c.wait(executionId, { timeoutMs: 20_000 });
  assert.equal(done.status, "completed");
  assert.deepEqual(done.result, { hello: "tls" });
  assert.equal((await c.get(executionId, { includeSteps: true })).steps[0]?.workerId, worker?.workerId);
});

test("the certificate's other name works as serverName", { skip }, async () => {
  const c = client({ token: setting("DURABLE_CLIENT_TOKEN"), tls: { ...mine, serverName: "localhost" } });
  assert.equal((await c.list({ pageSize: 1 })).items.length >= 0, true);
});

test("no token, a wrong one, or one of another role: typed refusals", { skip }, async () => {
  const none = await failure(client({ tls: mine }).list());
  assert.ok(none instanceof UnauthenticatedError, String(none));
  assert.equal(none.code, "UNAUTHENTICATED");

  const forged = `${setting("DURABLE_CLIENT_TOKEN").slice(0, -4)}AAAA`;
  const wrong = await failure(client({ token: forged, tls: mine }).list());
  assert.ok(wrong instanceof UnauthenticatedError, String(wrong));

  const asWorker = await failure(client({ token: setting("DURABLE_WORKER_TOKEN"), tls: mine }).start(echo, 1));
  assert.ok(asWorker instanceof PermissionDeniedError, String(asWorker));

  // listWorkers and schedules' changes are for admins: a client token is refused, an admin's is not.
  const plain = client({ token: setting("DURABLE_CLIENT_TOKEN"), tls: mine });
  assert.ok((await failure(plain.listWorkers())) instanceof PermissionDeniedError);
  const admin = client({ token: setting("DURABLE_ADMIN_TOKEN"), tls: mine });
  const workers = await admin.listWorkers();
  assert.ok(workers.some((w) => w.workerId === worker?.workerId));
});

test("no connection without the CA, a client certificate, or TLS at all", { skip }, async () => {
  const token = setting("DURABLE_CLIENT_TOKEN");
  const cases: [string, Client][] = [
    ["plain text to the TLS port", client({ token })],
    ["the system's CAs only", client({ token, tls: true })],
    ["no client certificate", client({ token, tls: { ca: mine.ca } })],
    [
      "a certificate from another CA",
      client({ token, tls: { ca: mine.ca, cert: pem("DURABLE_ROGUE_CERT"), key: pem("DURABLE_ROGUE_KEY") } }),
    ],
    ["a name the certificate does not have", client({ token, tls: { ...mine, serverName: "elsewhere.test" } })],
  ];
  for (const [what, c] of cases) {
    const err = await failure(c.list());
    assert.ok(err instanceof UnavailableError, `${what}: ${err.name} ${err.code} ${err.message}`);
    assert.equal(err.code, "UNAVAILABLE");
    assert.match(err.message, new RegExp(address.replace(/\./g, "\\.")));
  }
});

test("a token with whitespace is refused before any call", { skip }, () => {
  assert.throws(() => new Client(address, { token: "dur abc" }), TypeError);
  assert.throws(() => new Client(address, { token: "" }), TypeError);
});
