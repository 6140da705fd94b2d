//! JWTs: templates with shortcodes, GetToken, VerifyToken for every
//! algorithm, rotation, replay protection, and attacks on the format.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use prost_types::{Struct, value::Kind};
use sigil_proto::v1 as pb;
use tonic::Code;

use crate::harness::{Harness, admin, assert_error, assert_invalid, eventually, with_bearer};

all_stores!(
    every_algorithm_round_trips_with_rendered_claims,
    bad_templates_are_invalid_argument,
    get_token_needs_an_active_session_and_a_known_template,
    token_never_outlives_its_session,
    forged_tokens_are_rejected_with_a_reason,
    expired_token_is_rejected,
    audience_and_issuer_are_checked,
    consumed_jti_cannot_be_replayed,
    check_session_rejects_tokens_of_revoked_sessions,
    who_am_i_tokenizes_the_session,
    rotated_key_verifies_until_its_tokens_expire,
    deleting_a_template_stops_its_tokens,
    template_crud_lists_and_gets,
    keys_named_in_the_header_are_never_trusted,
);

pub(crate) fn json(value: serde_json::Value) -> Struct {
    sigil_proto::jwt::json_to_struct(value.as_object().expect("an object"))
}

pub(crate) fn template(name: &str, algorithm: pb::SigningAlgorithm) -> pb::TokenTemplate {
    pb::TokenTemplate {
        name: name.into(),
        claims: Some(json(serde_json::json!({
            "perms": "{{session.permissions}}",
            "greeting": "hello {{session.subject}} on {{session.metadata.device}}",
            "device": "{{session.metadata.device}}",
            "missing": "{{session.metadata.nope}}",
            "session_expiry": "{{session.expires_at}}",
            "nested": {"id": "{{ session.id }}", "list": ["{{session.subject}}", 7]},
            "plain": 5,
        }))),
        audience: "shop.example".into(),
        issuer: "https://sigil.example".into(),
        algorithm: algorithm.into(),
        ..Default::default()
    }
}

/// Puts a template; returns the HS256 shared secret, if one was made.
pub(crate) async fn put(h: &Harness, template: pb::TokenTemplate) -> String {
    h.issuer()
        .await
        .put_token_template(admin(pb::PutTokenTemplateRequest {
            template: Some(template),
        }))
        .await
        .expect("template put")
        .into_inner()
        .shared_secret
}

/// An active session of `alice` on a laptop, and its key.
pub(crate) async fn alice(h: &Harness) -> (String, pb::Session) {
    let mut issuer = h.issuer().await;
    let created = issuer
        .create_session(pb::CreateSessionRequest {
            subject: "alice".into(),
            metadata: [("device".to_owned(), "laptop".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let session = issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce,
            permissions: vec!["orders:read".into(), "orders:write".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    (created.session_key, session)
}

pub(crate) async fn token(h: &Harness, session_key: &str, template: &str) -> pb::GetTokenResponse {
    h.issuer()
        .await
        .get_token(pb::GetTokenRequest {
            session_token: session_key.into(),
            template: template.into(),
            ..Default::default()
        })
        .await
        .expect("token minted")
        .into_inner()
}

/// The `kid` in `jwt`'s header.
fn kid_of(jwt: &str) -> String {
    let header = URL_SAFE_NO_PAD
        .decode(jwt.split('.').next().expect("a header"))
        .expect("base64url");
    let header: serde_json::Value = serde_json::from_slice(&header).expect("JSON");
    header["kid"].as_str().expect("a kid").to_owned()
}

/// An issuer keeps minting with the active key it last read for a few
/// seconds (no key read per token); a rotation by another issuer reaches
/// it within that, and tokens of either key verify meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_issuers_rotation_is_signed_with_within_seconds() {
    let h = Harness::redis().await;
    let other = h.another_on_same_redis().await;
    let (key, _) = alice(&h).await;
    put(&h, template("rot", pb::SigningAlgorithm::Eddsa)).await;
    let before = token(&h, &key, "rot").await.jwt;
    let rotated = other
        .issuer()
        .await
        .rotate_signing_key(admin(pb::RotateSigningKeyRequest {
            algorithm: pb::SigningAlgorithm::Eddsa.into(),
        }))
        .await
        .expect("rotated")
        .into_inner();
    assert_eq!(rotated.retired_kids, [kid_of(&before)]);
    let new_kid = rotated.key.expect("the new key").kid;
    let mut validator = other.validator().await;
    eventually("the first issuer signs with the rotated key", || async {
        let jwt = token(&h, &key, "rot").await.jwt;
        assert!(validator.clone().verify_token(verify(&jwt)).await.is_ok());
        kid_of(&jwt) == new_kid
    })
    .await;
    assert!(validator.verify_token(verify(&before)).await.is_ok());
}

fn verify(jwt: &str) -> pb::VerifyTokenRequest {
    pb::VerifyTokenRequest {
        jwt: jwt.into(),
        ..Default::default()
    }
}

fn claim<'a>(claims: &'a Struct, name: &str) -> &'a Kind {
    claims.fields[name].kind.as_ref().unwrap()
}

fn text(kind: &Kind) -> &str {
    match kind {
        Kind::StringValue(text) => text,
        other => panic!("not a string: {other:?}"),
    }
}

async fn every_algorithm_round_trips_with_rendered_claims(h: Harness) {
    let (key, session) = alice(&h).await;
    let mut validator = h.validator().await;
    for (name, algorithm) in [
        ("eddsa", pb::SigningAlgorithm::Eddsa),
        ("es256", pb::SigningAlgorithm::Es256),
        ("rs256", pb::SigningAlgorithm::Rs256),
        ("hs256", pb::SigningAlgorithm::Hs256),
        ("default", pb::SigningAlgorithm::Unspecified),
    ] {
        let secret = put(&h, template(name, algorithm)).await;
        assert_eq!(
            secret.is_empty(),
            algorithm != pb::SigningAlgorithm::Hs256,
            "{name}"
        );
        let minted = token(&h, &key, name).await;
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(minted.jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let expected_alg = match algorithm {
            pb::SigningAlgorithm::Unspecified => "EdDSA".to_owned(),
            other => other
                .as_str_name()
                .trim_start_matches("SIGNING_ALGORITHM_")
                .replace("EDDSA", "EdDSA"),
        };
        assert_eq!(header["alg"], expected_alg.as_str(), "{name}");
        assert!(header["kid"].as_str().is_some_and(|kid| !kid.is_empty()));

        let verified = validator
            .verify_token(pb::VerifyTokenRequest {
                audience: "shop.example".into(),
                ..verify(&minted.jwt)
            })
            .await
            .unwrap_or_else(|status| panic!("{name}: {status:?}"))
            .into_inner();
        assert_eq!(verified.subject, "alice");
        assert_eq!(verified.session_id, session.id);
        assert_eq!(verified.expires_at, minted.expires_at);
        let claims = verified.claims.unwrap();
        match claim(&claims, "perms") {
            Kind::ListValue(list) => assert_eq!(list.values.len(), 2),
            other => panic!("perms is {other:?}"),
        }
        assert_eq!(text(claim(&claims, "greeting")), "hello alice on laptop");
        assert_eq!(text(claim(&claims, "device")), "laptop");
        assert!(matches!(claim(&claims, "missing"), Kind::NullValue(_)));
        assert!(
            matches!(claim(&claims, "session_expiry"), Kind::NumberValue(n) if *n as i64 == session.expires_at.unwrap().seconds)
        );
        let Kind::StructValue(nested) = claim(&claims, "nested") else {
            panic!("nested is not an object");
        };
        assert_eq!(text(claim(nested, "id")), session.id);
        assert_eq!(text(claim(&claims, "iss")), "https://sigil.example");
        assert_eq!(text(claim(&claims, "aud")), "shop.example");
        assert_eq!(text(claim(&claims, "sid")), session.id);
        assert!(!text(claim(&claims, "jti")).is_empty());
        for time in ["iat", "nbf", "exp"] {
            assert!(
                matches!(claim(&claims, time), Kind::NumberValue(_)),
                "{time}"
            );
        }
    }
    // An admin mints by session id, with no session key.
    let by_id = h
        .issuer()
        .await
        .get_token(admin(pb::GetTokenRequest {
            session_id: session.id.clone(),
            template: "eddsa".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(validator.verify_token(verify(&by_id.jwt)).await.is_ok());
}

async fn bad_templates_are_invalid_argument(h: Harness) {
    let mut issuer = h.issuer().await;
    let good = template("good", pb::SigningAlgorithm::Eddsa);
    let with_claims = |claims: serde_json::Value| pb::TokenTemplate {
        claims: Some(json(claims)),
        ..good.clone()
    };
    let seconds = |seconds| Some(prost_types::Duration { seconds, nanos: 0 });
    let cases = [
        (
            pb::TokenTemplate {
                name: "Bad Name".into(),
                ..good.clone()
            },
            "template.name",
        ),
        (
            pb::TokenTemplate {
                name: String::new(),
                ..good.clone()
            },
            "template.name",
        ),
        (
            pb::TokenTemplate {
                name: "x".repeat(65),
                ..good.clone()
            },
            "template.name",
        ),
        (
            with_claims(serde_json::json!({"a": "{{session.password}}"})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"a": "{{session.id"})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"a": ["{{nope}}"]})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"exp": 1})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"iss": "me"})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"jti": "x"})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"sid": "x"})),
            "template.claims",
        ),
        (
            with_claims(serde_json::json!({"big": "x".repeat(17 * 1024)})),
            "template.claims",
        ),
        (
            pb::TokenTemplate {
                lifetime: seconds(0),
                ..good.clone()
            },
            "template.lifetime",
        ),
        (
            pb::TokenTemplate {
                lifetime: seconds(7200),
                ..good.clone()
            },
            "template.lifetime",
        ),
        (
            pb::TokenTemplate {
                allowed_clock_skew: seconds(301),
                ..good.clone()
            },
            "template.allowed_clock_skew",
        ),
        (
            pb::TokenTemplate {
                algorithm: 99,
                ..good.clone()
            },
            "template.algorithm",
        ),
        (
            pb::TokenTemplate {
                issuer: "a\nb".into(),
                ..good.clone()
            },
            "template.issuer",
        ),
    ];
    for (template, field) in cases {
        let result = issuer
            .put_token_template(admin(pb::PutTokenTemplateRequest {
                template: Some(template),
            }))
            .await;
        assert_invalid(result, field);
    }
    let missing = issuer
        .put_token_template(admin(pb::PutTokenTemplateRequest { template: None }))
        .await;
    assert_invalid(missing, "template");
    // Nothing was stored by any of them.
    let listed = issuer
        .list_token_templates(admin(pb::ListTokenTemplatesRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.templates.is_empty());
    let rotate = issuer
        .rotate_signing_key(admin(pb::RotateSigningKeyRequest {
            algorithm: pb::SigningAlgorithm::Hs256.into(),
        }))
        .await;
    assert_invalid(rotate, "algorithm");
}

async fn get_token_needs_an_active_session_and_a_known_template(h: Harness) {
    put(&h, template("t", pb::SigningAlgorithm::Eddsa)).await;
    let mut issuer = h.issuer().await;
    let pending = issuer
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let by_key = |key: &str, template: &str| pb::GetTokenRequest {
        session_token: key.into(),
        template: template.into(),
        ..Default::default()
    };
    let result = issuer.get_token(by_key(&pending.session_key, "t")).await;
    assert_error(result, Code::Unauthenticated, "SESSION_INVALID");
    let result = issuer
        .get_token(admin(pb::GetTokenRequest {
            session_id: pending.session_id.clone(),
            template: "t".into(),
            ..Default::default()
        }))
        .await;
    assert_error(result, Code::FailedPrecondition, "SESSION_NOT_ACTIVE");
    // By id without an admin key.
    let result = issuer
        .get_token(pb::GetTokenRequest {
            session_id: pending.session_id,
            template: "t".into(),
            ..Default::default()
        })
        .await;
    assert_error(result, Code::Unauthenticated, "ADMIN_KEY_MISSING");
    let (key, _) = alice(&h).await;
    let result = issuer.get_token(by_key(&key, "nope")).await;
    assert_error(result, Code::NotFound, "TEMPLATE_NOT_FOUND");
    let result = issuer.get_token(by_key(&key, "Bad Name")).await;
    assert_invalid(result, "template");
    // The session key may also come as `x-session-token`.
    let mut request = tonic::Request::new(pb::GetTokenRequest {
        template: "t".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-session-token", key.parse().unwrap());
    assert!(issuer.get_token(request).await.is_ok());
}

async fn token_never_outlives_its_session(h: Harness) {
    put(
        &h,
        pb::TokenTemplate {
            lifetime: Some(prost_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
            ..template("long", pb::SigningAlgorithm::Eddsa)
        },
    )
    .await;
    let mut issuer = h.issuer().await;
    let created = issuer
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let now = sigil_domain::Clock::now(h.clock.as_ref()).unix_ms() / 1000;
    let session = issuer
        .authorize_session(admin(pb::AuthorizeSessionRequest {
            nonce: created.nonce,
            permissions: vec!["p".into()],
            expires_at: Some(prost_types::Timestamp {
                seconds: now + 30,
                nanos: 0,
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    let minted = token(&h, &created.session_key, "long").await;
    assert!(minted.expires_at.unwrap().seconds <= session.expires_at.unwrap().seconds);
}

async fn forged_tokens_are_rejected_with_a_reason(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("ed", pb::SigningAlgorithm::Eddsa)).await;
    put(&h, template("rs", pb::SigningAlgorithm::Rs256)).await;
    let minted = token(&h, &key, "ed").await.jwt;
    let rs = token(&h, &key, "rs").await.jwt;
    let mut validator = h.validator().await;
    let parts: Vec<&str> = minted.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    let encode = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());

    // The payload changed, the signature kept.
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = "mallory".into();
    let tampered = format!("{}.{}.{}", parts[0], encode(payload.clone()), parts[2]);
    // `alg: none` with the real kid and no signature: not even a JWT Sigil
    // would parse.
    let none = format!(
        "{}.{}.",
        encode(serde_json::json!({"alg": "none", "kid": kid})),
        parts[1]
    );
    // HS256 under the EdDSA key's kid, keyed with its public key: the
    // classic confusion attack.
    let jwks = h
        .issuer()
        .await
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let public_x = jwks
        .keys
        .iter()
        .find(|jwk| jwk.kid == kid)
        .unwrap()
        .x
        .clone();
    let confused_header = encode(serde_json::json!({"alg": "HS256", "kid": kid, "typ": "JWT"}));
    let signing_input = format!("{confused_header}.{}", parts[1]);
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_x.as_bytes()),
        signing_input.as_bytes(),
    );
    let confused = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    // A real RS256 signature presented under the EdDSA key's kid.
    let rs_parts: Vec<&str> = rs.split('.').collect();
    let swapped_key = format!(
        "{}.{}.{}",
        encode(serde_json::json!({"alg": "RS256", "kid": kid})),
        rs_parts[1],
        rs_parts[2]
    );
    let unknown_kid = format!(
        "{}.{}.{}",
        encode(serde_json::json!({"alg": "EdDSA", "kid": "eddsa-unknown"})),
        parts[1],
        parts[2]
    );

    for (jwt, reason) in [
        (tampered.as_str(), "TOKEN_BAD_SIGNATURE"),
        (none.as_str(), "TOKEN_MALFORMED"),
        (confused.as_str(), "TOKEN_BAD_SIGNATURE"),
        (swapped_key.as_str(), "TOKEN_BAD_SIGNATURE"),
        (unknown_kid.as_str(), "TOKEN_UNKNOWN_KEY"),
        ("not.a.jwt", "TOKEN_MALFORMED"),
        ("", "TOKEN_MALFORMED"),
    ] {
        let result = validator.verify_token(verify(jwt)).await;
        let status = assert_error(result, Code::Unauthenticated, reason);
        assert!(
            !status.message().contains(kid),
            "no key material in {status:?}"
        );
    }
    // The real token still verifies.
    assert!(validator.verify_token(verify(&minted)).await.is_ok());
}

async fn expired_token_is_rejected(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("short", pb::SigningAlgorithm::Es256)).await;
    let minted = token(&h, &key, "short").await.jwt;
    let mut validator = h.validator().await;
    // Inside the skew (60 s lifetime + 5 s) it still verifies.
    h.clock.advance(Duration::from_secs(63));
    assert!(validator.verify_token(verify(&minted)).await.is_ok());
    h.clock.advance(Duration::from_secs(3));
    let result = validator.verify_token(verify(&minted)).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_EXPIRED");
}

async fn audience_and_issuer_are_checked(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("aud", pb::SigningAlgorithm::Eddsa)).await;
    let minted = token(&h, &key, "aud").await.jwt;
    let mut validator = h.validator().await;
    let result = validator
        .verify_token(pb::VerifyTokenRequest {
            audience: "other.example".into(),
            ..verify(&minted)
        })
        .await;
    assert_error(result, Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE");
    // The template's issuer changes: old tokens no longer match it.
    put(
        &h,
        pb::TokenTemplate {
            issuer: "https://elsewhere.example".into(),
            ..template("aud", pb::SigningAlgorithm::Eddsa)
        },
    )
    .await;
    let result = validator.verify_token(verify(&minted)).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_WRONG_ISSUER");
}

async fn consumed_jti_cannot_be_replayed(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("once", pb::SigningAlgorithm::Hs256)).await;
    let minted = token(&h, &key, "once").await.jwt;
    let mut validator = h.validator().await;
    let once = || pb::VerifyTokenRequest {
        consume_jti: true,
        ..verify(&minted)
    };
    assert!(validator.verify_token(once()).await.is_ok());
    let result = validator.verify_token(once()).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_REPLAYED");
    // Without consume_jti it is an ordinary, still valid token.
    assert!(validator.verify_token(verify(&minted)).await.is_ok());
}

async fn check_session_rejects_tokens_of_revoked_sessions(h: Harness) {
    let (key, session) = alice(&h).await;
    put(&h, template("s", pb::SigningAlgorithm::Eddsa)).await;
    let minted = token(&h, &key, "s").await.jwt;
    let mut validator = h.validator().await;
    let checked = || pb::VerifyTokenRequest {
        check_session: true,
        ..verify(&minted)
    };
    assert!(validator.verify_token(checked()).await.is_ok());
    h.issuer()
        .await
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: session.id,
        }))
        .await
        .unwrap();
    let result = validator.verify_token(checked()).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_SESSION_INACTIVE");
    // A plain verification trusts the token until it expires: that is the
    // price of skipping the store.
    assert!(validator.verify_token(verify(&minted)).await.is_ok());
}

async fn who_am_i_tokenizes_the_session(h: Harness) {
    let (key, session) = alice(&h).await;
    put(&h, template("kratos", pb::SigningAlgorithm::Eddsa)).await;
    let mut validator = h.validator().await;
    let who = validator
        .who_am_i(with_bearer(
            pb::WhoAmIRequest {
                tokenize_as: "kratos".into(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.session.unwrap().id, session.id);
    let verified = validator
        .verify_token(verify(&who.tokenized))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(verified.session_id, session.id);
    let plain = validator
        .who_am_i(with_bearer(pb::WhoAmIRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    assert!(plain.tokenized.is_empty());
    let result = validator
        .who_am_i(with_bearer(
            pb::WhoAmIRequest {
                tokenize_as: "nope".into(),
                ..Default::default()
            },
            &key,
        ))
        .await;
    assert_error(result, Code::NotFound, "TEMPLATE_NOT_FOUND");
}

async fn rotated_key_verifies_until_its_tokens_expire(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("rot", pb::SigningAlgorithm::Eddsa)).await;
    let mut issuer = h.issuer().await;
    let mut validator = h.validator().await;
    let old = token(&h, &key, "rot").await.jwt;
    let rotated = issuer
        .rotate_signing_key(admin(pb::RotateSigningKeyRequest {
            algorithm: pb::SigningAlgorithm::Eddsa.into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rotated.retired_kids.len(), 1);
    let new_kid = rotated.key.unwrap().kid;
    let new = token(&h, &key, "rot").await.jwt;
    assert!(new_kid != rotated.retired_kids[0]);
    // The process that rotated signs with the new key at once.
    assert_eq!(kid_of(&old), rotated.retired_kids[0]);
    assert_eq!(kid_of(&new), new_kid);
    // Tokens in flight under the old key and new ones under the new key.
    assert!(validator.verify_token(verify(&old)).await.is_ok());
    assert!(validator.verify_token(verify(&new)).await.is_ok());
    let kids =
        |jwks: pb::GetJwksResponse| jwks.keys.into_iter().map(|jwk| jwk.kid).collect::<Vec<_>>();
    let published = kids(
        issuer
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(published.contains(&rotated.retired_kids[0]) && published.contains(&new_kid));
    // Past the longest token lifetime plus skew, the old key leaves.
    h.clock.advance(Duration::from_secs(3600 + 301));
    let published = kids(
        issuer
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(published, [new_kid]);
}

async fn deleting_a_template_stops_its_tokens(h: Harness) {
    let (key, _) = alice(&h).await;
    put(&h, template("gone", pb::SigningAlgorithm::Hs256)).await;
    let minted = token(&h, &key, "gone").await.jwt;
    let mut validator = h.validator().await;
    assert!(validator.verify_token(verify(&minted)).await.is_ok());
    h.issuer()
        .await
        .delete_token_template(admin(pb::DeleteTokenTemplateRequest {
            name: "gone".into(),
        }))
        .await
        .unwrap();
    let result = validator.verify_token(verify(&minted)).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_UNKNOWN_KEY");
}

async fn template_crud_lists_and_gets(h: Harness) {
    let mut issuer = h.issuer().await;
    let first = put(&h, template("b-shared", pb::SigningAlgorithm::Hs256)).await;
    put(&h, template("a-plain", pb::SigningAlgorithm::Eddsa)).await;
    // Putting an HS256 template again keeps its secret and shows it no more.
    let again = put(&h, template("b-shared", pb::SigningAlgorithm::Hs256)).await;
    assert!(!first.is_empty() && again.is_empty());
    let listed = issuer
        .list_token_templates(admin(pb::ListTokenTemplatesRequest {}))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed
        .templates
        .iter()
        .map(|template| template.name.as_str())
        .collect();
    assert_eq!(names, ["a-plain", "b-shared"]);
    let got = issuer
        .get_token_template(admin(pb::GetTokenTemplateRequest {
            name: "a-plain".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    assert_eq!(got.lifetime.unwrap().seconds, 60);
    assert_eq!(got.allowed_clock_skew.unwrap().seconds, 5);
    assert!(
        matches!(claim(got.claims.as_ref().unwrap(), "plain"), Kind::NumberValue(n) if *n == 5.0)
    );
    let deleted = issuer
        .delete_token_template(admin(pb::DeleteTokenTemplateRequest {
            name: "a-plain".into(),
        }))
        .await;
    assert!(deleted.is_ok());
    let result = issuer
        .get_token_template(admin(pb::GetTokenTemplateRequest {
            name: "a-plain".into(),
        }))
        .await;
    assert_error(result, Code::NotFound, "TEMPLATE_NOT_FOUND");
    let result = issuer
        .delete_token_template(pb::DeleteTokenTemplateRequest {
            name: "b-shared".into(),
        })
        .await;
    assert_error(result, Code::Unauthenticated, "ADMIN_KEY_MISSING");
}

async fn keys_named_in_the_header_are_never_trusted(h: Harness) {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};

    let (key, _) = alice(&h).await;
    put(&h, template("hdr", pb::SigningAlgorithm::Eddsa)).await;
    let minted = token(&h, &key, "hdr").await.jwt;
    let parts: Vec<&str> = minted.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let real_kid = header["kid"].as_str().unwrap().to_owned();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // The attacker's own Ed25519 key, offered in every header slot RFC 8725
    // warns about: `jwk` (the key itself), `jku` and `x5u` (where to fetch it).
    let attacker_der = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8v1(
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let attacker = EncodingKey::from_ed_der(attacker_der.as_ref());
    let attacker_jwk = Jwk::from_encoding_key(&attacker, Algorithm::EdDSA).unwrap();
    let forge = |kid: &str| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        header.jwk = Some(attacker_jwk.clone());
        header.jku = Some("http://127.0.0.1:9/jwks.json".into());
        header.x5u = Some("http://127.0.0.1:9/cert.pem".into());
        jsonwebtoken::encode(&header, &claims, &attacker).unwrap()
    };
    let mut validator = h.validator().await;
    // Under the real kid the real key checks it, and the signature fails.
    let result = validator.verify_token(verify(&forge(&real_kid))).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_BAD_SIGNATURE");
    // Under a kid of its own nothing is fetched from the header's URLs.
    let result = validator.verify_token(verify(&forge("attacker"))).await;
    assert_error(result, Code::Unauthenticated, "TOKEN_UNKNOWN_KEY");
    assert!(validator.verify_token(verify(&minted)).await.is_ok());
}
