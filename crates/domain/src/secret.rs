//! The secrets Sigil hands out and how they look on the wire.
//!
//! A session key or nonce is `<prefix><base64url(session id ‖ random ‖
//! crc32)>`. The prefix makes leaked keys easy to scan for; the checksum lets
//! a typo or a made-up string be rejected without a store round trip; the
//! session id inside lets the store find the session in one lookup, keyed by
//! something that is not secret. Only a SHA-256 of the random part is stored:
//! the secrets are 128 or 256 uniformly random bits, so a fast hash is enough
//! and a store dump holds nothing that opens a session.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result, SessionId};

const SESSION_KEY_PREFIX: &str = "sigil_sk_";
const NONCE_PREFIX: &str = "sigil_nonce_";
const ADMIN_KEY_PREFIX: &str = "sigil_admin_";
const CHECKSUM_LEN: usize = 4;

/// The secret that proves a caller holds a session: 256 random bits.
#[derive(Clone)]
pub struct SessionKey {
    session_id: SessionId,
    secret: [u8; 32],
}

/// The one-time secret that authorizes a pending session: 128 random bits.
#[derive(Clone)]
pub struct Nonce {
    session_id: SessionId,
    secret: [u8; 16],
}

macro_rules! secret_token {
    ($type:ident, $prefix:expr, $len:expr, $what:literal) => {
        impl $type {
            /// A fresh secret for `session_id`, drawn from `rng`.
            pub fn generate(session_id: SessionId, rng: &mut impl CryptoRng) -> Self {
                let mut secret = [0u8; $len];
                rng.fill_bytes(&mut secret);
                $type { session_id, secret }
            }

            /// Reads the wire form. `None` when the prefix, length, alphabet
            /// or checksum is wrong.
            pub fn parse(text: &str) -> Option<Self> {
                let bytes = decode_checked(text, $prefix, 16 + $len)?;
                let (id, secret) = bytes.split_at(16);
                Some($type {
                    session_id: SessionId::from_bytes(id.try_into().ok()?),
                    secret: secret.try_into().ok()?,
                })
            }

            /// The session this secret belongs to.
            pub fn session_id(&self) -> SessionId {
                self.session_id
            }

            /// The hash the store keeps in place of the secret.
            pub fn hash(&self) -> SecretHash {
                SecretHash::of(&self.secret)
            }

            /// The wire form. Call only to hand the secret to its owner.
            pub fn expose(&self) -> String {
                let mut bytes = Vec::with_capacity(16 + $len + CHECKSUM_LEN);
                bytes.extend_from_slice(self.session_id.as_bytes());
                bytes.extend_from_slice(&self.secret);
                encode_checked($prefix, bytes)
            }
        }

        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "({} [redacted])"), self.session_id)
            }
        }
    };
}

secret_token!(SessionKey, SESSION_KEY_PREFIX, 32, "SessionKey");
secret_token!(Nonce, NONCE_PREFIX, 16, "Nonce");

impl SessionKey {
    /// Reads a session token as presented by a caller.
    pub fn parse_presented(text: &str) -> Result<Self> {
        SessionKey::parse(text).ok_or(Error::SessionInvalid)
    }
}

impl Nonce {
    /// Reads a nonce as presented by an admin. A malformed nonce is as
    /// unknown as a forgotten one.
    pub fn parse_presented(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::invalid("nonce", "is required"));
        }
        Nonce::parse(text).ok_or(Error::NonceNotFound)
    }
}

/// An admin key from configuration, kept only as its hash.
#[derive(Clone)]
pub struct AdminKey(SecretHash);

impl AdminKey {
    /// Shortest admin key accepted from configuration.
    pub const MIN_LEN: usize = 24;

    /// Accepts a configured key of at least [`AdminKey::MIN_LEN`] visible
    /// ASCII characters.
    pub fn from_configured(text: &str) -> Result<Self, &'static str> {
        if text.len() < Self::MIN_LEN {
            return Err("an admin key needs at least 24 characters");
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err("an admin key is visible ASCII with no spaces");
        }
        Ok(AdminKey(SecretHash::of(text.as_bytes())))
    }

    /// A fresh admin key's text, `sigil_admin_` and 256 random bits, for
    /// `sigil dev`.
    pub fn generate_text(rng: &mut impl CryptoRng) -> String {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        encode_checked(ADMIN_KEY_PREFIX, secret.to_vec())
    }

    /// Whether `presented` is this key, in time independent of where they
    /// differ.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.matches(&SecretHash::of(presented.as_bytes()))
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey([redacted])")
    }
}

/// SHA-256 of a secret: what the store keeps instead of the secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The hash of `secret`.
    pub fn of(secret: &[u8]) -> Self {
        SecretHash(Sha256::digest(secret).into())
    }

    /// Compares in constant time, so timing does not reveal how much of a
    /// guess was right.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

impl Serialize for SecretHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::id_text::deserialize_text(deserializer, "64 hex digits", |text| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(text, &mut bytes).ok()?;
            Some(SecretHash(bytes))
        })
    }
}

fn encode_checked(prefix: &str, mut bytes: Vec<u8>) -> String {
    let checksum = crc32fast::hash(&bytes).to_be_bytes();
    bytes.extend_from_slice(&checksum);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&bytes))
}

fn decode_checked(text: &str, prefix: &str, payload_len: usize) -> Option<Vec<u8>> {
    let encoded = text.strip_prefix(prefix)?;
    // Reject on length before decoding so an oversized string costs nothing.
    if encoded.len() != (payload_len + CHECKSUM_LEN).div_ceil(3) * 4 - padding(payload_len) {
        return None;
    }
    let mut bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    if bytes.len() != payload_len + CHECKSUM_LEN {
        return None;
    }
    let checksum = bytes.split_off(payload_len);
    (crc32fast::hash(&bytes).to_be_bytes()[..] == checksum[..]).then_some(bytes)
}

/// How many `=` a padded base64 encoding of the checked payload would end
/// with, which the unpadded form leaves out.
fn padding(payload_len: usize) -> usize {
    match (payload_len + CHECKSUM_LEN) % 3 {
        0 => 0,
        1 => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests;
