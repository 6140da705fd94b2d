//! Sigil's JWTs: signing keys and their encryption at rest, token templates
//! with shortcodes, minting and verification. Pure computation, no I/O: the
//! caller passes `now`, keys and templates in.
//!
//! Key generation draws from aws-lc's own OS-backed CSPRNG (its API takes no
//! RNG); everything else that is random takes `rng: &mut impl CryptoRng`.

mod algorithm;
mod master_key;
mod signing_key;
mod template;
mod token;

pub use algorithm::SigningAlgorithm;
pub use master_key::MasterKey;
pub use signing_key::{SigningKey, StoredSigningKey, VerifyingKey};
pub use template::{MAX_CLAIMS_BYTES, StoredTemplate, TemplateLimits, TemplateSpec, check_name};
pub use token::{MintedToken, VerifiedToken, check_claims, header_kid, mint, verify_signature};
