//! Storage of API tokens: the [`ApiTokenStore`] trait and the index entry
//! both implementations list by.

use async_trait::async_trait;
use sigil_domain::{ApiTokenId, ApiTokenRecord, Result};

/// One page of API tokens.
#[derive(Debug, Default)]
pub struct ApiTokenPage {
    /// Live records, oldest first, each with the cursor that continues
    /// right after it (for a caller that stops mid-page).
    pub records: Vec<(String, ApiTokenRecord)>,
    /// Where the next page starts; `None` when this was the last.
    pub next_cursor: Option<String>,
}

/// Storage of API token records: the token and the hash of its secret,
/// never the secret. Every failure to reach the store is
/// `Error::Unavailable`, never an empty answer.
#[async_trait]
pub trait ApiTokenStore: Send + Sync + 'static {
    /// Stores a new record, indexed for listing, to be forgotten at its
    /// expiry. `Error::Conflict` if the id is taken.
    async fn insert_token(&self, record: &ApiTokenRecord) -> Result<()>;

    /// The records of `ids`, in the same order; `None` for an unknown,
    /// revoked or evicted id. One round trip for any number of ids, none
    /// for none.
    async fn tokens(&self, ids: &[ApiTokenId]) -> Result<Vec<Option<ApiTokenRecord>>>;

    /// Removes the record of `id` and returns it as it was; `None` if there
    /// was none.
    async fn remove_token(&self, id: ApiTokenId) -> Result<Option<ApiTokenRecord>>;

    /// Up to `limit` index entries' records created after `cursor`, oldest
    /// first. Entries whose record is gone are skipped (and pruned), so a
    /// page may hold fewer records than `limit` and still not be the last.
    async fn list_tokens(&self, cursor: Option<&str>, limit: usize) -> Result<ApiTokenPage>;
}

/// The index entry of a token: creation time first, so lexical order is
/// creation order, then the id to break ties.
pub(crate) fn token_member(record: &ApiTokenRecord) -> String {
    format!(
        "{:020}:{}",
        record.token.created_at.unix_ms().max(0),
        record.token.id
    )
}

/// The token id at the end of an index entry.
pub(crate) fn token_id_of_member(member: &str) -> Option<ApiTokenId> {
    member.rsplit(':').next()?.parse().ok()
}
