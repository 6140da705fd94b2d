//! Micro-benchmarks of the pure pieces on Sigil's hot path: reading a
//! session token (prefix, base64, CRC-32), hashing its secret, deciding
//! access over glob rules, and writing a WhoAmI answer.
//! `cargo bench -p sigil-bench`.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use getrandom::{SysRng, rand_core::UnwrapErr};
use prost::Message;
use sigil_domain::{
    AccessDecision, AccessRule, AssuranceLevel, FieldPath, Permission, SecretHash, Session,
    SessionId, SessionKey, SessionState, Subject, Timestamp,
};
use sigil_proto::v1 as pb;

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

/// A WhoAmI answer for a session shaped like sigil-bench's (one
/// permission, two rules): the conversion to the wire type, then the
/// encoding; what a near-cache hit costs beyond the lookup.
fn who_am_i_answer(c: &mut Criterion) {
    let field = FieldPath::from("rules");
    let rule = |priority, description: &str, resource, permission: &str| {
        AccessRule::new(
            priority,
            description.to_owned(),
            resource,
            &[permission.to_owned()],
            &field,
        )
        .expect("valid rule")
    };
    let session = Session {
        id: SessionId::generate(&mut UnwrapErr(SysRng)),
        subject: Some(Subject::parse("bench-user-42", "subject").expect("valid subject")),
        state: SessionState::Active,
        permissions: vec![Permission::parse("token:read", &field).expect("valid permission")],
        rules: vec![
            rule(1, "card tokens", "tokens/pci/*", "token:reveal"),
            rule(2, "every other token", "tokens/**", "token:list"),
        ],
        metadata: Default::default(),
        created_at: Timestamp::from_unix_ms(1_790_000_000_000),
        authorized_at: Some(Timestamp::from_unix_ms(1_790_000_000_100)),
        expires_at: Timestamp::from_unix_ms(1_790_000_900_000),
        revoked_at: None,
        assurance_level: AssuranceLevel::Aal1,
    };
    c.bench_function("WhoAmI answer: Session to the wire type", |b| {
        b.iter(|| pb::Session::from(black_box(&session)))
    });
    let mut buffer = Vec::with_capacity(1024);
    c.bench_function("WhoAmI answer: converted and encoded", |b| {
        b.iter(|| {
            buffer.clear();
            let answer = pb::WhoAmIResponse {
                session: Some(pb::Session::from(black_box(&session))),
                tokenized: String::new(),
            };
            answer.encode(&mut buffer).expect("the buffer grows");
            buffer.len()
        })
    });
}

criterion_group!(
    benches,
    session_key_parse,
    secret_hash,
    access_decision,
    who_am_i_answer
);
criterion_main!(benches);
