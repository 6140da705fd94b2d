#!/usr/bin/env python3
"""Sigil's whole session flow from Python, with stubs generated from proto/.

    python examples/python/sigil_flow.py --addr 127.0.0.1:50051 --admin-key KEY

(`sigil dev` prints an admin key; SIGIL_ADDR and SIGIL_ADMIN_KEY work too.)
It creates a session, authorizes it with the admin key, asks the validator
WhoAmI and CheckAccess, mints a JWT from a template and verifies it with
PyJWT against /.well-known/jwks.json, revokes the session, and shows that
the session key is then refused, branching on the error's reason.
"""

import argparse
import os
import sys

import grpc
import jwt
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2, status_pb2

import sigil_stubs

# ErrorInfo.domain of every Sigil error.
ERROR_DOMAIN = "sigil"


def admin(admin_key):
    """Metadata of an admin call: the admin key as a bearer token."""
    return (("authorization", f"Bearer {admin_key}"),)


def session_bearer(session_key):
    """A session key in metadata, as `authorization: Bearer`."""
    return (("authorization", f"Bearer {session_key}"),)


def session_header(session_key):
    """A session key in metadata, as `x-session-token` (for callers whose
    `authorization` header is already taken)."""
    return (("x-session-token", session_key),)


class ErrorDetails:
    """What a Sigil error says beyond its code: `google.rpc.Status` decoded
    from the `grpc-status-details-bin` trailer, with its ErrorInfo (a stable
    `reason` and the `domain`) and BadRequest field violations."""

    def __init__(self, error):
        self.code = error.code()
        self.status = status_pb2.Status()
        self.info = None
        self.violations = []
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                self.status.ParseFromString(value)
        for detail in self.status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                self.info = error_details_pb2.ErrorInfo()
                detail.Unpack(self.info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                self.violations.extend(bad_request.field_violations)

    @property
    def reason(self):
        return self.info.reason if self.info else None

    @property
    def fields(self):
        return [violation.field for violation in self.violations]


def run_flow(channel, http_base, admin_key, pb, say=print):
    """Runs the whole flow over `channel` and returns what it saw, for
    tests to check. `http_base` is `http://host:port` of the same server."""
    issuer = pb.issuer_pb2_grpc.IssuerServiceStub(channel)
    validator = pb.validator_pb2_grpc.ValidatorServiceStub(channel)
    seen = {}

    # 1. The frontend creates a PENDING session: no key needed.
    created = issuer.CreateSession(
        pb.issuer_pb2.CreateSessionRequest(subject="alice", metadata={"device": "laptop", "role": "buyer"})
    )
    say(f"CreateSession → {created.session_id} (PENDING); the key goes to the client, the nonce to the backend")
    seen["created"] = created

    # 2. The backend authorizes it with the nonce and the admin key.
    authorized = issuer.AuthorizeSession(
        pb.issuer_pb2.AuthorizeSessionRequest(
            nonce=created.nonce,
            permissions=["token:read"],
            rules=[pb.session_pb2.AccessRule(priority=1, resource="tokens/pci/*", permissions=["token:reveal"])],
        ),
        metadata=admin(admin_key),
    )
    state = pb.session_pb2.SessionState.Name(authorized.session.state)
    say(f"AuthorizeSession → {state}, permissions {list(authorized.session.permissions)}")
    seen["authorized"] = authorized

    # 3. Any service asks who holds the key (here: `authorization: Bearer`).
    who = validator.WhoAmI(pb.validator_pb2.WhoAmIRequest(), metadata=session_bearer(created.session_key))
    say(f"WhoAmI → {who.session.id}, subject {who.session.subject!r}")
    seen["whoami"] = who

    # 4. … and whether it may do something (here: `x-session-token`).
    checks = {}
    for permission, resource in [("token:reveal", "tokens/pci/4111"), ("token:reveal", "tokens/other/1")]:
        answer = validator.CheckAccess(
            pb.validator_pb2.CheckAccessRequest(permission=permission, resource=resource),
            metadata=session_header(created.session_key),
        )
        decided_by = f"rule {answer.deciding_rule.priority}" if answer.HasField("deciding_rule") else "no rule"
        say(f"CheckAccess {permission} on {resource} → allowed={answer.allowed} ({decided_by})")
        checks[resource] = answer
    seen["checks"] = checks

    # 5. An admin puts a JWT template; the session mints a token from it.
    claims = struct_pb2.Struct()
    claims.update({"role": "{{session.metadata.role}}", "perms": "{{session.permissions}}"})
    issuer.PutTokenTemplate(
        pb.issuer_pb2.PutTokenTemplateRequest(
            template=pb.token_pb2.TokenTemplate(
                name="orders-api",
                claims=claims,
                audience="orders",
                issuer="https://auth.example",
                lifetime=duration_pb2.Duration(seconds=120),
            )
        ),
        metadata=admin(admin_key),
    )
    token = issuer.GetToken(pb.issuer_pb2.GetTokenRequest(session_token=created.session_key, template="orders-api"))
    say(f"GetToken orders-api → a JWT of {len(token.jwt)} characters, expires {token.expires_at.ToJsonString()}")

    # 6. Any service verifies it locally with the published keys. The
    # algorithm is the key's (from the JWKS), never the token header's.
    jwks = jwt.PyJWKClient(f"{http_base}/.well-known/jwks.json")
    signing_key = jwks.get_signing_key_from_jwt(token.jwt)
    verified = jwt.decode(
        token.jwt,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],
        audience="orders",
        issuer="https://auth.example",
    )
    say(f"PyJWT verified it with kid {signing_key.key_id}: sub={verified['sub']} sid={verified['sid']} role={verified['role']}")
    seen["jwt"] = token.jwt
    seen["claims"] = verified
    seen["kid"] = signing_key.key_id

    # 7. The admin revokes the session; the key stops working at once.
    revoked = issuer.RevokeSession(
        pb.issuer_pb2.RevokeSessionRequest(session_id=created.session_id), metadata=admin(admin_key)
    )
    say(f"RevokeSession → {pb.session_pb2.SessionState.Name(revoked.session.state)}")
    seen["revoked"] = revoked

    try:
        validator.WhoAmI(pb.validator_pb2.WhoAmIRequest(), metadata=session_bearer(created.session_key))
    except grpc.RpcError as error:
        details = ErrorDetails(error)
        # Branch on Sigil's stable reason, never on the message.
        if details.info and details.info.domain == ERROR_DOMAIN and details.reason == "SESSION_INVALID":
            say(f"WhoAmI after revoke → {details.code.name}, reason {details.reason} ({details.info.domain}): sign in again")
        else:
            raise
        seen["after_revoke"] = details
    else:
        raise AssertionError("WhoAmI accepted a revoked session's key")
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--addr", default=os.environ.get("SIGIL_ADDR", "127.0.0.1:50051"), help="host:port of Sigil")
    parser.add_argument("--admin-key", default=os.environ.get("SIGIL_ADMIN_KEY"), help="an admin key of that Sigil")
    args = parser.parse_args()
    if not args.admin_key:
        parser.error("give --admin-key or SIGIL_ADMIN_KEY (sigil dev prints one)")
    pb = sigil_stubs.load()
    with grpc.insecure_channel(args.addr) as channel:
        run_flow(channel, f"http://{args.addr}", args.admin_key, pb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
