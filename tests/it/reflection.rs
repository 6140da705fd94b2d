//! grpcurl, as an operator runs it: no proto files, only server reflection.

use std::process::Command;

use crate::harness::{Harness, grpcurl};

/// Runs `grpcurl -plaintext <flags> <address> <command>`.
pub fn run_grpcurl(h: &Harness, flags: &[&str], command: &[&str]) -> String {
    let args = [flags, command].concat();
    let output = Command::new(grpcurl())
        .arg("-plaintext")
        .args(flags)
        .arg(h.address.to_string())
        .args(command)
        .output()
        .expect("grpcurl runs (the README's test command installs it in .venv)");
    assert!(
        output.status.success(),
        "grpcurl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_and_describes_through_reflection() {
    let h = Harness::memory().await;
    let listed = run_grpcurl(&h, &[], &["list"]);
    for service in [
        "sigil.v1.IssuerService",
        "sigil.v1.ValidatorService",
        "sigil.v1.EdgeTokenService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            listed.lines().any(|line| line == service),
            "{service} in {listed}"
        );
    }
    let described = run_grpcurl(&h, &[], &["describe", "sigil.v1.IssuerService"]);
    assert!(described.contains("rpc AuthorizeSession ( .sigil.v1.AuthorizeSessionRequest )"));
    let message = run_grpcurl(&h, &[], &["describe", "sigil.v1.Session"]);
    assert!(
        message.contains(".google.protobuf.Timestamp expires_at"),
        "{message}"
    );
    let health = run_grpcurl(&h, &[], &["describe", "grpc.health.v1.Health"]);
    assert!(health.contains("rpc Check"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_runs_the_flow_with_json() {
    let h = Harness::memory().await;
    let created = run_grpcurl(
        &h,
        &["-d", r#"{"subject":"judy"}"#],
        &["sigil.v1.IssuerService/CreateSession"],
    );
    let nonce = json_field(&created, "nonce");
    let session_key = json_field(&created, "sessionKey");
    let auth = format!("authorization: Bearer {}", crate::harness::ADMIN_KEY);
    let body = format!(r#"{{"nonce":"{nonce}","permissions":["token:read"]}}"#);
    let authorized = run_grpcurl(
        &h,
        &["-H", &auth, "-d", &body],
        &["sigil.v1.IssuerService/AuthorizeSession"],
    );
    assert!(authorized.contains("SESSION_STATE_ACTIVE"), "{authorized}");
    let bearer = format!("authorization: Bearer {session_key}");
    let who = run_grpcurl(&h, &["-H", &bearer], &["sigil.v1.ValidatorService/WhoAmI"]);
    assert!(who.contains(r#""subject": "judy""#), "{who}");
}

/// The string field `field` of grpcurl's JSON output.
fn json_field(json: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).expect("grpcurl prints JSON");
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {json}"))
        .to_owned()
}
