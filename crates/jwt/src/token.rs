//! Minting a token from a template, and checking one.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Header, Validation, decode, decode_header, encode, errors::ErrorKind};
use rand_core::CryptoRng;
use serde_json::{Map, Value};
use sigil_domain::{Session, SessionId, Timestamp, TokenRejection};
use std::time::Duration;

use crate::{SigningKey, StoredTemplate, VerifyingKey};

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct MintedToken {
    /// The compact JWT.
    pub jwt: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`, never later than its session's expiry.
    pub expires_at: Timestamp,
}

/// A token whose signature and times have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    /// Every claim.
    pub claims: Map<String, Value>,
    /// `sub`.
    pub subject: String,
    /// `sid`, when it names a session.
    pub session_id: Option<SessionId>,
    /// `jti`.
    pub jti: Option<String>,
    /// `exp`.
    pub expires_at: Timestamp,
    /// `tpl`, the template it was minted from.
    pub template: Option<String>,
}

/// Signs a token for `session` from `template` with `key`. `exp` is the
/// earlier of `now + lifetime` and the session's expiry.
pub fn mint(
    template: &StoredTemplate,
    session: &Session,
    key: &SigningKey,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<MintedToken, jsonwebtoken::errors::Error> {
    let mut jti_bytes = [0u8; 16];
    rng.fill_bytes(&mut jti_bytes);
    let jti = URL_SAFE_NO_PAD.encode(jti_bytes);
    let expires_at = now.plus(template.lifetime).min(session.expires_at);
    let mut claims = template.render_claims(session);
    let now_secs = now.unix_ms().div_euclid(1000);
    let subject = session.subject.as_ref().map_or_else(
        || session.id.to_string(),
        |subject| subject.as_str().to_owned(),
    );
    claims.insert("sub".into(), subject.into());
    claims.insert("sid".into(), session.id.to_string().into());
    claims.insert("jti".into(), jti.clone().into());
    claims.insert("iat".into(), now_secs.into());
    claims.insert("nbf".into(), now_secs.into());
    claims.insert("exp".into(), expires_at.unix_ms().div_euclid(1000).into());
    claims.insert("tpl".into(), template.name.clone().into());
    if let Some(issuer) = &template.issuer {
        claims.insert("iss".into(), issuer.clone().into());
    }
    if let Some(audience) = &template.audience {
        claims.insert("aud".into(), audience.clone().into());
    }
    let mut header = Header::new(key.algorithm.jwt());
    header.kid = Some(key.kid.clone());
    let jwt = encode(&header, &claims, key.encoding_key())?;
    Ok(MintedToken {
        jwt,
        jti,
        expires_at: Timestamp::from_unix_ms(expires_at.unix_ms().div_euclid(1000) * 1000),
    })
}

/// The `kid` in a token's header, read before anything is trusted.
pub fn header_kid(jwt: &str) -> Result<String, TokenRejection> {
    decode_header(jwt)
        .ok()
        .and_then(|header| header.kid)
        .ok_or(TokenRejection::Malformed)
}

/// The `typ` every token Sigil mints carries (RFC 7519 §5.1).
const TOKEN_TYPE: &str = "JWT";

/// Checks the signature with `key`, allowing only the key's own algorithm
/// (so `alg: none` and algorithm confusion fail), then the header's `typ`,
/// and returns the claims. Times are checked by [`check_claims`], with the
/// template's skew.
///
/// `typ` must be `JWT` (compared without case, as media types are): RFC 8725
/// §3.11's explicit typing, so a JWT of another kind signed with a key Sigil
/// also trusts (an `at+jwt`, a `dpop+jwt`) is never taken for one of its
/// tokens. It is checked after the signature so that a forgery is reported
/// as one.
pub fn verify_signature(
    jwt: &str,
    key: &VerifyingKey,
) -> Result<Map<String, Value>, TokenRejection> {
    let mut validation = Validation::new(key.algorithm.jwt());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match decode::<Map<String, Value>>(jwt, &key.decoding, &validation) {
        Ok(data) if is_sigil_type(data.header.typ.as_deref()) => Ok(data.claims),
        Ok(_) => Err(TokenRejection::Malformed),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                TokenRejection::BadSignature
            }
            _ => TokenRejection::Malformed,
        }),
    }
}

fn is_sigil_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| typ.eq_ignore_ascii_case(TOKEN_TYPE))
}

/// Checks `exp`, `nbf` and `iat` against `now` with `skew`, `iss` against
/// the template's issuer, and `aud` when an audience is asked for.
pub fn check_claims(
    claims: Map<String, Value>,
    now: Timestamp,
    skew: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<VerifiedToken, TokenRejection> {
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let now_ms = now.unix_ms();
    let skew_ms = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
    let exp = number("exp").ok_or(TokenRejection::Malformed)?;
    let subject = text("sub").ok_or(TokenRejection::Malformed)?;
    if now_ms >= exp.saturating_mul(1000).saturating_add(skew_ms) {
        return Err(TokenRejection::Expired);
    }
    for name in ["nbf", "iat"] {
        if number(name).is_some_and(|at| at.saturating_mul(1000) > now_ms.saturating_add(skew_ms)) {
            return Err(TokenRejection::NotYetValid);
        }
    }
    if issuer.is_some_and(|issuer| text("iss").as_deref() != Some(issuer)) {
        return Err(TokenRejection::WrongIssuer);
    }
    if let Some(audience) = audience {
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
            _ => false,
        };
        if !matches {
            return Err(TokenRejection::WrongAudience);
        }
    }
    Ok(VerifiedToken {
        subject,
        session_id: text("sid").and_then(|sid| sid.parse().ok()),
        jti: text("jti"),
        expires_at: Timestamp::from_unix_ms(exp.saturating_mul(1000)),
        template: text("tpl"),
        claims,
    })
}

#[cfg(test)]
mod tests;
