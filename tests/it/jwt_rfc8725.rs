//! The rest of RFC 8725's negative matrix over VerifyToken: explicit typing,
//! EC signatures and keys that are not what they claim, `exp` and `nbf` at
//! the exact edges of the skew, and `aud`/`iss` in their other shapes.
//! (`alg: none`, RS/HS confusion, unknown `kid` and `jku`/`jwk`/`x5u` are in
//! `jwt.rs`.)
//!
//! Tokens here are signed with a real HS256 template's shared secret, as an
//! app holding that secret could: the signature is genuine, so only the
//! property under test can refuse them.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sigil_domain::Clock;
use sigil_proto::v1 as pb;
use tonic::Code;

use crate::{
    harness::{Harness, assert_error},
    jwt::{alice, put, template, token},
};

all_stores!(
    a_token_not_typed_jwt_is_rejected_though_signed,
    ec_signatures_and_keys_off_the_curve_are_rejected,
    exp_and_nbf_hold_exactly_to_the_skew_edges,
    audience_and_issuer_in_other_shapes_are_checked,
);

/// The template's skew (the default): `template()` leaves it unset.
const SKEW_MS: i64 = 5_000;

/// An HS256 template's secret and kid, and the claims of a real token.
struct Signer {
    secret: Vec<u8>,
    kid: String,
    claims: Value,
}

impl Signer {
    async fn new(h: &Harness) -> Signer {
        let (key, _) = alice(h).await;
        let secret = put(h, template("hs", pb::SigningAlgorithm::Hs256)).await;
        let minted = token(h, &key, "hs").await.jwt;
        let part = |index: usize| -> Value {
            let text = minted.split('.').nth(index).expect("three parts");
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64")).expect("JSON")
        };
        Signer {
            secret: URL_SAFE_NO_PAD.decode(secret).expect("base64 secret"),
            kid: part(0)["kid"].as_str().expect("a kid").to_owned(),
            claims: part(1),
        }
    }

    /// The real claims with `changes` merged in (`null` removes a claim),
    /// signed under the real kid with `typ`.
    fn sign(&self, typ: Option<&str>, changes: Value) -> String {
        let mut claims = self.claims.clone();
        for (name, value) in changes.as_object().expect("an object") {
            match value {
                Value::Null => claims.as_object_mut().expect("object").remove(name),
                value => claims
                    .as_object_mut()
                    .expect("object")
                    .insert(name.clone(), value.clone()),
            };
        }
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&self.secret))
            .expect("signed")
    }
}

fn verify(jwt: &str, audience: &str) -> pb::VerifyTokenRequest {
    pb::VerifyTokenRequest {
        jwt: jwt.into(),
        audience: audience.into(),
        ..Default::default()
    }
}

/// Moves the harness clock forward to exactly `unix_ms`.
fn set_clock(h: &Harness, unix_ms: i64) {
    let now = h.clock.now().unix_ms();
    assert!(unix_ms >= now, "the clock only moves forward");
    h.clock
        .advance(Duration::from_millis((unix_ms - now).unsigned_abs()));
}

async fn a_token_not_typed_jwt_is_rejected_though_signed(h: Harness) {
    let signer = Signer::new(&h).await;
    let mut validator = h.validator().await;
    for typ in [Some("JWT"), Some("jwt")] {
        let result = validator
            .verify_token(verify(&signer.sign(typ, json!({})), ""))
            .await;
        assert!(result.is_ok(), "{typ:?}: {result:?}");
    }
    // Explicit typing (RFC 8725 §3.11): a JWT of another kind, though
    // signed with a key Sigil trusts, is not one of Sigil's tokens.
    for typ in [
        Some("at+jwt"),
        Some("dpop+jwt"),
        Some("secevent+jwt"),
        Some("JOSE"),
        Some(""),
        None,
    ] {
        let result = validator
            .verify_token(verify(&signer.sign(typ, json!({})), ""))
            .await;
        assert_error(result, Code::Unauthenticated, "TOKEN_MALFORMED");
    }
}

async fn ec_signatures_and_keys_off_the_curve_are_rejected(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("ec", pb::SigningAlgorithm::Es256)).await;
    let minted = token(&h, &key, "ec").await.jwt;
    let (signing_input, signature) = minted.rsplit_once('.').expect("three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64");
    assert_eq!(signature.len(), 64, "ES256 signatures are r ‖ s");
    // The order n of P-256: r and s must lie in [1, n-1].
    let order = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let r = &signature[..32];
    let s = &signature[32..];
    let crafted: [(&str, Vec<u8>); 8] = [
        ("r = s = 0", vec![0; 64]),
        ("r = 0", [&[0u8; 32][..], s].concat()),
        ("s = 0", [r, &[0u8; 32][..]].concat()),
        ("r = s = n", [&order[..], &order[..]].concat()),
        ("r = n", [&order[..], s].concat()),
        ("r = s = 2^256 - 1", vec![0xff; 64]),
        ("one byte short", signature[..63].to_vec()),
        ("one byte long", [&signature[..], &[0]].concat()),
    ];
    let mut validator = h.validator().await;
    for (what, bytes) in crafted {
        let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes));
        let status = validator
            .verify_token(verify(&jwt, ""))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
    }

    // A `jwk` header holding a point off the curve, under the real kid and
    // under one of its own: the header's key is never used, so the token
    // fails as forged or as signed by an unknown key.
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(minted.split('.').next().expect("a header"))
            .expect("base64"),
    )
    .expect("JSON");
    let payload = minted.split('.').nth(1).expect("a payload");
    let off_curve = json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode([0u8; 32]),
        "y": URL_SAFE_NO_PAD.encode([0u8; 32]),
    });
    for (kid, reason) in [
        (header["kid"].clone(), "TOKEN_BAD_SIGNATURE"),
        (json!("attacker-ec"), "TOKEN_UNKNOWN_KEY"),
    ] {
        let forged_header = json!({"alg": "ES256", "typ": "JWT", "kid": kid, "jwk": off_curve});
        let jwt = format!(
            "{}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(forged_header.to_string()),
            URL_SAFE_NO_PAD.encode(vec![0u8; 64])
        );
        let result = validator.verify_token(verify(&jwt, "")).await;
        assert_error(result, Code::Unauthenticated, reason);
    }
    assert!(validator.verify_token(verify(&minted, "")).await.is_ok());
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}

async fn exp_and_nbf_hold_exactly_to_the_skew_edges(h: Harness) {
    let signer = Signer::new(&h).await;
    let mut validator = h.validator().await;
    // Whole seconds ahead of the clock, so the edges fall where chosen.
    let base = h.clock.now().unix_ms().div_euclid(1000) + 10;
    let not_before = base + 100;
    let early = signer.sign(
        Some("JWT"),
        json!({"nbf": not_before, "iat": not_before, "exp": base + 1000}),
    );
    let expires = base + 200;
    let late = signer.sign(
        Some("JWT"),
        json!({"nbf": base, "iat": base, "exp": expires}),
    );

    // `nbf`: usable from nbf - skew on; a second before that it is not.
    set_clock(&h, not_before * 1000 - SKEW_MS - 1000);
    let result = validator.verify_token(verify(&early, "")).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_NOT_YET_VALID");
    set_clock(&h, not_before * 1000 - SKEW_MS - 1);
    let result = validator.verify_token(verify(&early, "")).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_NOT_YET_VALID");
    set_clock(&h, not_before * 1000 - SKEW_MS);
    assert!(validator.verify_token(verify(&early, "")).await.is_ok());
    set_clock(&h, not_before * 1000 - SKEW_MS + 1000);
    assert!(validator.verify_token(verify(&early, "")).await.is_ok());

    // `exp`: usable until exp + skew, not at it or after.
    set_clock(&h, expires * 1000 + SKEW_MS - 1000);
    assert!(validator.verify_token(verify(&late, "")).await.is_ok());
    set_clock(&h, expires * 1000 + SKEW_MS - 1);
    assert!(validator.verify_token(verify(&late, "")).await.is_ok());
    set_clock(&h, expires * 1000 + SKEW_MS);
    let result = validator.verify_token(verify(&late, "")).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_EXPIRED");
    set_clock(&h, expires * 1000 + SKEW_MS + 1000);
    let result = validator.verify_token(verify(&late, "")).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_EXPIRED");
}

async fn audience_and_issuer_in_other_shapes_are_checked(h: Harness) {
    let signer = Signer::new(&h).await;
    let mut validator = h.validator().await;
    let asked = "shop.example";
    let accepted = [
        json!({"aud": asked}),
        json!({"aud": ["other.example", asked]}),
    ];
    for changes in accepted {
        let jwt = signer.sign(Some("JWT"), changes.clone());
        let result = validator.verify_token(verify(&jwt, asked)).await;
        assert!(result.is_ok(), "{changes}: {result:?}");
    }
    let wrong_audience = [
        json!({"aud": null}),
        json!({"aud": []}),
        json!({"aud": ["other.example"]}),
        json!({"aud": "SHOP.EXAMPLE"}),
        json!({"aud": "shop.example "}),
        json!({"aud": [["shop.example"]]}),
        json!({"aud": {"shop.example": true}}),
    ];
    for changes in wrong_audience {
        let jwt = signer.sign(Some("JWT"), changes);
        let result = validator.verify_token(verify(&jwt, asked)).await;
        assert_error(result, Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE");
    }
    // The template names its issuer, so `iss` must be exactly that.
    let wrong_issuer = [
        json!({"iss": null}),
        json!({"iss": "https://sigil.example/"}),
        json!({"iss": "HTTPS://SIGIL.EXAMPLE"}),
        json!({"iss": ["https://sigil.example"]}),
        json!({"iss": "https://evil.example"}),
    ];
    for changes in wrong_issuer {
        let jwt = signer.sign(Some("JWT"), changes);
        let result = validator.verify_token(verify(&jwt, "")).await;
        assert_error(result, Code::Unauthenticated, "TOKEN_WRONG_ISSUER");
    }
}
