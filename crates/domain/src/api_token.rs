//! API tokens in Unleash's format, `<project>:<environment>.<secret>`, and
//! the rules that create and validate them.
//!
//! The secret is 70 base64url characters: the token's id (16 bytes), 256
//! random bits and a CRC-32 of both, as in a session key. The id lets the
//! store find the token in one lookup by something that is not secret; the
//! checksum rejects a typo or a made-up string without a store round trip.
//! The alphabet holds neither `:` nor `.`, so tools that split Unleash
//! tokens on them read ours too; base64url rather than Unleash's hex keeps
//! a 1,000-token batch under the default 100 kB request limit. Only a
//! SHA-256 of the random part is stored.

use std::{fmt, str::FromStr};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result, SecretHash, Timestamp};

/// Longest token string worth parsing; anything longer is malformed.
pub const MAX_API_TOKEN_LEN: usize = 256;
/// Most projects one token may list.
pub const MAX_PROJECTS: usize = 100;

/// Length of the secret part: base64url of 52 bytes, unpadded.
const SECRET_LEN: usize = 70;
const ALL: &str = "*";
const SEVERAL: &str = "[]";

/// An API token's id, `tok_` and 32 hex digits: a handle, never a secret.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiTokenId([u8; 16]);

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
        let bytes = lower_hex(digits, 16).ok_or(NotAnApiTokenId)?;
        Ok(ApiTokenId(bytes.try_into().map_err(|_| NotAnApiTokenId)?))
    }
}

impl fmt::Display for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
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
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom("not an API token id"))
    }
}

/// What an API token is for, as in Unleash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiTokenType {
    /// Server-side SDKs: Unleash's older name for [`ApiTokenType::Backend`].
    Client,
    /// Server-side SDKs.
    Backend,
    /// Frontend SDKs and the frontend API.
    Frontend,
    /// Everything: every project and environment.
    Admin,
}

impl ApiTokenType {
    /// The lower-case name `/edge/validate` answers. A CLIENT token is
    /// `backend`, as Unleash Edge reports it, so SDKs and Edge-aware tools
    /// that only know the newer name accept it.
    pub fn unleash_name(self) -> &'static str {
        match self {
            ApiTokenType::Client | ApiTokenType::Backend => "backend",
            ApiTokenType::Frontend => "frontend",
            ApiTokenType::Admin => "admin",
        }
    }
}

/// A project name: 1 to 100 characters of `[A-Za-z0-9_.~-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProjectName(String);

/// An environment name: 1 to 100 characters of `[A-Za-z0-9_.~-]`, or `*`
/// (every environment) for ADMIN tokens only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Environment(String);

macro_rules! name_type {
    ($type:ident) => {
        impl $type {
            /// Reads a name from request field `field`.
            pub fn parse(text: &str, field: &str) -> Result<Self> {
                if is_name(text) {
                    Ok($type(text.to_owned()))
                } else if text.is_empty() {
                    Err(Error::invalid(field, "is required"))
                } else {
                    Err(Error::invalid(
                        field,
                        "must be 1 to 100 characters of [A-Za-z0-9_.~-]",
                    ))
                }
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(ProjectName);
name_type!(Environment);

impl Environment {
    /// Every environment: what ADMIN tokens are for.
    pub fn all() -> Self {
        Environment(ALL.to_owned())
    }
}

/// The projects a token may access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projects {
    /// Every project, `*` in the token string.
    All,
    /// These projects (at least one, no duplicates, in the order given).
    Listed(Vec<ProjectName>),
}

impl Projects {
    /// Reads a project list: `["*"]` for every project, else names.
    pub fn parse(names: &[String], field: &str) -> Result<Self> {
        if names.is_empty() {
            return Err(Error::invalid(field, "is required: `*` or project names"));
        }
        if names.len() > MAX_PROJECTS {
            return Err(Error::invalid(field, "at most 100 projects"));
        }
        if names.iter().any(|name| name == ALL) {
            return match names.len() {
                1 => Ok(Projects::All),
                _ => Err(Error::invalid(field, "`*` stands alone")),
            };
        }
        let mut listed: Vec<ProjectName> = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let name = ProjectName::parse(name, &format!("{field}[{index}]"))?;
            if !listed.contains(&name) {
                listed.push(name);
            }
        }
        Ok(Projects::Listed(listed))
    }

    /// The project part of the token string: `*`, the one project, or `[]`.
    pub fn token_prefix(&self) -> &str {
        match self {
            Projects::All => ALL,
            Projects::Listed(names) if names.len() == 1 => names[0].as_str(),
            Projects::Listed(_) => SEVERAL,
        }
    }

    /// The names as answered on the wire: `["*"]` for every project.
    pub fn names(&self) -> Vec<String> {
        match self {
            Projects::All => vec![ALL.to_owned()],
            Projects::Listed(names) => names.iter().map(|name| name.0.clone()).collect(),
        }
    }

    /// Whether a token with these projects may access `project`.
    pub fn covers(&self, project: &ProjectName) -> bool {
        match self {
            Projects::All => true,
            Projects::Listed(names) => names.contains(project),
        }
    }
}

/// An API token as admins see it: everything but its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Its id, also embedded in the token string.
    pub id: ApiTokenId,
    /// A human name, 1 to 128 characters with no control characters.
    pub name: String,
    /// What it is for.
    pub token_type: ApiTokenType,
    /// What projects it may access.
    pub projects: Projects,
    /// What environment it is for; `*` for ADMIN tokens.
    pub environment: Environment,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops validating; `None` for never.
    pub expires_at: Option<Timestamp>,
}

/// What the store keeps of a token: the token and the hash of its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// The token.
    pub token: ApiToken,
    /// SHA-256 of the token's random part.
    pub secret_hash: SecretHash,
}

impl ApiTokenRecord {
    /// Whether `presented` is this token's string, unexpired at `now`: the
    /// secret (compared in constant time), the id, and the project and
    /// environment parts, which must be the ones it was issued with.
    pub fn accepts(&self, presented: &PresentedApiToken, now: Timestamp) -> bool {
        let secret_matches = self.secret_hash.matches(&SecretHash::of(&presented.secret));
        secret_matches
            && presented.id == self.token.id
            && presented.project_part == self.token.projects.token_prefix()
            && presented.environment == self.token.environment.as_str()
            && self
                .token
                .expires_at
                .is_none_or(|expires_at| now < expires_at)
    }
}

/// Which tokens ListApiTokens answers; `None` fields match anything.
#[derive(Debug, Clone, Default)]
pub struct ApiTokenFilter {
    /// Only tokens of this type.
    pub token_type: Option<ApiTokenType>,
    /// Only tokens that may access this project.
    pub project: Option<ProjectName>,
    /// Only tokens for this environment (ADMIN tokens are for every one).
    pub environment: Option<Environment>,
}

impl ApiTokenFilter {
    /// Whether `token` is live at `now` and passes every filter.
    pub fn matches(&self, token: &ApiToken, now: Timestamp) -> bool {
        token.expires_at.is_none_or(|expires_at| now < expires_at)
            && self
                .token_type
                .is_none_or(|wanted| token.token_type == wanted)
            && self
                .project
                .as_ref()
                .is_none_or(|project| token.projects.covers(project))
            && self.environment.as_ref().is_none_or(|environment| {
                token.environment == *environment || token.environment.as_str() == ALL
            })
    }
}

/// A checked CreateApiToken request.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    name: String,
    token_type: ApiTokenType,
    projects: Projects,
    environment: Environment,
    expires_at: Option<Timestamp>,
}

impl NewApiToken {
    /// Checks a request; `token_type` is `None` when it was not given.
    pub fn new(
        name: &str,
        token_type: Option<ApiTokenType>,
        projects: &[String],
        environment: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::invalid("token_name", "is required"));
        }
        if name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "token_name",
                "must be at most 128 characters with no control characters",
            ));
        }
        let token_type = token_type.ok_or_else(|| Error::invalid("type", "is required"))?;
        let (projects, environment) = if token_type == ApiTokenType::Admin {
            if !(projects.is_empty() || projects == [ALL]) {
                return Err(Error::invalid(
                    "projects",
                    "an ADMIN token covers every project: leave empty or `*`",
                ));
            }
            if !(environment.is_empty() || environment == ALL) {
                return Err(Error::invalid(
                    "environment",
                    "an ADMIN token covers every environment: leave empty or `*`",
                ));
            }
            (Projects::All, Environment::all())
        } else {
            (
                Projects::parse(projects, "projects")?,
                Environment::parse(environment, "environment")?,
            )
        };
        Ok(NewApiToken {
            name: name.to_owned(),
            token_type,
            projects,
            environment,
            expires_at,
        })
    }

    /// The token to store and its string to hand out once, with a fresh id
    /// and secret from `rng`.
    pub fn issue(
        self,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(ApiTokenRecord, ApiTokenSecret)> {
        if self.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Err(Error::invalid("expires_at", "must be in the future"));
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let token = ApiToken {
            id: ApiTokenId(id),
            name: self.name,
            token_type: self.token_type,
            projects: self.projects,
            environment: self.environment,
            created_at: now,
            expires_at: self.expires_at,
        };
        let text = format!(
            "{}:{}.{}",
            token.projects.token_prefix(),
            token.environment.as_str(),
            encode_secret(&token.id, &secret)
        );
        let record = ApiTokenRecord {
            token,
            secret_hash: SecretHash::of(&secret),
        };
        Ok((record, ApiTokenSecret(text)))
    }
}

/// A new token's string, to hand to its owner once.
pub struct ApiTokenSecret(String);

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
    id: ApiTokenId,
    project_part: String,
    environment: String,
    secret: [u8; 32],
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

fn is_name(text: &str) -> bool {
    (1..=100).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"_.~-".contains(&byte))
}

fn encode_secret(id: &ApiTokenId, secret: &[u8; 32]) -> String {
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

/// `len` bytes from exactly `2 * len` lowercase hex digits.
fn lower_hex(text: &str, len: usize) -> Option<Vec<u8>> {
    if text.len() != 2 * len || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(text).ok()
}

#[cfg(test)]
mod tests;
