use getrandom::{SysRng, rand_core::UnwrapErr};

use super::*;

fn session_id() -> SessionId {
    SessionId::generate(&mut UnwrapErr(SysRng))
}

#[test]
fn session_key_round_trips_and_keeps_its_session() {
    let id = session_id();
    let key = SessionKey::generate(id, &mut UnwrapErr(SysRng));
    let text = key.expose();
    assert!(text.starts_with("sigil_sk_"));
    assert_eq!(text.len(), "sigil_sk_".len() + 70);
    let parsed = SessionKey::parse(&text).expect("parses");
    assert_eq!(parsed.session_id(), id);
    assert!(parsed.hash().matches(&key.hash()));
}

#[test]
fn nonce_round_trips() {
    let nonce = Nonce::generate(session_id(), &mut UnwrapErr(SysRng));
    let text = nonce.expose();
    assert_eq!(text.len(), "sigil_nonce_".len() + 48);
    assert!(
        Nonce::parse(&text)
            .expect("parses")
            .hash()
            .matches(&nonce.hash())
    );
}

#[test]
fn damaged_or_foreign_strings_do_not_parse() {
    let key = SessionKey::generate(session_id(), &mut UnwrapErr(SysRng)).expose();
    let nonce = Nonce::generate(session_id(), &mut UnwrapErr(SysRng)).expose();
    let mut flipped = key.clone().into_bytes();
    flipped[30] = if flipped[30] == b'a' { b'b' } else { b'a' };
    let check =
        |text: &str, parses: bool| assert_eq!(SessionKey::parse(text).is_some(), parses, "{text}");
    check(&key, true);
    check(&String::from_utf8(flipped).expect("ascii"), false);
    check(&key[..key.len() - 1], false);
    check(&format!("{key}A"), false);
    check(&key.replace("sigil_sk_", "sigil_xx_"), false);
    check(&nonce, false);
    check("", false);
    check("sigil_sk_", false);
    check(&format!("sigil_sk_{}", "!".repeat(70)), false);
    assert!(Nonce::parse(&key).is_none());
}

#[test]
fn debug_output_never_shows_a_secret() {
    let key = SessionKey::generate(session_id(), &mut UnwrapErr(SysRng));
    let text = key.expose();
    let debug = format!("{key:?}");
    assert!(debug.contains("[redacted]"));
    assert!(!debug.contains(&text["sigil_sk_".len()..]));
    let admin = AdminKey::from_configured("a-very-long-admin-key-0123456789").expect("valid");
    assert!(!format!("{admin:?}").contains("admin-key"));
}

#[test]
fn admin_keys_need_length_and_match_exactly() {
    assert!(AdminKey::from_configured("short").is_err());
    assert!(AdminKey::from_configured("has a space in it 0123456789").is_err());
    let key = AdminKey::from_configured("a-very-long-admin-key-0123456789").expect("valid");
    assert!(key.matches("a-very-long-admin-key-0123456789"));
    assert!(!key.matches("a-very-long-admin-key-012345678"));
    let generated = AdminKey::generate_text(&mut UnwrapErr(SysRng));
    assert!(generated.starts_with("sigil_admin_"));
    assert!(AdminKey::from_configured(&generated).is_ok());
}

#[test]
fn secret_hash_serializes_as_hex() {
    let hash = SecretHash::of(b"secret");
    let json = serde_json::to_string(&hash).expect("serializes");
    assert_eq!(json.len(), 66);
    let back: SecretHash = serde_json::from_str(&json).expect("deserializes");
    assert!(back.matches(&hash));
}
