//! CI smoke of `sigil-bench`: the session scenarios for about a second
//! each with a few sessions, through the real binary, against a
//! `redis-server` it starts and against the in-memory store in process; the
//! token scenarios (one per algorithm and per VerifyToken check, GetToken,
//! ValidateTokens) shorter, in process only. Asserts that calls completed
//! and none failed — never how fast they were.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_sigil-bench");

/// The scenarios of the session API, a second each over both stores.
const SESSION_SCENARIOS: [&str; 5] = [
    "whoami",
    "batch-whoami-100",
    "check-access",
    "create-authorize",
    "mixed",
];

/// One VerifyToken scenario per algorithm and each check once, GetToken,
/// and ValidateTokens over each transport with a small batch.
const TOKEN_SCENARIOS: [&str; 7] = [
    "verify-token-eddsa",
    "verify-token-es256-check-session",
    "verify-token-rs256-consume-jti",
    "verify-token-hs256",
    "get-token",
    "validate-tokens-10",
    "edge-validate-10",
];

fn run_bench(name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let json = std::env::temp_dir().join(format!(
        "sigil-bench-smoke-{}-{name}.json",
        std::process::id()
    ));
    let output = Command::new(BENCH)
        .arg("run")
        .args([
            "--sessions",
            "50",
            "--connections",
            "2",
            "--concurrency",
            "8",
        ])
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("sigil-bench runs");
    (output, json)
}

/// Runs `scenarios` for `duration` each and checks each measurement
/// completed calls with no error, and each Sigil figure has its baseline
/// ratio.
fn scenarios_complete_without_errors(
    name: &str,
    scenarios: &[&str],
    duration: &str,
    extra: &[&str],
    baseline: &str,
) {
    let mut args = vec!["--duration", duration, "--warmup", "100ms"];
    args.extend_from_slice(extra);
    args.extend_from_slice(scenarios);
    let (output, json) = run_bench(name, &args);
    assert!(
        output.status.success(),
        "sigil-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["sessions"]["sessions"], 50);
    let measurements = report["measurements"].as_array().unwrap();
    let names: Vec<&str> = measurements
        .iter()
        .map(|measurement| measurement["name"].as_str().unwrap())
        .collect();
    for expected in std::iter::once(&"baseline-echo").chain(scenarios) {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    for measurement in measurements {
        let name = &measurement["name"];
        assert!(
            measurement["requests"].as_u64().unwrap() > 0,
            "{name} completed no call"
        );
        assert_eq!(
            measurement["errors"],
            serde_json::json!({}),
            "{name} had errors"
        );
        assert!(
            measurement["server_memory"]["rss_kib"].as_u64().unwrap() > 0,
            "{name} has no RSS"
        );
        if measurement["server"] == "sigil" {
            assert_eq!(
                measurement["against_baseline"]["baseline"], baseline,
                "{name}"
            );
        }
    }
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains(scenarios[0]), "no table on stdout: {table}");
}

#[test]
fn child_processes_over_redis_complete_the_session_scenarios() {
    scenarios_complete_without_errors("redis", &SESSION_SCENARIOS, "1s", &[], "baseline-get");
}

#[test]
fn in_process_over_memory_completes_the_session_scenarios() {
    scenarios_complete_without_errors(
        "memory",
        &SESSION_SCENARIOS,
        "1s",
        &["--store", "memory", "--in-process"],
        "baseline-echo",
    );
}

#[test]
fn in_process_over_memory_completes_the_token_scenarios() {
    scenarios_complete_without_errors(
        "tokens",
        &TOKEN_SCENARIOS,
        "500ms",
        &["--store", "memory", "--in-process"],
        "baseline-echo",
    );
}

#[test]
fn a_target_off_loopback_is_refused_before_any_call() {
    let output = Command::new(BENCH)
        .args(["run", "--target", "http://10.1.2.3:50051", "--admin-key"])
        .arg("x".repeat(30))
        .output()
        .expect("sigil-bench runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
