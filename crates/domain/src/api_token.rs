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

mod scope;
mod token_string;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

pub use scope::{Environment, MAX_PROJECTS, ProjectName, Projects};
pub use token_string::{
    ApiTokenId, ApiTokenSecret, MAX_API_TOKEN_LEN, PresentedApiToken, parse_batch,
};

use crate::{Error, Result, SecretHash, Timestamp};
use scope::ALL;
use token_string::encode_secret;

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

#[cfg(test)]
mod tests;
