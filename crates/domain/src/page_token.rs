//! ListSessions page tokens: opaque, and bound by an HMAC to the subject and
//! the state filter they were issued for, so a token cannot be edited, or
//! replayed for another subject or filter.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, Result, Subject};

/// Bytes of the HMAC kept in a token: 128 bits.
const TAG_LEN: usize = 16;

/// The key that signs page tokens. Every issuer of a cluster needs the same
/// key for a token from one to work at another.
#[derive(Clone)]
pub struct PageTokenKey([u8; 32]);

impl std::fmt::Debug for PageTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PageTokenKey([redacted])")
    }
}

impl PageTokenKey {
    /// A key of these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        PageTokenKey(bytes)
    }

    /// The token for the page after `cursor` of `subject`'s sessions listed
    /// with `filter` (any stable text naming the filter).
    pub fn seal(&self, subject: &Subject, filter: &str, cursor: &str) -> String {
        let tag = self.tag(subject, filter, cursor);
        let mut bytes = Vec::with_capacity(TAG_LEN + cursor.len());
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        bytes.extend_from_slice(cursor.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The cursor inside `token`, if this key sealed it for this `subject`
    /// and `filter`; INVALID_ARGUMENT `page_token` otherwise.
    pub fn open(&self, token: &str, subject: &Subject, filter: &str) -> Result<String> {
        let refused = || {
            Error::invalid(
                "page_token",
                "is not a token this server issued for this request",
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| refused())?;
        if bytes.len() <= TAG_LEN {
            return Err(refused());
        }
        let (tag, cursor) = bytes.split_at(TAG_LEN);
        let cursor = std::str::from_utf8(cursor).map_err(|_| refused())?;
        let expected = self.tag(subject, filter, cursor);
        if bool::from(expected[..TAG_LEN].ct_eq(tag)) {
            Ok(cursor.to_owned())
        } else {
            Err(refused())
        }
    }

    /// HMAC-SHA256 (RFC 2104) over the length-prefixed parts, so no two
    /// different (subject, filter, cursor) give the same message.
    fn tag(&self, subject: &Subject, filter: &str, cursor: &str) -> [u8; 32] {
        let mut message = Vec::new();
        for part in [subject.as_str(), filter, cursor] {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part.as_bytes());
        }
        hmac_sha256(&self.0, &message)
    }
}

/// HMAC-SHA256 with a 32-byte key.
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner_pad = [0x36u8; 64];
    let mut outer_pad = [0x5cu8; 64];
    for (index, byte) in key.iter().enumerate() {
        inner_pad[index] ^= byte;
        outer_pad[index] ^= byte;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(name: &str) -> Subject {
        Subject::parse(name, "subject").expect("valid")
    }

    #[test]
    fn a_token_opens_only_for_its_subject_filter_and_key() {
        let key = PageTokenKey::from_bytes([7; 32]);
        let alice = subject("alice");
        let token = key.seal(&alice, "active", "00000001:sess_x");
        assert_eq!(
            key.open(&token, &alice, "active").ok().as_deref(),
            Some("00000001:sess_x")
        );
        assert!(key.open(&token, &subject("bob"), "active").is_err());
        assert!(key.open(&token, &alice, "").is_err());
        assert!(
            PageTokenKey::from_bytes([8; 32])
                .open(&token, &alice, "active")
                .is_err()
        );
    }

    #[test]
    fn an_edited_or_made_up_token_is_refused() {
        let key = PageTokenKey::from_bytes([7; 32]);
        let alice = subject("alice");
        let token = key.seal(&alice, "", "00000001:sess_x");
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let edited = URL_SAFE_NO_PAD.encode(bytes);
        for bad in [
            edited.as_str(),
            "",
            "!!",
            "AAAA",
            &URL_SAFE_NO_PAD.encode("00000001:sess_x"),
        ] {
            assert!(key.open(bad, &alice, "").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_tag_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2; a key shorter than the block is zero padded,
        // so "Jefe" and "Jefe" followed by zeros are the same HMAC key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
