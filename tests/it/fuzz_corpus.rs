//! The cargo-fuzz targets' seeds and every crash input kept as a
//! regression, replayed through the same target bodies the fuzzer runs
//! (`tests/fuzz/src/lib.rs`), so CI checks the targets in milliseconds
//! without libFuzzer.

use std::path::PathBuf;

#[path = "../fuzz/src/lib.rs"]
mod targets;

/// Runs `target` on every file in `tests/fuzz/seeds/<name>`.
fn replay(name: &str, target: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(name);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{dir:?}: {error}")) {
        let path = entry.expect("a directory entry").path();
        let data = std::fs::read(&path).expect("a seed file");
        // A panic names the input that caused it.
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{name} panicked on {path:?}");
        count += 1;
    }
    assert!(count > 0, "no seeds for {name} in {dir:?}");
}

#[test]
fn jwt_seeds_replay_cleanly() {
    replay("jwt", targets::jwt);
}

#[test]
fn template_seeds_replay_cleanly() {
    replay("template", targets::template);
}

#[test]
fn api_token_seeds_replay_cleanly() {
    replay("api_token", targets::api_token);
}

#[test]
fn session_secret_seeds_replay_cleanly() {
    replay("session_secret", targets::session_secret);
}

#[test]
fn edge_body_seeds_replay_cleanly() {
    replay("edge_body", targets::edge_body);
}
