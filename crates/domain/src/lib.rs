//! Sigil's domain: sessions, their secrets, permissions and access rules, and
//! the rules that govern them.
//!
//! Nothing here does I/O, awaits, or reads the clock or the random number
//! generator on its own: time is a `now: Timestamp` parameter and randomness
//! a `rng: &mut impl CryptoRng` parameter, so every rule is testable as a
//! plain function.

mod access;
mod error;
mod field;
mod secret;
mod session;
mod time;

pub use access::{AccessDecision, AccessRule, Permission, ResourceGlob};
pub use error::{Error, Result, TokenRejection};
pub use field::FieldPath;
pub use secret::{AdminKey, Nonce, SecretHash, SessionKey};
pub use session::{
    Authorization, Extension, NewSession, Session, SessionId, SessionPolicy, SessionRecord,
    SessionState, Subject,
};
pub use time::{Clock, Timestamp};
