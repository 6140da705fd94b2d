//! Storage of what JWTs need: token templates, signing keys (sealed), and
//! consumed `jti`s.

use async_trait::async_trait;
use sigil_domain::{Result, Timestamp};
use sigil_jwt::{StoredSigningKey, StoredTemplate};

/// Templates, signing keys and consumed token ids. Every failure to reach
/// the store is `Error::Unavailable`.
#[async_trait]
pub trait JwtStore: Send + Sync + 'static {
    /// Stores a template under a name not yet taken; `false` if it is.
    async fn create_template(&self, template: &StoredTemplate) -> Result<bool>;
    /// Stores a template over whatever has its name.
    async fn replace_template(&self, template: &StoredTemplate) -> Result<()>;
    /// The template named `name`.
    async fn template(&self, name: &str) -> Result<Option<StoredTemplate>>;
    /// Every template.
    async fn templates(&self) -> Result<Vec<StoredTemplate>>;
    /// Deletes a template; `false` if there was none.
    async fn delete_template(&self, name: &str) -> Result<bool>;

    /// Every stored signing key, retired ones included.
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>>;
    /// Stores a signing key over any with its kid.
    async fn put_signing_key(&self, key: &StoredSigningKey) -> Result<()>;
    /// Forgets a signing key.
    async fn remove_signing_key(&self, kid: &str) -> Result<()>;

    /// Marks `jti` used until `expires_at`; `false` if it already was. Atomic
    /// across every process sharing the store.
    async fn consume_jti(&self, jti: &str, expires_at: Timestamp) -> Result<bool>;
}
