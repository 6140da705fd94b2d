//! Admin authentication: `authorization: Bearer <admin key>` against the
//! configured keys, compared in constant time.

use std::sync::Arc;

use sigil_domain::{AdminKey, Error, Result};
use tonic::metadata::MetadataMap;

/// The admin keys this service accepts. Holds only their hashes.
#[derive(Clone, Debug, Default)]
pub struct AdminKeys(Arc<[AdminKey]>);

impl AdminKeys {
    /// Accepts exactly these keys.
    pub fn new(keys: Vec<AdminKey>) -> Self {
        AdminKeys(keys.into())
    }

    /// Whether no key is configured: every admin call will be refused.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Succeeds if `metadata` carries one of the keys.
    pub fn check(&self, metadata: &MetadataMap) -> Result<()> {
        let presented = bearer_token(metadata).ok_or(Error::AdminKeyMissing)?;
        // Check every key, with no early exit, so timing says nothing about
        // which key came close.
        let matched = self
            .0
            .iter()
            .fold(false, |matched, key| key.matches(presented) | matched);
        if matched {
            Ok(())
        } else {
            Err(Error::AdminKeyInvalid)
        }
    }
}

/// The token of an `authorization: Bearer <token>` header, if well formed.
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AdminKeys {
        AdminKeys::new(vec![
            AdminKey::from_configured("first-admin-key-0123456789").expect("valid"),
            AdminKey::from_configured("second-admin-key-0123456789").expect("valid"),
        ])
    }

    fn check(header: Option<&str>) -> Result<()> {
        let mut metadata = MetadataMap::new();
        if let Some(header) = header {
            metadata.insert("authorization", header.parse().expect("ascii"));
        }
        keys().check(&metadata)
    }

    #[test]
    fn any_configured_key_is_accepted() {
        assert!(check(Some("Bearer first-admin-key-0123456789")).is_ok());
        assert!(check(Some("bearer second-admin-key-0123456789")).is_ok());
    }

    #[test]
    fn missing_and_wrong_keys_are_refused() {
        assert!(matches!(check(None), Err(Error::AdminKeyMissing)));
        assert!(matches!(
            check(Some("Basic abc")),
            Err(Error::AdminKeyMissing)
        ));
        assert!(matches!(
            check(Some("Bearer ")),
            Err(Error::AdminKeyMissing)
        ));
        assert!(matches!(
            check(Some("Bearer first-admin-key-012345678")),
            Err(Error::AdminKeyInvalid)
        ));
    }
}
