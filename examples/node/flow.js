#!/usr/bin/env node
// Sigil's whole session flow from Node, with the .proto files loaded at run
// time:
//
//   node examples/node/flow.js --addr 127.0.0.1:50051 --admin-key KEY
//
// (`sigil dev` prints an admin key; SIGIL_ADDR and SIGIL_ADMIN_KEY work
// too.) It creates a session, authorizes it, asks WhoAmI and CheckAccess,
// mints a JWT and verifies it with jose against /.well-known/jwks.json,
// creates an API token and validates it with POST /edge/validate, revokes
// the session and shows that its key is then refused, branching on the
// error's reason.

import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import {
  ERROR_DOMAIN, admin, close, connect, errorDetails, sessionBearer, sessionHeader, toStruct,
} from './sigil.js';

/**
 * Runs the flow against Sigil at `address` and returns what it saw, for
 * tests to check. `say` receives one line per step.
 */
export async function runFlow({ address, adminKey, say = console.log }) {
  const clients = connect(address);
  const { issuer, validator, edgeToken } = clients;
  const seen = {};
  try {
    // 1. The frontend creates a PENDING session: no key needed.
    const created = await issuer.CreateSession({ subject: 'alice', metadata: { device: 'laptop', role: 'buyer' } });
    say(`CreateSession → ${created.sessionId} (PENDING); the key goes to the client, the nonce to the backend`);
    seen.created = created;

    // 2. The backend authorizes it with the nonce and the admin key.
    const { session } = await issuer.AuthorizeSession({
      nonce: created.nonce,
      permissions: ['token:read'],
      rules: [{ priority: 1, resource: 'tokens/pci/*', permissions: ['token:reveal'] }],
    }, admin(adminKey));
    say(`AuthorizeSession → ${session.state}, permissions ${JSON.stringify(session.permissions)}`);
    seen.authorized = session;

    // 3. Any service asks who holds the key (here: `authorization: Bearer`).
    const who = await validator.WhoAmI({}, sessionBearer(created.sessionKey));
    say(`WhoAmI → ${who.session.id}, subject ${JSON.stringify(who.session.subject)}`);
    seen.whoami = who;

    // 4. … and whether it may do something (here: `x-session-token`).
    seen.checks = {};
    for (const resource of ['tokens/pci/4111', 'tokens/other/1']) {
      const answer = await validator.CheckAccess(
        { permission: 'token:reveal', resource }, sessionHeader(created.sessionKey),
      );
      const decidedBy = answer.decidingRule ? `rule ${answer.decidingRule.priority}` : 'no rule';
      say(`CheckAccess token:reveal on ${resource} → allowed=${answer.allowed} (${decidedBy})`);
      seen.checks[resource] = answer;
    }

    // 5. An admin puts a JWT template; the session mints a token from it.
    await issuer.PutTokenTemplate({
      template: {
        name: 'orders-api',
        claims: toStruct({ role: '{{session.metadata.role}}', perms: '{{session.permissions}}' }),
        audience: 'orders',
        issuer: 'https://auth.example',
        lifetime: { seconds: 120 },
      },
    }, admin(adminKey));
    const token = await issuer.GetToken({ sessionToken: created.sessionKey, template: 'orders-api' });
    say(`GetToken orders-api → a JWT of ${token.jwt.length} characters, expires at ${token.expiresAt.seconds} (Unix s)`);
    seen.jwt = token.jwt;

    // 6. Any service verifies it locally with the published keys; jose
    // picks the key by `kid` and holds the token to the key's algorithm.
    const jwks = createRemoteJWKSet(new URL(`http://${address}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(token.jwt, jwks, {
      audience: 'orders', issuer: 'https://auth.example',
    });
    say(`jose verified it with kid ${protectedHeader.kid}: sub=${payload.sub} sid=${payload.sid} role=${payload.role}`);
    seen.claims = payload;
    seen.header = protectedHeader;

    // 7. An admin creates an API token; an SDK or Unleash Edge checks it
    // over HTTP with POST /edge/validate, on the same port.
    const apiToken = await edgeToken.CreateApiToken({
      tokenName: 'checkout-service', type: 'API_TOKEN_TYPE_BACKEND', projects: ['default'], environment: 'development',
    }, admin(adminKey));
    say(`CreateApiToken → ${apiToken.apiToken.id} (${apiToken.apiToken.type})`);
    seen.apiToken = apiToken;
    const response = await fetch(`http://${address}/edge/validate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tokens: [apiToken.token, 'not-a-token'] }),
    });
    const validated = await response.json();
    if (!response.ok) throw new Error(`/edge/validate answered ${response.status} ${JSON.stringify(validated)}`);
    say(`POST /edge/validate → ${response.status}, ${validated.tokens.length} of 2 valid: ${validated.tokens.map((t) => `${t.type} ${t.status}`).join(', ')}`);
    seen.edgeValidate = { status: response.status, body: validated };

    // 8. The admin revokes the session; the key stops working at once.
    const revoked = await issuer.RevokeSession({ sessionId: created.sessionId }, admin(adminKey));
    say(`RevokeSession → ${revoked.session.state}`);
    seen.revoked = revoked.session;

    try {
      await validator.WhoAmI({}, sessionBearer(created.sessionKey));
      throw new Error("WhoAmI accepted a revoked session's key");
    } catch (error) {
      if (error.code === undefined) throw error;
      const details = errorDetails(error);
      // Branch on Sigil's stable reason, never on the message.
      if (details.domain !== ERROR_DOMAIN || details.reason !== 'SESSION_INVALID') throw error;
      say(`WhoAmI after revoke → ${details.codeName}, reason ${details.reason} (${details.domain}): sign in again`);
      seen.afterRevoke = details;
    }
    return seen;
  } finally {
    close(clients);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      addr: { type: 'string', default: process.env.SIGIL_ADDR ?? '127.0.0.1:50051' },
      'admin-key': { type: 'string', default: process.env.SIGIL_ADMIN_KEY },
    },
  });
  if (!values['admin-key']) {
    console.error('flow.js: give --admin-key or SIGIL_ADMIN_KEY (sigil dev prints one)');
    process.exitCode = 2;
    return;
  }
  await runFlow({ address: values.addr, adminKey: values['admin-key'] });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
