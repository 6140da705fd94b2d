//! Sigil's domain: sessions, their secrets, permissions and access rules, API
//! tokens, and the rules that govern them.
//!
//! Nothing here does I/O, awaits, or reads the clock or the random number
//! generator on its own: time is a `now: Timestamp` parameter and randomness
//! a `rng: &mut impl CryptoRng` parameter, so every rule is testable as a
//! plain function.

mod access;
mod api_token;
mod assurance;
mod error;
mod event;
mod field;
mod id_text;
mod page_token;
mod secret;
mod session;
mod time;

#[cfg(test)]
mod properties;

pub use access::{AccessDecision, AccessRule, Permission, ResourceGlob};
pub use api_token::{
    ApiToken, ApiTokenFilter, ApiTokenId, ApiTokenRecord, ApiTokenSecret, ApiTokenType,
    Environment, MAX_API_TOKEN_LEN, MAX_PROJECTS, NewApiToken, PresentedApiToken, ProjectName,
    Projects, parse_batch,
};
pub use assurance::AssuranceLevel;
pub use error::{Error, Result, TokenRejection};
pub use event::{Event, EventCursor, EventKind, StoredEvent, event_matches};
pub use field::FieldPath;
pub use page_token::PageTokenKey;
pub use secret::{AdminKey, Nonce, SecretHash, SessionKey};
pub use session::{
    Authorization, Extension, NewSession, Session, SessionId, SessionPolicy, SessionRecord,
    SessionState, Subject,
};
pub use time::{Clock, Timestamp};
