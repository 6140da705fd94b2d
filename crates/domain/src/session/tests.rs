use getrandom::{SysRng, rand_core::UnwrapErr};

use super::*;

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn policy() -> SessionPolicy {
    SessionPolicy::default()
}

fn pending() -> (SessionRecord, SessionKey, Nonce) {
    NewSession::new("alice", [], None)
        .expect("valid")
        .issue(&policy(), NOW, &mut UnwrapErr(SysRng))
        .expect("issued")
}

fn authorization(nonce: &Nonce, expires_at: Option<Timestamp>) -> Authorization {
    Authorization::new(
        &nonce.expose(),
        &["token:read".into()],
        vec![],
        expires_at,
        "",
        AssuranceLevel::Aal1,
    )
    .expect("valid")
}

#[test]
fn new_session_is_pending_and_stores_only_hashes() {
    let (record, key, nonce) = pending();
    assert_eq!(record.session.state, SessionState::Pending);
    assert_eq!(
        record.session.expires_at,
        NOW.plus(policy().default_pending_ttl)
    );
    let json = serde_json::to_string(&record).expect("serializes");
    assert!(!json.contains(&key.expose()["sigil_sk_".len()..]));
    assert!(!json.contains(&nonce.expose()["sigil_nonce_".len()..]));
    assert!(
        record.authenticate(&key, NOW).is_err(),
        "pending grants nothing"
    );
}

#[test]
fn nonce_authorizes_once() {
    let (record, key, nonce) = pending();
    let authorized = record
        .authorize(&authorization(&nonce, None), &policy(), NOW)
        .expect("authorized");
    assert_eq!(authorized.revision, record.revision + 1);
    assert_eq!(authorized.session.state, SessionState::Active);
    assert_eq!(
        authorized.session.expires_at,
        NOW.plus(policy().default_lifespan)
    );
    assert!(authorized.authenticate(&key, NOW).is_ok());
    assert!(matches!(
        authorized.authorize(&authorization(&nonce, None), &policy(), NOW),
        Err(Error::NonceNotFound)
    ));
}

#[test]
fn nonce_fails_after_its_ttl_or_for_another_session() {
    let (record, _, nonce) = pending();
    let late = NOW.plus(policy().default_pending_ttl);
    assert!(matches!(
        record.authorize(&authorization(&nonce, None), &policy(), late),
        Err(Error::NonceNotFound)
    ));
    let (_, _, other_nonce) = pending();
    assert!(matches!(
        record.authorize(&authorization(&other_nonce, None), &policy(), NOW),
        Err(Error::NonceNotFound)
    ));
}

#[test]
fn expires_at_must_lie_between_now_and_the_maximum_lifespan() {
    let (record, _, nonce) = pending();
    for (at, ok) in [
        (NOW, false),
        (NOW.plus(Duration::from_secs(1)), true),
        (NOW.plus(policy().max_lifespan), true),
        (
            NOW.plus(policy().max_lifespan + Duration::from_millis(1)),
            false,
        ),
    ] {
        let result = record.authorize(&authorization(&nonce, Some(at)), &policy(), NOW);
        assert_eq!(result.is_ok(), ok, "expires_at {at}");
    }
}

#[test]
fn sessions_expire_and_revoke() {
    let (record, key, nonce) = pending();
    let active = record
        .authorize(&authorization(&nonce, None), &policy(), NOW)
        .expect("ok");
    let expiry = active.session.expires_at;
    assert!(
        active
            .authenticate(&key, expiry.plus(Duration::from_millis(0)))
            .is_err()
    );
    let revoked = active.revoke(&policy(), NOW).expect("revoked");
    assert!(revoked.authenticate(&key, NOW).is_err());
    assert!(
        revoked.revoke(&policy(), NOW).is_none(),
        "revoking twice changes nothing"
    );
    assert!(matches!(
        revoked.extend(Extension::new(None).expect("valid"), &policy(), NOW),
        Err(Error::SessionNotActive)
    ));
}

#[test]
fn extend_never_shortens_nor_passes_the_maximum() {
    let (record, _, nonce) = pending();
    let active = record
        .authorize(&authorization(&nonce, None), &policy(), NOW)
        .expect("ok");
    let short = Extension::new(Some(Duration::from_secs(60))).expect("valid");
    let same = active
        .extend(short, &policy(), NOW)
        .expect("allowed")
        .expect("extended");
    assert_eq!(same.session.expires_at, active.session.expires_at);
    let too_long =
        Extension::new(Some(policy().max_lifespan + Duration::from_secs(1))).expect("valid");
    assert!(matches!(
        active.extend(too_long, &policy(), NOW),
        Err(Error::InvalidField { .. })
    ));
}

#[test]
fn extend_waits_for_the_earliest_possible_extend_window() {
    let hour = Duration::from_secs(3600);
    let policy = SessionPolicy {
        earliest_possible_extend: Some(hour),
        ..policy()
    };
    let (record, _, nonce) = pending();
    // Authorized for 24 hours: expires in 24 h at NOW.
    let active = record
        .authorize(&authorization(&nonce, None), &policy, NOW)
        .expect("ok");
    let expiry = active.session.expires_at;
    let extension = Extension::new(None).expect("valid");
    let check = |now: Timestamp, extended: bool| {
        let next = active.extend(extension, &policy, now).expect("allowed");
        assert_eq!(next.is_some(), extended, "at {now}");
        if let Some(next) = next {
            assert_eq!(next.session.expires_at, now.plus(policy.default_lifespan));
        }
    };
    check(NOW, false);
    check(Timestamp::from_unix_ms(expiry.unix_ms() - 3_600_001), false);
    check(Timestamp::from_unix_ms(expiry.unix_ms() - 3_600_000), true);
    check(Timestamp::from_unix_ms(expiry.unix_ms() - 1), true);
}

#[test]
fn session_ids_parse_only_in_canonical_form() {
    let id = SessionId::generate(&mut UnwrapErr(SysRng));
    assert_eq!(id.to_string().parse::<SessionId>().ok(), Some(id));
    for text in [
        "",
        "sess_",
        "sess_ABCDEF00000000000000000000000000",
        "sess_00",
        "x_00000000000000000000000000000000",
    ] {
        assert!(text.parse::<SessionId>().is_err(), "{text}");
    }
}

#[test]
fn records_stored_before_assurance_levels_read_as_aal1() {
    let (record, _, nonce) = pending();
    let authorized = record
        .authorize(&authorization(&nonce, None), &policy(), NOW)
        .expect("authorized");
    let mut json = serde_json::to_value(&authorized).expect("serializes");
    json["session"]
        .as_object_mut()
        .expect("an object")
        .remove("assurance_level")
        .expect("the field is written");
    let read: SessionRecord = serde_json::from_value(json).expect("still reads");
    assert_eq!(read.session.assurance_level, AssuranceLevel::Aal1);
}

#[test]
fn a_revoked_session_is_kept_for_the_retention_at_most_until_expiry() {
    let (record, _, nonce) = pending();
    let active = record
        .authorize(&authorization(&nonce, None), &policy(), NOW)
        .expect("ok");
    let expiry = active.session.expires_at;
    assert_eq!(active.evict_at(), expiry);
    let hour = Duration::from_secs(3600);
    let short = SessionPolicy {
        revoked_retention: hour,
        ..policy()
    };
    let revoked = active.revoke(&short, NOW).expect("revoked");
    assert_eq!(revoked.evict_at(), NOW.plus(hour));
    let long = SessionPolicy {
        revoked_retention: Duration::from_secs(90 * 24 * 3600),
        ..policy()
    };
    let revoked = active.revoke(&long, NOW).expect("revoked");
    assert_eq!(revoked.evict_at(), expiry);
}
