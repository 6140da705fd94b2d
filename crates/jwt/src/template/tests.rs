use std::collections::BTreeMap;

use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{Permission, SessionId, SessionState, Subject};

use super::*;

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);

fn limits() -> TemplateLimits {
    TemplateLimits {
        max_lifetime: Duration::from_secs(3600),
    }
}

fn spec(claims: &str) -> Result<TemplateSpec> {
    TemplateSpec::new(
        "t",
        claims,
        None,
        "",
        "",
        None,
        SigningAlgorithm::EdDSA,
        &limits(),
    )
}

fn session() -> Session {
    Session {
        id: SessionId::from_bytes([7; 16]),
        subject: Subject::parse_optional("alice", "subject").expect("valid"),
        state: SessionState::Active,
        permissions: vec![Permission::parse("a:b", &"p".into()).expect("valid")],
        rules: vec![],
        metadata: BTreeMap::from([("role".to_owned(), "admin".to_owned())]),
        created_at: NOW,
        authorized_at: Some(NOW),
        expires_at: Timestamp::from_unix_ms(1_800_000_600_500),
        revoked_at: None,
        assurance_level: sigil_domain::AssuranceLevel::Aal1,
    }
}

fn render_one(value: &str) -> Value {
    let claims = format!(
        r#"{{"v": {}}}"#,
        serde_json::to_string(value).expect("json")
    );
    let master = MasterKey::generate(&mut UnwrapErr(SysRng));
    let (stored, _) =
        spec(&claims)
            .expect("valid")
            .into_stored(None, NOW, &master, &mut UnwrapErr(SysRng));
    stored.render_claims(&session())["v"].clone()
}

#[test]
fn shortcodes_render_with_their_types() {
    let check =
        |template: &str, expected: Value| assert_eq!(render_one(template), expected, "{template}");
    check(
        "{{session.id}}",
        Value::from("sess_07070707070707070707070707070707"),
    );
    check("{{session.subject}}", Value::from("alice"));
    check("{{ session.permissions }}", serde_json::json!(["a:b"]));
    check("{{session.expires_at}}", Value::from(1_800_000_600_i64));
    check("{{session.metadata.role}}", Value::from("admin"));
    check("{{session.metadata.none}}", Value::Null);
    check(
        "role={{session.metadata.role}};p={{session.permissions}}",
        Value::from("role=admin;p=a:b"),
    );
    check("no codes", Value::from("no codes"));
}

#[test]
fn bad_claims_are_refused() {
    for claims in [
        "[1]",
        "{",
        r#"{"exp": 1}"#,
        r#"{"tpl": "x"}"#,
        r#"{"a": "{{session.secret}}"}"#,
        r#"{"a": "{{session.metadata.}}"}"#,
        r#"{"a": {"b": ["{{x}}"]}}"#,
        r#"{"a": "{{session.id"}"#,
    ] {
        assert!(
            matches!(spec(claims), Err(Error::InvalidField { ref field, .. }) if field.as_str() == "claims"),
            "{claims}"
        );
    }
    assert!(spec("").is_ok());
}

#[test]
fn hs256_secret_is_made_once_and_kept() {
    let master = MasterKey::generate(&mut UnwrapErr(SysRng));
    let hs = TemplateSpec::new(
        "shop",
        "{}",
        None,
        "",
        "",
        None,
        SigningAlgorithm::HS256,
        &limits(),
    )
    .expect("valid");
    let (first, secret) = hs
        .clone()
        .into_stored(None, NOW, &master, &mut UnwrapErr(SysRng));
    assert_eq!(secret.map(|secret| secret.len()), Some(32));
    let (again, none) = hs.into_stored(Some(&first), NOW, &master, &mut UnwrapErr(SysRng));
    assert!(none.is_none());
    assert_eq!(again.sealed_secret, first.sealed_secret);
    assert!(again.hs256_verifying_key(&master).is_some());
    let other = MasterKey::generate(&mut UnwrapErr(SysRng));
    assert!(
        again.hs256_verifying_key(&other).is_none(),
        "another master key opens nothing"
    );
}
