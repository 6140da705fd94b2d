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

fn signed(key: &SigningKey, typ: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(key.algorithm.jwt());
    header.kid = Some(key.kid.clone());
    header.typ = typ.map(str::to_owned);
    encode(&header, claims, key.encoding_key()).expect("signed")
}

#[test]
fn only_tokens_typed_jwt_are_accepted() {
    let secret = b"0123456789abcdef0123456789abcdef";
    let signing = SigningKey::hs256("hs256-t-x".into(), secret);
    let verifying = VerifyingKey::hs256("hs256-t-x".into(), secret);
    let claims = json!({"sub": "a", "exp": 1_800_000_060});
    for (typ, expected) in [
        (Some("JWT"), Ok(())),
        (Some("jwt"), Ok(())),
        (Some("at+jwt"), Err(TokenRejection::Malformed)),
        (Some("dpop+jwt"), Err(TokenRejection::Malformed)),
        (Some("JOSE"), Err(TokenRejection::Malformed)),
        (Some(""), Err(TokenRejection::Malformed)),
        (None, Err(TokenRejection::Malformed)),
    ] {
        let got = verify_signature(&signed(&signing, typ, &claims), &verifying).map(|_| ());
        assert_eq!(got, expected, "typ {typ:?}");
    }
    // A forgery is reported as one whatever its type.
    let other = SigningKey::hs256("hs256-t-x".into(), b"another secret, another key.....");
    assert_eq!(
        verify_signature(&signed(&other, Some("at+jwt"), &claims), &verifying).err(),
        Some(TokenRejection::BadSignature)
    );
}

#[test]
fn an_ec_key_whose_point_is_off_the_curve_verifies_nothing() {
    use getrandom::{SysRng, rand_core::UnwrapErr};
    use jsonwebtoken::jwk::AlgorithmParameters;

    let mut rng = UnwrapErr(SysRng);
    let master_key = crate::MasterKey::generate(&mut rng);
    let (key, stored) =
        SigningKey::generate(crate::SigningAlgorithm::ES256, NOW, &master_key, &mut rng)
            .expect("an ES256 key");
    let token = signed(
        &key,
        Some("JWT"),
        &json!({"sub": "a", "exp": 1_800_000_060}),
    );
    let genuine = stored.jwk().expect("a JWK");
    assert!(verify_signature(&token, &VerifyingKey::from_jwk(&genuine).expect("valid")).is_ok());
    let AlgorithmParameters::EllipticCurve(point) = &genuine.algorithm else {
        panic!("not an EC key: {genuine:?}");
    };
    let zero = URL_SAFE_NO_PAD.encode([0u8; 32]);
    let off_curve = [
        // y replaced by x: (x, x) is on P-256 with negligible probability.
        (point.x.clone(), point.x.clone()),
        // The point at infinity has no affine form; (0, 0) stands in for it.
        (zero.clone(), zero),
        // y one bit off.
        (point.x.clone(), {
            let mut y = URL_SAFE_NO_PAD.decode(&point.y).expect("base64");
            y[31] ^= 1;
            URL_SAFE_NO_PAD.encode(y)
        }),
        // Too short to be a P-256 coordinate.
        (point.x[..20].to_owned(), point.y.clone()),
    ];
    for (x, y) in off_curve {
        let mut jwk = genuine.clone();
        if let AlgorithmParameters::EllipticCurve(point) = &mut jwk.algorithm {
            point.x = x.clone();
            point.y = y.clone();
        }
        // Either the key is refused outright or it verifies nothing.
        if let Some(key) = VerifyingKey::from_jwk(&jwk) {
            assert!(
                verify_signature(&token, &key).is_err(),
                "({x}, {y}) verified a token"
            );
        }
    }
}
