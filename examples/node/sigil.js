// Sigil's gRPC clients for Node, loaded at run time from proto/ with
// @grpc/proto-loader (no generated code), plus the metadata conventions
// and the decoding of error details.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository's proto/ directory. */
export const PROTO_ROOT = path.resolve(here, '..', '..', 'proto');

/** `ErrorInfo.domain` of every Sigil error. */
export const ERROR_DOMAIN = 'sigil';

// camelCase fields (sessionKey), 64-bit integers and enums as strings, and
// unset fields filled in, so answers read like the grpcurl JSON.
const LOADER_OPTIONS = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };

/**
 * Loads sigil.v1 from proto/ and returns a client of each service on
 * `address` (host:port, plaintext). google/protobuf imports (Timestamp,
 * Duration, Struct) need no include directory: protobufjs, under
 * proto-loader, has the well-known types built in.
 */
export function connect(address) {
  const definition = protoLoader.loadSync(
    ['sigil/v1/issuer.proto', 'sigil/v1/validator.proto', 'sigil/v1/edge_token.proto'],
    { ...LOADER_OPTIONS, includeDirs: [PROTO_ROOT] },
  );
  const { sigil } = grpc.loadPackageDefinition(definition);
  const credentials = grpc.credentials.createInsecure();
  return {
    issuer: promisified(new sigil.v1.IssuerService(address, credentials)),
    validator: promisified(new sigil.v1.ValidatorService(address, credentials)),
    edgeToken: promisified(new sigil.v1.EdgeTokenService(address, credentials)),
  };
}

// Wraps a client so `client.WhoAmI(request, metadata?)` returns a promise;
// `client.raw` is the grpc-js client itself (for close()).
function promisified(client) {
  const wrapped = { raw: client };
  for (const name of Object.keys(Object.getPrototypeOf(client))) {
    if (typeof client[name] !== 'function' || name.match(/^[a-z]/)) continue;
    const call = promisify(client[name]).bind(client);
    wrapped[name] = (request, metadata = new grpc.Metadata()) => call(request, metadata);
  }
  return wrapped;
}

function metadataOf(entries) {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  return metadata;
}

/** Metadata of an admin call: the admin key as a bearer token. */
export const admin = (adminKey) => metadataOf({ authorization: `Bearer ${adminKey}` });

/** A session key in metadata, as `authorization: Bearer`. */
export const sessionBearer = (sessionKey) => metadataOf({ authorization: `Bearer ${sessionKey}` });

/** A session key in metadata, as `x-session-token` (when `authorization` is taken). */
export const sessionHeader = (sessionKey) => metadataOf({ 'x-session-token': sessionKey });

/** A JSON object as a google.protobuf.Struct, for template claims. */
export function toStruct(object) {
  return { fields: Object.fromEntries(Object.entries(object).map(([key, value]) => [key, toValue(value)])) };
}

function toValue(value) {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  switch (typeof value) {
    case 'string': return { stringValue: value };
    case 'number': return { numberValue: value };
    case 'boolean': return { boolValue: value };
    default: return { structValue: toStruct(value) };
  }
}

// google.rpc.Status and the detail messages Sigil sends, defined in
// proto/google/rpc/details.proto from their wire format (googleapis' own
// files come with an 83 MB npm package). protobufjs has the
// google/protobuf types built in.
const rpcTypes = new protobuf.Root();
rpcTypes.resolvePath = (origin, target) =>
  target.startsWith('google/protobuf/') ? target : path.join(here, 'proto', target);
// Field names as in the .proto file (type_url, field_violations): the
// well-known types protobufjs has built in are spelled that way too.
rpcTypes.loadSync(['google/rpc/details.proto'], { keepCase: true });
const Status = rpcTypes.lookupType('google.rpc.Status');

/**
 * What a Sigil error says beyond its code: the `google.rpc.Status` in the
 * `grpc-status-details-bin` trailer, decoded. Returns `{code, message,
 * reason, domain, fieldViolations, details}`; `reason` and `domain` come
 * from ErrorInfo, `fieldViolations` ([{field, description}]) from
 * BadRequest.
 */
export function errorDetails(error) {
  const [bytes] = error.metadata?.get('grpc-status-details-bin') ?? [];
  const status = bytes ? Status.toObject(Status.decode(bytes)) : { details: [] };
  const details = (status.details ?? []).map(({ type_url: typeUrl, value }) => {
    const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    // A detail type this client does not know is kept undecoded.
    const type = rpcTypes.lookup(name);
    if (!(type instanceof protobuf.Type)) return { type: name, value };
    return { type: name, ...type.toObject(type.decode(value), { defaults: true }) };
  });
  const info = details.find((detail) => detail.type === 'google.rpc.ErrorInfo');
  const badRequest = details.filter((detail) => detail.type === 'google.rpc.BadRequest');
  return {
    code: error.code,
    codeName: grpc.status[error.code],
    message: status.message ?? error.details,
    reason: info?.reason,
    domain: info?.domain,
    fieldViolations: badRequest.flatMap((detail) => detail.field_violations),
    details,
  };
}

/** Closes the clients' channels. */
export function close(clients) {
  for (const client of Object.values(clients)) client.raw.close();
}

export { grpc };
