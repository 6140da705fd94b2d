// Runs the Node example against a `sigil dev` this test starts itself
// (`node --test` in examples/node). The binary is $SIGIL_BIN, or
// target/debug/sigil (under $CARGO_TARGET_DIR when set).

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, openSync, closeSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import protoLoader from '@grpc/proto-loader';
import { decodeJwt } from 'jose';

import { runFlow } from './flow.js';
import { admin, close, connect, errorDetails, grpc, ERROR_DOMAIN } from './sigil.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const START_DEADLINE_MS = 30_000;

function sigilBinary() {
  if (process.env.SIGIL_BIN) return process.env.SIGIL_BIN;
  return path.join(process.env.CARGO_TARGET_DIR || path.join(repo, 'target'), 'debug', 'sigil');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// grpc.health.v1, the few lines of it a client needs (no npm package of
// the health protos is needed for this).
const healthDefinition = protoLoader.fromJSON({
  nested: {
    grpc: { nested: { health: { nested: { v1: { nested: {
      HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
      HealthCheckResponse: {
        fields: { status: { type: 'ServingStatus', id: 1 } },
        nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
      },
      Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } } },
    } } } } } },
  },
}, { enums: String });

/** Polls gRPC health until the validator is SERVING; false if the process exits first. */
async function waitUntilServing(child, address, logPath) {
  const { Health } = grpc.loadPackageDefinition(healthDefinition).grpc.health.v1;
  const health = new Health(address, grpc.credentials.createInsecure());
  const check = promisify(health.Check).bind(health);
  const deadline = Date.now() + START_DEADLINE_MS;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) return false;
      try {
        // waitForReady: the call itself waits for the connection, so the
        // loop turns only on an answer or a one-second deadline.
        const answer = await check(
          { service: 'sigil.v1.ValidatorService' }, new grpc.Metadata({ waitForReady: true }),
          { deadline: Date.now() + 1000 },
        );
        if (answer.status === 'SERVING') return true;
      } catch (error) {
        if (![grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED].includes(error.code)) throw error;
      }
    }
  } finally {
    health.close();
  }
  throw new Error(`sigil dev not SERVING within ${START_DEADLINE_MS} ms; log:\n${readFileSync(logPath, 'utf8')}`);
}

let sigil;

before(async () => {
  const binary = sigilBinary();
  assert.ok(existsSync(binary), `${binary} not found: run \`cargo build --bin sigil\` or set SIGIL_BIN`);
  const adminKey = randomBytes(32).toString('base64url');
  const logPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'sigil-node-')), 'sigil.log');
  // Another process may take the free port between the probe and the bind;
  // then sigil exits and the next attempt picks another port.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const address = `127.0.0.1:${await freePort()}`;
    const log = openSync(logPath, 'w');
    const child = spawn(binary, ['dev', '--listen', address], {
      env: { ...process.env, SIGIL_ADMIN_KEYS: adminKey, SIGIL_LOG: 'warn' },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    try {
      if (await waitUntilServing(child, address, logPath)) {
        sigil = { address, adminKey, child, exited, logPath };
        return;
      }
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }
  throw new Error(`sigil dev exited at start three times; last log:\n${readFileSync(logPath, 'utf8')}`);
});

after(async () => {
  if (!sigil) return;
  sigil.child.kill('SIGTERM');
  const timeout = setTimeout(() => sigil.child.kill('SIGKILL'), 10_000);
  const { code, signal } = await sigil.exited;
  clearTimeout(timeout);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, `sigil dev did not exit cleanly; log:\n${readFileSync(sigil.logPath, 'utf8')}`);
});

const quiet = () => {};

test('the whole flow runs from create to revoke', async () => {
  const seen = await runFlow({ address: sigil.address, adminKey: sigil.adminKey, say: quiet });

  assert.match(seen.created.sessionId, /^sess_[0-9a-f]{32}$/);
  assert.match(seen.created.sessionKey, /^sigil_sk_/);
  assert.equal(seen.authorized.state, 'SESSION_STATE_ACTIVE');
  assert.equal(seen.whoami.session.id, seen.created.sessionId);
  assert.equal(seen.whoami.session.subject, 'alice');
  assert.deepEqual(seen.whoami.session.metadata, { device: 'laptop', role: 'buyer' });

  const granted = seen.checks['tokens/pci/4111'];
  const refused = seen.checks['tokens/other/1'];
  assert.equal(granted.allowed, true);
  assert.equal(granted.decidingRule.priority, 1);
  assert.equal(refused.allowed, false);
  assert.equal(refused.decidingRule, null);

  assert.equal(seen.header.alg, 'EdDSA');
  assert.equal(seen.claims.sub, 'alice');
  assert.equal(seen.claims.sid, seen.created.sessionId);
  assert.equal(seen.claims.role, 'buyer');
  assert.deepEqual(seen.claims.perms, ['token:read']);
  assert.ok(seen.claims.exp - seen.claims.iat <= 120);

  assert.equal(seen.apiToken.apiToken.type, 'API_TOKEN_TYPE_BACKEND');
  assert.deepEqual(seen.edgeValidate, {
    status: 200,
    body: {
      tokens: [{
        token: seen.apiToken.token, type: 'backend', environment: 'development', projects: ['default'], status: 'Validated',
      }],
    },
  });

  assert.equal(seen.revoked.state, 'SESSION_STATE_REVOKED');
  assert.equal(seen.afterRevoke.code, grpc.status.UNAUTHENTICATED);
  assert.equal(seen.afterRevoke.reason, 'SESSION_INVALID');
  assert.equal(seen.afterRevoke.domain, ERROR_DOMAIN);
});

test('a JWT with another audience fails jose verification', async () => {
  const { createRemoteJWKSet, jwtVerify, errors } = await import('jose');
  const seen = await runFlow({ address: sigil.address, adminKey: sigil.adminKey, say: quiet });
  assert.equal(decodeJwt(seen.jwt).aud, 'orders');
  const jwks = createRemoteJWKSet(new URL(`http://${sigil.address}/.well-known/jwks.json`));
  await assert.rejects(jwtVerify(seen.jwt, jwks, { audience: 'billing' }), errors.JWTClaimValidationFailed);
  const [header, payload, signature] = seen.jwt.split('.');
  const forged = [header, payload, signature.slice(0, -4) + (signature.endsWith('AAAA') ? 'BBBB' : 'AAAA')].join('.');
  await assert.rejects(jwtVerify(forged, jwks), errors.JWSSignatureVerificationFailed);
});

test('a bad subject is INVALID_ARGUMENT with a BadRequest naming `subject`', async () => {
  const clients = connect(sigil.address);
  try {
    for (const subject of ['x'.repeat(257), 'line\nbreak']) {
      const error = await clients.issuer.CreateSession({ subject }).then(
        () => assert.fail('CreateSession accepted a bad subject'), (rejected) => rejected,
      );
      const details = errorDetails(error);
      assert.equal(details.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(details.reason, 'INVALID_FIELD');
      assert.equal(details.domain, ERROR_DOMAIN);
      assert.deepEqual(details.fieldViolations.map((violation) => violation.field), ['subject']);
      assert.ok(details.fieldViolations[0].description.length > 0);
      assert.equal(details.message, error.details);
    }
  } finally {
    close(clients);
  }
});

test('an admin call without a valid admin key is UNAUTHENTICATED with its reason', async () => {
  const clients = connect(sigil.address);
  try {
    const cases = [[new grpc.Metadata(), 'ADMIN_KEY_MISSING'], [admin('n'.repeat(32)), 'ADMIN_KEY_INVALID']];
    for (const [metadata, reason] of cases) {
      const error = await clients.edgeToken.ListApiTokens({}, metadata).then(
        () => assert.fail('ListApiTokens answered without a valid admin key'), (rejected) => rejected,
      );
      const details = errorDetails(error);
      assert.equal(details.codeName, 'UNAUTHENTICATED');
      assert.equal(details.reason, reason);
    }
  } finally {
    close(clients);
  }
});

test('/edge/validate refuses another content type with 415 and a JSON reason', async () => {
  const response = await fetch(`http://${sigil.address}/edge/validate`, {
    method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"tokens": []}',
  });
  assert.equal(response.status, 415);
  assert.equal((await response.json()).reason, 'UNSUPPORTED_MEDIA_TYPE');
});

test('the program prints each step and exits 0', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(here, 'flow.js'), '--addr', sigil.address], {
    env: { ...process.env, SIGIL_ADMIN_KEY: sigil.adminKey }, timeout: 60_000,
  });
  const steps = stdout.trim().split('\n').map((line) => line.split(' ')[0]);
  assert.deepEqual(steps, [
    'CreateSession', 'AuthorizeSession', 'WhoAmI', 'CheckAccess', 'CheckAccess', 'GetToken', 'jose',
    'CreateApiToken', 'POST', 'RevokeSession', 'WhoAmI',
  ]);
  assert.match(stdout, /UNAUTHENTICATED, reason SESSION_INVALID \(sigil\)/);
  assert.match(stdout, /POST \/edge\/validate → 200, 1 of 2 valid: backend Validated/);
});
