//! JWTs across processes and languages: validators sharing one Redis, a
//! validator that starts before its issuer, and PyJWT verifying Sigil's
//! tokens with the JWKS from `/.well-known/jwks.json`.

use std::process::Command;

use sigil_proto::v1 as pb;
use tokio::task::JoinSet;
use tonic::Code;

use crate::{
    harness::{Harness, Role, Server, channel_to, eventually, listener},
    jwt::{alice, put, template, token},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_jti_consumed_through_two_validators_at_once_has_one_winner() {
    let h = Harness::redis().await;
    let (key, _) = alice(&h).await;
    put(&h, template("once", pb::SigningAlgorithm::Eddsa)).await;
    let minted = token(&h, &key, "once").await.jwt;
    let second = Server::spawn(
        &h.context,
        Role::Validator { issuer: h.address },
        listener().await,
    );
    let clients = [h.address, second.address];
    let mut racers = JoinSet::new();
    for round in 0..20 {
        let mut validator = pb::validator_service_client::ValidatorServiceClient::new(
            channel_to(clients[round % 2]).await,
        );
        let jwt = minted.clone();
        racers.spawn(async move {
            validator
                .verify_token(pb::VerifyTokenRequest {
                    jwt,
                    consume_jti: true,
                    ..Default::default()
                })
                .await
        });
    }
    let mut winners = 0;
    while let Some(result) = racers.join_next().await {
        match result.unwrap() {
            Ok(_) => winners += 1,
            Err(status) => assert_eq!(status.code(), Code::Unauthenticated, "{status:?}"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validator_started_before_its_issuer_recovers_without_restart() {
    let h = Harness::memory().await;
    let (key, _) = alice(&h).await;
    put(&h, template("early", pb::SigningAlgorithm::Es256)).await;
    let minted = token(&h, &key, "early").await.jwt;
    // A port for the issuer that nobody listens on yet.
    let issuer_listener = listener().await;
    let issuer_address = issuer_listener.local_addr().unwrap();
    drop(issuer_listener);
    let validator = Server::spawn(
        &h.context,
        Role::Validator {
            issuer: issuer_address,
        },
        listener().await,
    );
    let mut client = pb::validator_service_client::ValidatorServiceClient::new(
        channel_to(validator.address).await,
    );
    let verify = || pb::VerifyTokenRequest {
        jwt: minted.clone(),
        ..Default::default()
    };
    let result = client.verify_token(verify()).await;
    crate::harness::assert_error(result, Code::Unavailable, "STORE_UNAVAILABLE");

    let issuer_listener = tokio::net::TcpListener::bind(issuer_address).await.unwrap();
    let _issuer = Server::spawn(&h.context, Role::Issuer, issuer_listener);
    eventually("the validator reaching the late issuer", || {
        let mut client = client.clone();
        let request = verify();
        async move { client.verify_token(request).await.is_ok() }
    })
    .await;
}

/// Verifies tokens with PyJWT: the asymmetric ones against the JWKS fetched
/// over HTTP, the HS256 one with its shared secret.
const PYJWT_VERIFY: &str = r#"
import base64, json, sys, urllib.request
import jwt

address, secret, *tokens = sys.argv[1:]
with urllib.request.urlopen(f"http://{address}/.well-known/jwks.json") as response:
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    jwks = jwt.PyJWKSet.from_dict(json.load(response))
for token in tokens:
    header = jwt.get_unverified_header(token)
    if header["alg"] == "HS256":
        key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    else:
        key = jwks[header["kid"]].key
    claims = jwt.decode(token, key, algorithms=[header["alg"]], audience="shop.example",
                        issuer="https://sigil.example")
    assert claims["sub"] == "alice", claims
    assert claims["device"] == "laptop", claims
    print(header["alg"], "ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_every_algorithm_with_the_http_jwks() {
    let h = Harness::memory().await;
    let (key, _) = alice(&h).await;
    let mut secret = String::new();
    let mut tokens = Vec::new();
    for (name, algorithm) in [
        ("eddsa", pb::SigningAlgorithm::Eddsa),
        ("es256", pb::SigningAlgorithm::Es256),
        ("rs256", pb::SigningAlgorithm::Rs256),
        ("shopify", pb::SigningAlgorithm::Hs256),
    ] {
        let shared = put(&h, template(name, algorithm)).await;
        if !shared.is_empty() {
            secret = shared;
        }
        tokens.push(token(&h, &key, name).await.jwt);
    }
    let python = crate::harness::python();
    let output = Command::new(python)
        .arg("-c")
        .arg(PYJWT_VERIFY)
        .arg(h.address.to_string())
        .arg(&secret)
        .args(&tokens)
        .output()
        .expect("the .venv python runs (the README's test command installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "PyJWT refused: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["EdDSA ok", "ES256 ok", "RS256 ok", "HS256 ok"]
    );
}
