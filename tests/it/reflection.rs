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
        "sigil.v1.EventService",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_watches_the_event_stream() {
    use std::io::{BufRead, BufReader};

    let h = Harness::memory().await;
    let created = run_grpcurl(
        &h,
        &["-d", r#"{"subject":"ivan"}"#],
        &["sigil.v1.IssuerService/CreateSession"],
    );
    let session_id = json_field(&created, "sessionId");
    // A watch never ends by itself: read until the event shows, then stop.
    let mut watch = Command::new(grpcurl())
        .arg("-plaintext")
        .args([
            "-H",
            &format!("authorization: Bearer {}", crate::harness::ADMIN_KEY),
        ])
        .args(["-d", r#"{"after_cursor":"0"}"#])
        .arg(h.address.to_string())
        .arg("sigil.v1.EventService/WatchEvents")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("grpcurl runs");
    let stdout = watch.stdout.take().expect("piped");
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("grpcurl output");
        printed.push_str(&line);
        printed.push('\n');
        if line == "}" {
            break;
        }
    }
    watch.kill().expect("grpcurl stopped");
    watch.wait().expect("grpcurl reaped");
    let event: serde_json::Value = serde_json::from_str(&printed).expect("grpcurl prints JSON");
    assert_eq!(
        event["event"]["kind"], "EVENT_KIND_SESSION_CREATED",
        "{printed}"
    );
    assert_eq!(
        event["event"]["sessionId"],
        session_id.as_str(),
        "{printed}"
    );
    assert_eq!(event["event"]["cursor"], "1", "{printed}");
}

/// The string field `field` of grpcurl's JSON output.
fn json_field(json: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).expect("grpcurl prints JSON");
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {json}"))
        .to_owned()
}
