use serde_json::json;

use super::*;

const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);
const SKEW: Duration = Duration::from_secs(5);

fn claims(value: serde_json::Value) -> Map<String, Value> {
    value.as_object().expect("object").clone()
}

fn check(
    value: serde_json::Value,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<VerifiedToken, TokenRejection> {
    check_claims(claims(value), NOW, SKEW, issuer, audience)
}

#[test]
fn times_are_checked_with_the_skew() {
    let now = 1_800_000_000_i64;
    let base = |exp: i64, nbf: i64| json!({"sub": "a", "exp": exp, "nbf": nbf, "iat": nbf});
    assert!(check(base(now + 60, now), None, None).is_ok());
    assert!(
        check(base(now - 4, now - 60), None, None).is_ok(),
        "expired within the skew"
    );
    assert_eq!(
        check(base(now - 5, now - 60), None, None).err(),
        Some(TokenRejection::Expired)
    );
    assert!(
        check(base(now + 60, now + 5), None, None).is_ok(),
        "early within the skew"
    );
    assert_eq!(
        check(base(now + 60, now + 6), None, None).err(),
        Some(TokenRejection::NotYetValid)
    );
    assert_eq!(
        check(json!({"sub": "a"}), None, None).err(),
        Some(TokenRejection::Malformed)
    );
    assert_eq!(
        check(json!({"exp": now + 60}), None, None).err(),
        Some(TokenRejection::Malformed)
    );
}

#[test]
fn issuer_and_audience_must_match_when_asked() {
    let exp = 1_800_000_060_i64;
    let token = json!({"sub": "a", "exp": exp, "iss": "me", "aud": ["x", "y"]});
    assert!(check(token.clone(), Some("me"), Some("y")).is_ok());
    assert_eq!(
        check(token.clone(), Some("you"), None).err(),
        Some(TokenRejection::WrongIssuer)
    );
    assert_eq!(
        check(token, None, Some("z")).err(),
        Some(TokenRejection::WrongAudience)
    );
    let single = json!({"sub": "a", "exp": exp, "aud": "x"});
    assert!(check(single.clone(), None, Some("x")).is_ok());
    assert_eq!(
        check(json!({"sub": "a", "exp": exp}), None, Some("x")).err(),
        Some(TokenRejection::WrongAudience)
    );
}
