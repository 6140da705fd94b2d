//! Micro-benchmarks of the pure pieces on Sigil's hot path: reading a
//! session token (prefix, base64, CRC-32), hashing its secret, and deciding
//! access over glob rules. `cargo bench -p sigil-bench`.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{
    AccessDecision, AccessRule, FieldPath, Permission, SecretHash, SessionId, SessionKey,
};

fn session_key_parse(c: &mut Criterion) {
    let mut rng = UnwrapErr(SysRng);
    let key = SessionKey::generate(SessionId::generate(&mut rng), &mut rng).expose();
    // The same length and alphabet with the last character changed: the
    // checksum, not the shape, rejects it.
    let mut typo = key.clone();
    let last = typo
        .pop()
        .map_or('A', |last| if last == 'A' { 'B' } else { 'A' });
    typo.push(last);
    c.bench_function("SessionKey::parse valid", |b| {
        b.iter(|| SessionKey::parse(black_box(&key)).is_some())
    });
    c.bench_function("SessionKey::parse bad checksum", |b| {
        b.iter(|| SessionKey::parse(black_box(&typo)).is_none())
    });
}

fn secret_hash(c: &mut Criterion) {
    let secret = [0x5au8; 32];
    c.bench_function("SecretHash::of 32 bytes", |b| {
        b.iter(|| SecretHash::of(black_box(&secret)))
    });
}

fn access_decision(c: &mut Criterion) {
    let field = FieldPath::from("rules");
    let permission = |text: &str| Permission::parse(text, &field).expect("valid permission");
    let held = vec![permission("token:read")];
    // Ten rules, the catch-all last: a resource no specific rule matches
    // is compared with every glob.
    let mut rules: Vec<AccessRule> = (0..9)
        .map(|index| {
            AccessRule::new(
                index,
                String::new(),
                &format!("tenants/t{index}/tokens/*"),
                &["token:reveal".to_owned()],
                &field,
            )
            .expect("valid rule")
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
        .expect("valid rule"),
    );
    let rules = AccessRule::into_evaluation_order(rules, &field).expect("unique priorities");
    let reveal = permission("token:reveal");
    let read = permission("token:read");
    let cases = [
        ("held permission", &read, Some("tokens/pci/4111")),
        ("first rule hit", &reveal, Some("tenants/t0/tokens/4111")),
        ("last rule miss", &reveal, Some("tokens/public/feed/7")),
        ("no rule matches", &reveal, Some("accounts/42")),
    ];
    for (name, permission, resource) in cases {
        c.bench_function(&format!("AccessDecision::decide {name}"), |b| {
            b.iter(|| {
                AccessDecision::decide(
                    black_box(&held),
                    black_box(&rules),
                    black_box(permission),
                    black_box(resource),
                )
                .is_allowed()
            })
        });
    }
}

criterion_group!(benches, session_key_parse, secret_hash, access_decision);
criterion_main!(benches);
