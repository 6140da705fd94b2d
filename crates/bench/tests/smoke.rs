//! CI smoke of `sigil-bench`: every scenario for about a second with a few
//! sessions, through the real binary, against a `redis-server` it starts
//! and against the in-memory store in process. Asserts that calls completed
//! and none failed — never how fast they were.

#![allow(clippy::unwrap_used, missing_docs)]

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_sigil-bench");

fn run_bench(name: &str, extra: &[&str]) -> (Output, PathBuf) {
    let json = std::env::temp_dir().join(format!(
        "sigil-bench-smoke-{}-{name}.json",
        std::process::id()
    ));
    let output = Command::new(BENCH)
        .args(["run", "--duration", "1s", "--warmup", "200ms"])
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

/// Runs every scenario and checks each measurement completed calls with no
/// error, and each Sigil figure has its baseline ratio.
fn every_scenario_completes_without_errors(name: &str, extra: &[&str], baseline: &str) {
    let (output, json) = run_bench(name, extra);
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
    for expected in [
        "baseline-echo",
        "whoami",
        "check-access",
        "create-authorize",
        "mixed",
    ] {
        assert!(
            names.contains(&expected),
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
    assert!(table.contains("whoami"), "no table on stdout: {table}");
}

#[test]
fn child_processes_over_redis_complete_every_scenario() {
    every_scenario_completes_without_errors("redis", &[], "baseline-get");
}

#[test]
fn in_process_over_memory_completes_every_scenario() {
    every_scenario_completes_without_errors(
        "memory",
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
