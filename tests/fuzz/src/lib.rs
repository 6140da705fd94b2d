//! The fuzz targets' bodies: each takes the fuzzer's bytes and drives one
//! parser of untrusted input, asserting what must hold for any input. The
//! binaries in `fuzz_targets/` call these; the integration tests include
//! this file too (`tests/it/fuzz_corpus.rs`) and replay the seed corpus
//! through it, so CI checks the targets without running a fuzzer.
//!
//! Run one with `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz
//! <target>` (docs/security.md, "Fuzzing").

use std::{sync::OnceLock, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use sigil_domain::{
    AssuranceLevel, Nonce, Permission, PresentedApiToken, Session, SessionId, SessionKey,
    SessionState, Subject, Timestamp, parse_batch,
};
use sigil_jwt::{
    SigningAlgorithm, TemplateLimits, TemplateSpec, VerifyingKey, check_claims, header_kid,
    verify_signature,
};

/// The moment every target checks times against.
const NOW: Timestamp = Timestamp::from_unix_ms(1_800_000_000_000);
/// A template's skew, as most are configured.
const SKEW: Duration = Duration::from_secs(5);
/// The HS256 secret of the fuzzer's own keys: tokens it builds are signed
/// with it, so they get past the signature to the header and claims.
const HS256_SECRET: &[u8] = b"sigil-fuzz-hs256-secret-0123456789";
/// Separates the header from the claims in the `jwt` target's input.
const SEPARATOR: u8 = 0xff;

/// JWT decoding and header handling. The input is tried twice: as a whole
/// compact JWT against keys of every algorithm, and as `header 0xFF claims`
/// JSON, signed here with HS256 so the header's `alg`/`typ`/`kid` and the
/// claims get past the signature.
pub fn jwt(data: &[u8]) {
    let keys = verifying_keys();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = header_kid(text);
        for key in keys {
            if let Ok(claims) = verify_signature(text, key) {
                // Only a real signature by one of these keys gets here, and
                // the fuzzer has none but the HS256 secret's.
                assert_eq!(key.algorithm, SigningAlgorithm::HS256);
                check_verified(claims);
            }
        }
    }
    let (header, claims) = match data.iter().position(|byte| *byte == SEPARATOR) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, HS256_SECRET),
        signing_input.as_bytes(),
    );
    let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let _ = header_kid(&token);
    for key in keys {
        match verify_signature(&token, key) {
            Ok(claims) => {
                assert_eq!(key.algorithm, SigningAlgorithm::HS256, "{token}");
                check_verified(claims);
            }
            Err(_) => continue,
        }
    }
}

/// Claims past the signature: times and audience are checked, and what is
/// accepted really is unexpired.
fn check_verified(claims: Map<String, Value>) {
    let raw_exp = claims.get("exp").and_then(Value::as_i64);
    if let Ok(verified) = check_claims(claims, NOW, SKEW, Some("iss"), Some("aud")) {
        let exp = raw_exp.expect("a verified token has exp");
        assert!(exp.saturating_mul(1000).saturating_add(5000) > NOW.unix_ms());
        assert_eq!(verified.claims.get("iss"), Some(&Value::from("iss")));
        assert_eq!(
            verified.claims.get("sub").and_then(Value::as_str),
            Some(verified.subject.as_str())
        );
    }
}

/// Fixed public keys of every asymmetric algorithm (the P-256 and Ed25519
/// keys are RFC 7515's and RFC 8037's examples) and an HS256 key.
fn verifying_keys() -> &'static [VerifyingKey] {
    static KEYS: OnceLock<Vec<VerifyingKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let jwks = [
            r#"{"kty":"EC","crv":"P-256","alg":"ES256","kid":"es256-fuzz",
                "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y":"x_FEzRjmy5cVjU9tTyNIpuKD7LhcpL3JXJWvfdW1y5w"}"#,
            r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"eddsa-fuzz",
                "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
            r#"{"kty":"RSA","alg":"RS256","kid":"rs256-fuzz","e":"AQAB",
                "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}"#,
        ];
        let mut keys: Vec<VerifyingKey> = jwks
            .iter()
            .map(|jwk| {
                let jwk = serde_json::from_str(jwk).expect("a JWK");
                VerifyingKey::from_jwk(&jwk).expect("a usable JWK")
            })
            .collect();
        keys.push(VerifyingKey::hs256("hs256-fuzz".into(), HS256_SECRET));
        keys
    })
}

/// Template shortcodes: the input as a whole claims document and as one
/// claim's string. Whatever a template accepts renders without panicking,
/// to exactly its own claims.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let as_claim = serde_json::json!({ "claim": text }).to_string();
    for claims in [text, as_claim.as_str()] {
        let limits = TemplateLimits {
            max_lifetime: Duration::from_secs(3600),
        };
        let spec = TemplateSpec::new(
            "fuzz",
            claims,
            None,
            "",
            "",
            None,
            SigningAlgorithm::EdDSA,
            &limits,
        );
        if let Ok(spec) = spec {
            let rendered = spec.render_claims(session());
            let written: Map<String, Value> = serde_json::from_str(claims).unwrap_or_default();
            assert!(rendered.keys().eq(written.keys()), "{claims}");
        }
    }
}

/// A session with every field a shortcode can read.
fn session() -> &'static Session {
    static SESSION: OnceLock<Session> = OnceLock::new();
    SESSION.get_or_init(|| Session {
        id: SessionId::from_bytes([7; 16]),
        subject: Some(Subject::parse("alice", "subject").expect("valid")),
        state: SessionState::Active,
        permissions: ["orders:read", "orders:write"]
            .iter()
            .map(|text| Permission::parse(text, &"p".into()).expect("valid"))
            .collect(),
        rules: Vec::new(),
        metadata: [("device", "laptop"), ("a.b-c_d", "{{session.id}}")]
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        created_at: NOW,
        authorized_at: Some(NOW),
        expires_at: NOW.plus(Duration::from_secs(3600)),
        revoked_at: None,
        assurance_level: AssuranceLevel::Aal1,
    })
}

/// API token strings: one token, and the input's lines as a batch. A
/// string that parses alone parses in a batch to the same id, and a batch
/// keeps each distinct well-formed string once, in order.
pub fn api_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let alone = PresentedApiToken::parse(text);
    if alone.is_some() {
        assert!(text.len() <= sigil_domain::MAX_API_TOKEN_LEN);
    }
    let lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let batch = parse_batch(&lines);
    assert!(batch.len() <= lines.len());
    let mut seen = std::collections::HashSet::new();
    for (line, token) in &batch {
        assert!(seen.insert(*line), "{line:?} twice in one batch");
        let again = PresentedApiToken::parse(line).expect("parsed in the batch");
        assert_eq!(again.id(), token.id());
    }
    if let Some(token) = alone {
        let id = token.id();
        assert_eq!(id.to_string().parse().ok(), Some(id));
    }
    if let Ok(id) = text.parse::<sigil_domain::ApiTokenId>() {
        assert_eq!(id.to_string(), text);
    }
}

/// Session keys, nonces and ids: anything that parses is in canonical form
/// (it prints back as the input), and 48 or 32 bytes with their checksum
/// always parse to themselves.
pub fn session_secret(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(key) = SessionKey::parse(text) {
            assert_eq!(key.expose(), text);
        }
        if let Some(nonce) = Nonce::parse(text) {
            assert_eq!(nonce.expose(), text);
        }
        if let Ok(id) = text.parse::<SessionId>() {
            assert_eq!(id.to_string(), text);
        }
        let _ = SessionKey::parse_presented(text);
        let _ = Nonce::parse_presented(text);
    }
    // The wire form built here from raw bytes: prefix, base64url of the
    // bytes and their CRC-32.
    let wire = |prefix: &str, bytes: &[u8]| {
        let mut payload = bytes.to_vec();
        payload.extend_from_slice(&crc32fast::hash(bytes).to_be_bytes());
        format!("{prefix}{}", URL_SAFE_NO_PAD.encode(payload))
    };
    if let Some(bytes) = data.get(..48) {
        let text = wire("sigil_sk_", bytes);
        let key = SessionKey::parse(&text).expect("a well-formed key parses");
        assert_eq!(key.expose(), text);
        assert_eq!(key.session_id().as_bytes()[..], bytes[..16]);
    }
    if let Some(bytes) = data.get(..32) {
        let text = wire("sigil_nonce_", bytes);
        let nonce = Nonce::parse(&text).expect("a well-formed nonce parses");
        assert_eq!(nonce.expose(), text);
    }
}

/// The body of `POST /edge/validate`: whatever parses is the body's list of
/// strings, and parses again the same when written back.
pub fn edge_body(data: &[u8]) {
    let Ok(tokens) = sigil_edge_token::http::parse_tokens(data) else {
        return;
    };
    let _ = parse_batch(&tokens);
    let written = serde_json::json!({ "tokens": tokens }).to_string();
    let again = sigil_edge_token::http::parse_tokens(written.as_bytes()).expect("written back");
    assert_eq!(again, tokens);
}
