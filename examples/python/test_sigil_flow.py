"""Runs the Python example against a `sigil dev` this test starts itself.

The binary is $SIGIL_BIN, or target/debug/sigil (under $CARGO_TARGET_DIR
when set), which `cargo test` or `cargo build --bin sigil` builds.
"""

import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import sigil_flow
import sigil_stubs

REPO = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
START_DEADLINE_SECS = 30


def sigil_binary():
    if os.environ.get("SIGIL_BIN"):
        return pathlib.Path(os.environ["SIGIL_BIN"])
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    return target / "debug" / "sigil"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process, channel, log_path):
    """Polls gRPC health until the validator is SERVING, the process dies,
    or the deadline passes. Returns True when serving."""
    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service="sigil.v1.ValidatorService")
    deadline = time.monotonic() + START_DEADLINE_SECS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            # wait_for_ready: the call waits for the connection itself, so
            # the loop turns only on a real answer or a one-second timeout.
            answer = health.Check(request, timeout=1, wait_for_ready=True)
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return True
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
    raise AssertionError(f"sigil dev not SERVING within {START_DEADLINE_SECS}s; log:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    return sigil_stubs.load(tmp_path_factory.mktemp("stubs"))


# Every test runs against a `sigil dev` free to use every CPU (a worker per
# CPU, connections dealt between them), the same under Tokio's
# work-stealing runtime, and one pinned to a single CPU (the current-thread
# runtime Sigil picks there): (pin, scheduler setting, scheduler logged).
PLACEMENTS = {
    "every-cpu": ([], "per-core", "per-core"),
    "every-cpu-work-stealing": ([], "work-stealing", "work-stealing"),
    "one-cpu": (["taskset", "-c", "0"], "per-core", "current-thread"),
}


@pytest.fixture(scope="session", params=sorted(PLACEMENTS))
def sigil(request, tmp_path_factory):
    """A running `sigil dev`: (address, admin key, channel)."""
    pin, setting, scheduler = PLACEMENTS[request.param]
    if not pin and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine gives the tests a single CPU")
    binary = sigil_binary()
    assert binary.is_file(), f"{binary} not found: run `cargo build --bin sigil` or set SIGIL_BIN"
    admin_key = secrets.token_urlsafe(32)
    log_path = tmp_path_factory.mktemp("sigil") / "sigil.log"
    # Another process may take the free port between the probe and the
    # bind; then sigil exits and the next attempt picks another port.
    for _attempt in range(3):
        address = f"127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "SIGIL_ADMIN_KEYS": admin_key,
            "SIGIL_LOG": "warn,sigil_runtime::run=info",
            "SIGIL_SCHEDULER": setting,
        }
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [*pin, str(binary), "dev", "--listen", address], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        channel = grpc.insecure_channel(address)
        try:
            if wait_until_serving(process, channel, log_path):
                break
        except BaseException:
            process.kill()
            raise
        channel.close()
    else:
        raise AssertionError(f"sigil dev exited at start three times; last log:\n{log_path.read_text()}")
    if f"scheduler={scheduler}" not in log_path.read_text():
        process.kill()
        raise AssertionError(f"expected the {scheduler} runtime; log:\n{log_path.read_text()}")
    yield address, admin_key, channel
    channel.close()
    process.terminate()
    try:
        assert process.wait(timeout=10) == 0, f"sigil dev did not exit cleanly; log:\n{log_path.read_text()}"
    finally:
        if process.poll() is None:
            process.kill()


def test_whole_flow_from_create_to_revoke(sigil, pb):
    address, admin_key, channel = sigil
    seen = sigil_flow.run_flow(channel, f"http://{address}", admin_key, pb, say=lambda _line: None)

    created, session = seen["created"], seen["authorized"].session
    assert created.session_id.startswith("sess_")
    assert created.session_key.startswith("sigil_sk_") and created.nonce.startswith("sigil_nonce_")
    assert session.id == created.session_id
    assert session.state == pb.session_pb2.SESSION_STATE_ACTIVE
    assert seen["whoami"].session.id == created.session_id
    assert seen["whoami"].session.subject == "alice"
    assert dict(seen["whoami"].session.metadata) == {"device": "laptop", "role": "buyer"}

    granted, refused = seen["checks"]["tokens/pci/4111"], seen["checks"]["tokens/other/1"]
    assert granted.allowed and granted.deciding_rule.priority == 1 and not granted.granted_by_permission
    assert not refused.allowed and not refused.HasField("deciding_rule")
    assert granted.session_id == created.session_id and granted.subject == "alice"

    claims = seen["claims"]
    assert claims["sub"] == "alice" and claims["sid"] == created.session_id
    assert claims["aud"] == "orders" and claims["iss"] == "https://auth.example"
    assert claims["role"] == "buyer" and claims["perms"] == ["token:read"] and claims["tpl"] == "orders-api"
    assert 0 < claims["exp"] - claims["iat"] <= 120

    assert seen["revoked"].session.state == pb.session_pb2.SESSION_STATE_REVOKED
    after = seen["after_revoke"]
    assert after.code == grpc.StatusCode.UNAUTHENTICATED
    assert (after.reason, after.info.domain) == ("SESSION_INVALID", "sigil")


def test_tampered_jwt_fails_pyjwt_verification(sigil, pb):
    import jwt

    address, admin_key, channel = sigil
    seen = sigil_flow.run_flow(channel, f"http://{address}", admin_key, pb, say=lambda _line: None)
    header, payload, signature = seen["jwt"].split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    signing_key = jwt.PyJWKClient(f"http://{address}/.well-known/jwks.json").get_signing_key(seen["kid"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, signing_key.key, algorithms=[signing_key.algorithm_name], audience="orders")


def test_bad_subject_is_invalid_argument_naming_the_field(sigil, pb):
    _address, _admin_key, channel = sigil
    issuer = pb.issuer_pb2_grpc.IssuerServiceStub(channel)
    for subject in ["x" * 257, "line\nbreak"]:
        with pytest.raises(grpc.RpcError) as raised:
            issuer.CreateSession(pb.issuer_pb2.CreateSessionRequest(subject=subject))
        details = sigil_flow.ErrorDetails(raised.value)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert (details.reason, details.info.domain) == ("INVALID_FIELD", "sigil")
        assert details.fields == ["subject"]
        assert details.violations[0].description
        # The decoded Status agrees with the call's own code and message.
        assert details.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert details.status.message == raised.value.details()


def test_bad_rule_names_its_index_and_leaves_the_nonce_usable(sigil, pb):
    _address, admin_key, channel = sigil
    issuer = pb.issuer_pb2_grpc.IssuerServiceStub(channel)
    created = issuer.CreateSession(pb.issuer_pb2.CreateSessionRequest(subject="bob"))
    good = pb.session_pb2.AccessRule(priority=1, resource="orders/*", permissions=["order:read"])
    bad = pb.session_pb2.AccessRule(priority=2, resource="", permissions=["order:write"])
    with pytest.raises(grpc.RpcError) as raised:
        issuer.AuthorizeSession(
            pb.issuer_pb2.AuthorizeSessionRequest(nonce=created.nonce, rules=[good, bad]),
            metadata=sigil_flow.admin(admin_key),
        )
    details = sigil_flow.ErrorDetails(raised.value)
    assert (details.code, details.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD")
    assert details.fields == ["rules[1].resource"]

    authorized = issuer.AuthorizeSession(
        pb.issuer_pb2.AuthorizeSessionRequest(nonce=created.nonce, rules=[good]), metadata=sigil_flow.admin(admin_key)
    )
    assert authorized.session.state == pb.session_pb2.SESSION_STATE_ACTIVE
    with pytest.raises(grpc.RpcError) as raised:
        issuer.AuthorizeSession(
            pb.issuer_pb2.AuthorizeSessionRequest(nonce=created.nonce, permissions=["x"]),
            metadata=sigil_flow.admin(admin_key),
        )
    details = sigil_flow.ErrorDetails(raised.value)
    assert (details.code, details.reason) == (grpc.StatusCode.NOT_FOUND, "NONCE_NOT_FOUND")


@pytest.mark.parametrize(
    "metadata, reason",
    [((), "ADMIN_KEY_MISSING"), ((("authorization", "Bearer " + "n" * 32),), "ADMIN_KEY_INVALID")],
    ids=["missing", "wrong"],
)
def test_admin_call_without_the_admin_key_is_unauthenticated(sigil, pb, metadata, reason):
    _address, _admin_key, channel = sigil
    issuer = pb.issuer_pb2_grpc.IssuerServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        issuer.GetSession(pb.issuer_pb2.GetSessionRequest(session_id="sess_" + "0" * 32), metadata=metadata)
    details = sigil_flow.ErrorDetails(raised.value)
    assert (details.code, details.reason, details.info.domain) == (grpc.StatusCode.UNAUTHENTICATED, reason, "sigil")


def test_program_prints_each_step(sigil):
    address, admin_key, _channel = sigil
    result = subprocess.run(
        [sys.executable, str(HERE / "sigil_flow.py"), "--addr", address],
        env={**os.environ, "SIGIL_ADMIN_KEY": admin_key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    steps = [line.split(" ")[0] for line in result.stdout.splitlines()]
    assert steps == [
        "CreateSession",
        "AuthorizeSession",
        "WhoAmI",
        "CheckAccess",
        "CheckAccess",
        "GetToken",
        "PyJWT",
        "RevokeSession",
        "WhoAmI",
    ]
    assert "allowed=True" in result.stdout and "allowed=False" in result.stdout
    assert "UNAUTHENTICATED, reason SESSION_INVALID (sigil)" in result.stdout


def test_program_refuses_to_run_without_an_admin_key():
    env = {key: value for key, value in os.environ.items() if key != "SIGIL_ADMIN_KEY"}
    result = subprocess.run(
        [sys.executable, str(HERE / "sigil_flow.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "SIGIL_ADMIN_KEY" in result.stderr


def newest_cursor(events, admin_key, pb):
    """The cursor after every event so far, read with ListEvents."""
    cursor = ""
    while True:
        page = events.ListEvents(
            pb.event_pb2.ListEventsRequest(after_cursor=cursor, page_size=1000), metadata=sigil_flow.admin(admin_key)
        )
        if not page.events:
            return page.next_cursor
        cursor = page.next_cursor


def test_watch_events_streams_changes_and_resumes_from_a_cursor(sigil, pb):
    _address, admin_key, channel = sigil
    issuer = pb.issuer_pb2_grpc.IssuerServiceStub(channel)
    events = pb.event_pb2_grpc.EventServiceStub(channel)
    start = newest_cursor(events, admin_key, pb)
    # The timeout only bounds a broken test; events arrive as they happen.
    watch = events.WatchEvents(
        pb.event_pb2.WatchEventsRequest(after_cursor=start), metadata=sigil_flow.admin(admin_key), timeout=30
    )
    created = issuer.CreateSession(pb.issuer_pb2.CreateSessionRequest(subject="zoe"))
    issuer.AuthorizeSession(
        pb.issuer_pb2.AuthorizeSessionRequest(nonce=created.nonce, permissions=["read"]),
        metadata=sigil_flow.admin(admin_key),
    )
    issuer.RevokeSession(
        pb.issuer_pb2.RevokeSessionRequest(session_id=created.session_id), metadata=sigil_flow.admin(admin_key)
    )
    seen = [next(watch).event for _ in range(3)]
    watch.cancel()
    assert [event.kind for event in seen] == [
        pb.event_pb2.EVENT_KIND_SESSION_CREATED,
        pb.event_pb2.EVENT_KIND_SESSION_AUTHORIZED,
        pb.event_pb2.EVENT_KIND_SESSION_REVOKED,
    ]
    assert all(event.session_id == created.session_id and event.subject == "zoe" for event in seen)
    assert created.session_key not in str(seen) and created.nonce not in str(seen)

    # A client that went away resumes after the last cursor it saw: the
    # rest, nothing twice.
    resumed = events.WatchEvents(
        pb.event_pb2.WatchEventsRequest(after_cursor=seen[0].cursor),
        metadata=sigil_flow.admin(admin_key),
        timeout=30,
    )
    again = [next(resumed).event for _ in range(2)]
    resumed.cancel()
    assert [event.cursor for event in again] == [event.cursor for event in seen[1:]]


def test_a_cursor_the_store_never_gave_is_out_of_range(sigil, pb):
    _address, admin_key, channel = sigil
    events = pb.event_pb2_grpc.EventServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        events.ListEvents(
            pb.event_pb2.ListEventsRequest(after_cursor="999999999"), metadata=sigil_flow.admin(admin_key)
        )
    details = sigil_flow.ErrorDetails(raised.value)
    assert (details.code, details.reason) == (grpc.StatusCode.OUT_OF_RANGE, "EVENT_CURSOR_EXPIRED")
