//! Instruction counts of the pure pieces on Sigil's hot paths, under
//! Valgrind's callgrind through gungraun: unlike the criterion timings in
//! `hot_path.rs`, a count is the same on a busy machine as on a quiet one,
//! so it can be compared across commits.
//!
//! ```sh
//! cargo install --locked --version 0.20.0 gungraun-runner   # once
//! cargo bench -p sigil-bench --features callgrind --bench instructions
//! ```
//!
//! Behind the `callgrind` feature, so `cargo test`/`clippy --all-targets`
//! never build it.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use getrandom::{SysRng, rand_core::UnwrapErr};
use gungraun::prelude::*;
use sigil_domain::{
    AccessDecision, AccessRule, ApiTokenRecord, ApiTokenType, FieldPath, NewApiToken, Permission,
    SecretHash, SessionId, SessionKey, Timestamp, parse_batch,
};

/// A fixed instant: the counts must not depend on the clock.
const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn session_key() -> String {
    let mut rng = UnwrapErr(SysRng);
    SessionKey::generate(SessionId::generate(&mut rng), &mut rng).expose()
}

#[library_benchmark]
#[bench::valid(setup = session_key)]
fn session_key_parse(key: String) -> bool {
    black_box(SessionKey::parse(black_box(&key)).is_some())
}

#[library_benchmark]
fn secret_hash_of_32_bytes() -> SecretHash {
    black_box(SecretHash::of(black_box(&[0x5a; 32])))
}

/// Held permission, ten rules of which the last (`tokens/**`) is the only
/// match: the glob-heavy case of CheckAccess.
fn rules_and_permissions() -> (Vec<Permission>, Vec<AccessRule>, Permission) {
    let field = FieldPath::from("rules");
    let permission = |text: &str| Permission::parse(text, &field).unwrap();
    let mut rules: Vec<AccessRule> = (0..9)
        .map(|index| {
            AccessRule::new(
                index,
                String::new(),
                &format!("tenants/t{index}/tokens/*"),
                &["token:reveal".to_owned()],
                &field,
            )
            .unwrap()
        })
        .collect();
    rules.push(
        AccessRule::new(
            100,
            String::new(),
            "tokens/**",
            &["token:list".to_owned()],
            &field,
        )
        .unwrap(),
    );
    let rules = AccessRule::into_evaluation_order(rules, &field).unwrap();
    (
        vec![permission("token:read")],
        rules,
        permission("token:reveal"),
    )
}

#[library_benchmark]
#[bench::nine_globs_miss_then_catch_all(setup = rules_and_permissions)]
fn access_decision(input: (Vec<Permission>, Vec<AccessRule>, Permission)) -> bool {
    let (held, rules, wanted) = input;
    black_box(
        AccessDecision::decide(
            black_box(&held),
            black_box(&rules),
            black_box(&wanted),
            black_box(Some("tokens/public/feed/7")),
        )
        .is_allowed(),
    )
}

/// `count` API token strings and their records as the Redis store keeps
/// them (JSON).
fn api_tokens(count: usize) -> (Vec<String>, Vec<String>) {
    let mut rng = UnwrapErr(SysRng);
    (0..count)
        .map(|index| {
            let (record, secret) = NewApiToken::new(
                &format!("bench-{index}"),
                Some(ApiTokenType::Backend),
                &["default".to_owned()],
                "development",
                None,
            )
            .unwrap()
            .issue(NOW, &mut rng)
            .unwrap();
            (
                secret.expose().to_owned(),
                serde_json::to_string(&record).unwrap(),
            )
        })
        .unzip()
}

// What ValidateTokens does in process for a batch: parse the strings,
// decode each record, check each secret.
#[library_benchmark]
#[bench::batch_of_100(setup = api_tokens, args = (100))]
fn validate_api_token_batch(input: (Vec<String>, Vec<String>)) -> usize {
    let (texts, records) = input;
    let parsed = parse_batch(black_box(&texts));
    black_box(
        parsed
            .iter()
            .zip(&records)
            .filter(|((_, presented), json)| {
                serde_json::from_str::<ApiTokenRecord>(json)
                    .unwrap()
                    .accepts(presented, NOW)
            })
            .count(),
    )
}

library_benchmark_group!(
    name = hot_path,
    benchmarks = [
        session_key_parse,
        secret_hash_of_32_bytes,
        access_decision,
        validate_api_token_batch
    ]
);

main!(library_benchmark_groups = hot_path);
