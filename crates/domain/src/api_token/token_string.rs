//! The token string, `<project>:<environment>.<secret>`: its id, the secret
//! handed out once, and the parse of a presented string.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::scope::{ALL, SEVERAL, is_name};
use crate::{Error, Result};

/// Longest token string worth parsing; anything longer is malformed.
pub const MAX_API_TOKEN_LEN: usize = 256;

/// Length of the secret part: base64url of 52 bytes, unpadded.
const SECRET_LEN: usize = 70;

/// An API token's id, `tok_` and 32 hex digits: a handle, never a secret.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiTokenId(pub(super) [u8; 16]);

impl ApiTokenId {
    const PREFIX: &'static str = "tok_";

    /// Reads an id from a request field.
    pub fn parse_field(text: &str, field: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::invalid(field, "is required"));
        }
        text.parse()
            .map_err(|_| Error::invalid(field, "must be `tok_` and 32 lowercase hex digits"))
    }
}

/// A string that is not an API token id.
#[derive(Debug)]
pub struct NotAnApiTokenId;

impl FromStr for ApiTokenId {
    type Err = NotAnApiTokenId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix(Self::PREFIX).ok_or(NotAnApiTokenId)?;
        lower_hex(digits).map(ApiTokenId).ok_or(NotAnApiTokenId)
    }
}

impl fmt::Display for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::id_text::write_id(f, Self::PREFIX, &self.0)
    }
}

impl fmt::Debug for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for ApiTokenId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ApiTokenId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::id_text::deserialize_text(deserializer, "an API token id", |text| text.parse().ok())
    }
}

/// A new token's string, to hand to its owner once.
pub struct ApiTokenSecret(pub(super) String);

impl ApiTokenSecret {
    /// The token string. Call only to hand it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTokenSecret([redacted])")
    }
}

/// A well-formed token string as a caller presented it.
#[derive(Clone)]
pub struct PresentedApiToken {
    pub(super) id: ApiTokenId,
    pub(super) project_part: String,
    pub(super) environment: String,
    pub(super) secret: [u8; 32],
}

impl PresentedApiToken {
    /// Reads a token string. `None` when it is too long or its project,
    /// environment, secret or checksum is malformed: such a string cannot
    /// belong to any token, so no store lookup is needed.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > MAX_API_TOKEN_LEN {
            return None;
        }
        let (project_part, rest) = text.split_once(':')?;
        let (environment, secret) = rest.rsplit_once('.')?;
        if !(project_part == ALL || project_part == SEVERAL || is_name(project_part)) {
            return None;
        }
        if !(environment == ALL || is_name(environment)) {
            return None;
        }
        let (id, secret) = decode_secret(secret)?;
        Some(PresentedApiToken {
            id,
            project_part: project_part.to_owned(),
            environment: environment.to_owned(),
            secret,
        })
    }

    /// The id of the token this claims to be.
    pub fn id(&self) -> ApiTokenId {
        self.id
    }
}

impl fmt::Debug for PresentedApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PresentedApiToken({} [redacted])", self.id)
    }
}

/// The distinct well-formed strings of a batch, in request order, each
/// with its parse. Malformed strings and repeats are dropped here.
pub fn parse_batch(texts: &[String]) -> Vec<(&str, PresentedApiToken)> {
    let mut seen = std::collections::HashSet::with_capacity(texts.len());
    texts
        .iter()
        .filter(|text| seen.insert(text.as_str()))
        .filter_map(|text| Some((text.as_str(), PresentedApiToken::parse(text)?)))
        .collect()
}

/// The secret part of a token string.
pub(super) fn encode_secret(id: &ApiTokenId, secret: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(52);
    bytes.extend_from_slice(&id.0);
    bytes.extend_from_slice(secret);
    let checksum = crc32fast::hash(&bytes).to_be_bytes();
    bytes.extend_from_slice(&checksum);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_secret(text: &str) -> Option<(ApiTokenId, [u8; 32])> {
    // Reject on length before decoding so an oversized string costs nothing.
    if text.len() != SECRET_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    if bytes.len() != 52 {
        return None;
    }
    let (payload, checksum) = bytes.split_at(48);
    if crc32fast::hash(payload).to_be_bytes()[..] != checksum[..] {
        return None;
    }
    let (id, secret) = payload.split_at(16);
    Some((ApiTokenId(id.try_into().ok()?), secret.try_into().ok()?))
}

/// `N` bytes from exactly `2 * N` lowercase hex digits.
fn lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return None;
    }
    // Into an array, not a Vec: every API token record read decodes one.
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}
