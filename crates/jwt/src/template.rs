//! Token templates: named claim sets with shortcodes, Clerk's model.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sigil_domain::{Error, Result, Session, Timestamp};

use crate::{MasterKey, SigningAlgorithm, SigningKey, VerifyingKey};

/// Largest `claims` document accepted, in bytes of JSON.
pub const MAX_CLAIMS_BYTES: usize = 16 * 1024;
/// Claims Sigil sets itself; a template may not.
const RESERVED_CLAIMS: [&str; 9] = [
    "exp", "iat", "nbf", "jti", "sid", "iss", "sub", "aud", "tpl",
];
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
const DEFAULT_SKEW: Duration = Duration::from_secs(5);
const MAX_SKEW: Duration = Duration::from_secs(300);

/// Bounds the operator sets on templates.
#[derive(Debug, Clone, Copy)]
pub struct TemplateLimits {
    /// The longest lifetime a template may give its tokens.
    pub max_lifetime: Duration,
}

/// A checked PutTokenTemplate request.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSpec {
    name: String,
    claims: Map<String, Value>,
    lifetime: Duration,
    audience: Option<String>,
    issuer: Option<String>,
    allowed_clock_skew: Duration,
    algorithm: SigningAlgorithm,
}

/// A template as the store keeps it; an HS256 secret only sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// Template name, unique.
    pub name: String,
    /// Claims with shortcodes, as put.
    pub claims: Map<String, Value>,
    /// How long minted tokens live (capped by their session).
    pub lifetime: Duration,
    /// `aud` of minted tokens.
    pub audience: Option<String>,
    /// `iss` of minted tokens.
    pub issuer: Option<String>,
    /// Clock skew allowed when verifying.
    pub allowed_clock_skew: Duration,
    /// What tokens are signed with.
    pub algorithm: SigningAlgorithm,
    /// For HS256: the key id of the shared secret.
    pub secret_kid: Option<String>,
    /// For HS256: the shared secret, sealed under the master key.
    pub sealed_secret: Option<String>,
    /// When first put.
    pub created_at: Timestamp,
    /// When last put.
    pub updated_at: Timestamp,
}

impl TemplateSpec {
    /// Checks every part of a template.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        claims_json: &str,
        lifetime: Option<Duration>,
        audience: &str,
        issuer: &str,
        allowed_clock_skew: Option<Duration>,
        algorithm: SigningAlgorithm,
        limits: &TemplateLimits,
    ) -> Result<Self> {
        check_name(name, "name")?;
        let claims = parse_claims(claims_json)?;
        let lifetime = lifetime.unwrap_or(DEFAULT_LIFETIME);
        if lifetime < Duration::from_secs(1) || lifetime > limits.max_lifetime {
            return Err(Error::invalid(
                "lifetime",
                format!("must be 1s to {}s", limits.max_lifetime.as_secs()),
            ));
        }
        let allowed_clock_skew = allowed_clock_skew.unwrap_or(DEFAULT_SKEW);
        if allowed_clock_skew > MAX_SKEW {
            return Err(Error::invalid("allowed_clock_skew", "at most 300s"));
        }
        Ok(TemplateSpec {
            name: name.to_owned(),
            claims,
            lifetime,
            audience: optional_text(audience, "audience")?,
            issuer: optional_text(issuer, "issuer")?,
            allowed_clock_skew,
            algorithm,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The claims as the stored template will render them for `session`:
    /// the parse and the rendering together, with no key or store (what the
    /// fuzz target `template` drives).
    pub fn render_claims(&self, session: &Session) -> Map<String, Value> {
        render_claims(&self.claims, session)
    }

    /// The template to store. An HS256 template keeps the secret of the
    /// template it replaces; a new one gets a fresh secret, returned here
    /// once.
    pub fn into_stored(
        self,
        previous: Option<&StoredTemplate>,
        now: Timestamp,
        master_key: &MasterKey,
        rng: &mut impl CryptoRng,
    ) -> (StoredTemplate, Option<Vec<u8>>) {
        let kept = previous.filter(|previous| previous.algorithm == SigningAlgorithm::HS256);
        let (secret_kid, sealed_secret, new_secret) = match (self.algorithm, kept) {
            (SigningAlgorithm::HS256, Some(previous)) => (
                previous.secret_kid.clone(),
                previous.sealed_secret.clone(),
                None,
            ),
            (SigningAlgorithm::HS256, None) => {
                let mut secret = vec![0u8; 32];
                rng.fill_bytes(&mut secret);
                let mut suffix = [0u8; 9];
                rng.fill_bytes(&mut suffix);
                let kid = format!("hs256-{}-{}", self.name, URL_SAFE_NO_PAD.encode(suffix));
                let sealed = master_key.seal(&secret, &kid, rng);
                (Some(kid), Some(sealed), Some(secret))
            }
            _ => (None, None, None),
        };
        let stored = StoredTemplate {
            name: self.name,
            claims: self.claims,
            lifetime: self.lifetime,
            audience: self.audience,
            issuer: self.issuer,
            allowed_clock_skew: self.allowed_clock_skew,
            algorithm: self.algorithm,
            secret_kid,
            sealed_secret,
            created_at: previous.map_or(now, |previous| previous.created_at),
            updated_at: now,
        };
        (stored, new_secret)
    }
}

impl StoredTemplate {
    /// The claims with every shortcode replaced from `session`.
    pub fn render_claims(&self, session: &Session) -> Map<String, Value> {
        render_claims(&self.claims, session)
    }

    /// The HS256 signing key; `None` for other algorithms or if the master
    /// key does not open the secret.
    pub fn hs256_signing_key(&self, master_key: &MasterKey) -> Option<SigningKey> {
        let (kid, secret) = self.open_secret(master_key)?;
        Some(SigningKey::hs256(kid, &secret))
    }

    /// The HS256 verifying key, as [`StoredTemplate::hs256_signing_key`].
    pub fn hs256_verifying_key(&self, master_key: &MasterKey) -> Option<VerifyingKey> {
        let (kid, secret) = self.open_secret(master_key)?;
        Some(VerifyingKey::hs256(kid, &secret))
    }

    fn open_secret(&self, master_key: &MasterKey) -> Option<(String, Vec<u8>)> {
        let kid = self.secret_kid.clone()?;
        let secret = master_key.open(self.sealed_secret.as_deref()?, &kid)?;
        Some((kid, secret))
    }
}

/// Checks a template name: 1 to 64 of `[a-z0-9_-]`, starting with a letter
/// or digit.
pub fn check_name(name: &str, field: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-".contains(&byte)
        });
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be 1 to 64 of a-z 0-9 _ -, starting with a letter or digit",
        ))
    }
}

fn optional_text(text: &str, field: &str) -> Result<Option<String>> {
    if text.len() > 256 || text.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            "at most 256 characters, no control characters",
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn parse_claims(json: &str) -> Result<Map<String, Value>> {
    if json.trim().is_empty() {
        return Ok(Map::new());
    }
    if json.len() > MAX_CLAIMS_BYTES {
        return Err(Error::invalid("claims", "at most 16 KiB of JSON"));
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|error| Error::invalid("claims", format!("is not valid JSON: {error}")))?;
    let Value::Object(claims) = value else {
        return Err(Error::invalid("claims", "must be a JSON object"));
    };
    if let Some(reserved) = claims
        .keys()
        .find(|name| RESERVED_CLAIMS.contains(&name.as_str()))
    {
        return Err(Error::invalid(
            "claims",
            format!(
                "`{reserved}` is set by Sigil (use the template's own field where there is one)"
            ),
        ));
    }
    for value in claims.values() {
        check_shortcodes(value)?;
    }
    Ok(claims)
}

/// A shortcode's meaning.
enum Shortcode<'a> {
    Id,
    Subject,
    Permissions,
    ExpiresAt,
    Metadata(&'a str),
}

fn parse_shortcode(inner: &str) -> Option<Shortcode<'_>> {
    match inner.trim() {
        "session.id" => Some(Shortcode::Id),
        "session.subject" => Some(Shortcode::Subject),
        "session.permissions" => Some(Shortcode::Permissions),
        "session.expires_at" => Some(Shortcode::ExpiresAt),
        other => {
            let key = other.strip_prefix("session.metadata.")?;
            let valid = (1..=64).contains(&key.len())
                && key
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"_.-".contains(&byte));
            valid.then_some(Shortcode::Metadata(key))
        }
    }
}

/// Splits `text` into literal pieces and shortcode bodies.
fn pieces(text: &str) -> Result<Vec<(bool, &str)>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push((false, &rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "has an unclosed `{{`".to_owned())?;
        pieces.push((true, &after[..end]));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push((false, rest));
    }
    Ok(pieces)
}

fn check_shortcodes(value: &Value) -> Result<()> {
    match value {
        Value::String(text) => {
            for (is_code, piece) in pieces(text).map_err(|why| Error::invalid("claims", why))? {
                if is_code && parse_shortcode(piece).is_none() {
                    return Err(Error::invalid(
                        "claims",
                        format!("unknown shortcode `{{{{{}}}}}`", piece.trim()),
                    ));
                }
            }
            Ok(())
        }
        Value::Array(values) => values.iter().try_for_each(check_shortcodes),
        Value::Object(map) => map.values().try_for_each(check_shortcodes),
        _ => Ok(()),
    }
}

fn shortcode_value(code: &Shortcode<'_>, session: &Session) -> Value {
    match code {
        Shortcode::Id => Value::String(session.id.to_string()),
        Shortcode::Subject => session.subject.as_ref().map_or(Value::Null, |subject| {
            Value::String(subject.as_str().to_owned())
        }),
        Shortcode::Permissions => Value::Array(
            session
                .permissions
                .iter()
                .map(|permission| Value::String(permission.as_str().to_owned()))
                .collect(),
        ),
        Shortcode::ExpiresAt => Value::from(session.expires_at.unix_ms().div_euclid(1000)),
        Shortcode::Metadata(key) => session
            .metadata
            .get(*key)
            .map_or(Value::Null, |value| Value::String(value.clone())),
    }
}

fn render_claims(claims: &Map<String, Value>, session: &Session) -> Map<String, Value> {
    claims
        .iter()
        .map(|(name, value)| (name.clone(), render(value, session)))
        .collect()
}

fn render(value: &Value, session: &Session) -> Value {
    match value {
        Value::String(text) => {
            // Checked when the template was put, so this parses.
            let Ok(pieces) = pieces(text) else {
                return value.clone();
            };
            if let [(true, code)] = pieces.as_slice() {
                // A value that is exactly one shortcode takes its JSON type.
                return parse_shortcode(code)
                    .map_or(Value::Null, |code| shortcode_value(&code, session));
            }
            let mut rendered = String::with_capacity(text.len());
            for (is_code, piece) in pieces {
                if !is_code {
                    rendered.push_str(piece);
                    continue;
                }
                match parse_shortcode(piece).map(|code| shortcode_value(&code, session)) {
                    Some(Value::String(text)) => rendered.push_str(&text),
                    Some(Value::Array(values)) => {
                        let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                        rendered.push_str(&texts.join(","));
                    }
                    Some(Value::Null) | None => {}
                    Some(other) => rendered.push_str(&other.to_string()),
                }
            }
            Value::String(rendered)
        }
        Value::Array(values) => {
            Value::Array(values.iter().map(|value| render(value, session)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, value)| (name.clone(), render(value, session)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests;
