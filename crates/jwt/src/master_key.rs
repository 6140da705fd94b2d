//! The master key: AES-256-GCM over private keys and shared secrets at rest.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand_core::CryptoRng;

/// Encrypts key material before it reaches the store. Each sealed value is
/// bound to a context string (the key id), so a sealed value copied to
/// another record does not open.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Reads a master key: 32 bytes in standard or URL-safe base64.
    pub fn from_base64(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| "the master key must be base64")?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the master key must be 32 bytes (44 base64 characters)")?;
        Ok(MasterKey(bytes))
    }

    /// A fresh key, for `sigil dev`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        MasterKey(bytes)
    }

    /// A key for `purpose` derived from this one (HMAC-SHA256 of the purpose
    /// under the master key), so every process with the same master key
    /// derives the same key, and the master key itself is used for one job.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let tag = aws_lc_rs::hmac::sign(&key, purpose.as_bytes());
        let mut derived = [0u8; 32];
        derived.copy_from_slice(tag.as_ref());
        derived
    }

    /// The key in standard base64, to print once.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Encrypts `plaintext` bound to `context`: base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plaintext: &[u8], context: &str, rng: &mut impl CryptoRng) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut sealed = plaintext.to_vec();
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Decrypts what [`MasterKey::seal`] made for `context`; `None` if it was
    /// made with another key or context, or was altered.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .ok()?;
        Some(plaintext.to_vec())
    }

    fn key(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &self.0).expect("32 bytes is an AES-256 key"),
        )
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}
