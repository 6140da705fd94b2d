//! Where Sigil keeps sessions and API tokens: the [`SessionStore`] and
//! [`ApiTokenStore`] traits, a Redis store shared by a cluster of services,
//! and an in-memory store for one process.
//!
//! A store is deliberately dumb: it keeps versioned records and a subject
//! index, and replaces a record only if nobody changed it since it was read.
//! Every rule about what a change may be lives in `sigil_domain`.

mod api_tokens;
mod cache_counters;
mod cached;
mod clock;
mod events;
mod jwt;
mod memory;
mod redis_store;
mod worker;

use std::sync::Arc;

use async_trait::async_trait;
use sigil_domain::{ApiTokenId, Event, EventKind, Result, SessionId, SessionRecord, Subject};
use sigil_jwt::StoredSigningKey;

pub use api_tokens::{ApiTokenPage, ApiTokenStore};
pub use cache_counters::CacheCounters;
pub use cached::{
    CachedSessions, InvalidationSource, Invalidations, SessionCacheSettings, SessionTracking,
    TrackedCache,
};
pub use clock::SystemClock;
pub use events::{DEFAULT_EVENT_RETENTION, EventStore, FeedState};

/// Pending sessions a store holds at most when the operator does not say.
pub const DEFAULT_MAX_PENDING_SESSIONS: usize = 1_000_000;
pub use jwt::JwtStore;
pub use memory::MemoryStore;
pub use redis_store::{RedisConfig, RedisStore};
pub use worker::set_worker_thread;

/// One page of a subject's sessions.
#[derive(Debug, Default)]
pub struct SubjectPage {
    /// Live records of the subject, oldest first.
    pub records: Vec<SessionRecord>,
    /// Where the next page starts; `None` when this was the last.
    pub next_cursor: Option<String>,
}

/// Storage of session records. Every failure to reach the store is
/// `Error::Unavailable`, never an empty answer.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new (pending) record, to be forgotten at
    /// `record.evict_at()`, and indexes it under its subject; publishes
    /// `SessionCreated` with it. `Error::PendingSessionsFull` if the store
    /// already holds its maximum of pending sessions (nothing is written).
    async fn insert(&self, record: &SessionRecord) -> Result<()>;

    /// The record of session `id`, unless it is unknown or evicted. One
    /// round trip.
    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>>;

    /// The same as [`get`](Self::get), shared: a cache hands out its own
    /// copy without cloning it. This default wraps `get`.
    async fn get_shared(&self, id: SessionId) -> Result<Option<Arc<SessionRecord>>> {
        Ok(self.get(id).await?.map(Arc::new))
    }

    /// The records of sessions `ids`, in the same order, `None` for each
    /// unknown or evicted one. Stores override this to answer in one round
    /// trip however many ids there are, and none for none; this default
    /// costs one `get` per id.
    async fn get_many(&self, ids: &[SessionId]) -> Result<Vec<Option<SessionRecord>>> {
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            records.push(self.get(*id).await?);
        }
        Ok(records)
    }

    /// Replaces the stored record with `record` if the stored one still has
    /// revision `record.revision - 1`, and publishes the event of kind
    /// `change` in the same step. `false` when it changed or vanished
    /// meanwhile (and nothing is published).
    async fn replace(&self, record: &SessionRecord, change: EventKind) -> Result<bool>;

    /// Makes sure `record`, as stored, is as durable as a change would be
    /// made now: for a retried revocation that finds the session already
    /// revoked. Stores without replicas to wait for have nothing to do.
    async fn confirm(&self, record: &SessionRecord) -> Result<()> {
        let _ = record;
        Ok(())
    }

    /// Up to `limit` records of `subject` created after `cursor`, oldest
    /// first.
    async fn subject_sessions(
        &self,
        subject: &Subject,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<SubjectPage>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<()>;
}

/// The subject index's entry for a record: creation time first, so the
/// index's lexical order is creation order, then the id to break ties.
fn index_member(record: &SessionRecord) -> String {
    format!(
        "{:020}:{}",
        record.session.created_at.unix_ms().max(0),
        record.session.id
    )
}

/// The session id at the end of an index entry.
fn id_of_member(member: &str) -> Option<SessionId> {
    member.rsplit(':').next()?.parse().ok()
}

/// The event of a template change.
fn template_event(kind: EventKind, name: &str) -> Event {
    Event {
        template: Some(name.to_owned()),
        ..Event::new(kind)
    }
}

/// The event of an API token change.
fn api_token_event(kind: EventKind, id: ApiTokenId) -> Event {
    Event {
        api_token_id: Some(id),
        ..Event::new(kind)
    }
}

/// The event of storing `key`: a new key, or one just retired.
fn signing_key_event(key: &StoredSigningKey) -> Event {
    let kind = if key.retired_at.is_some() {
        EventKind::SigningKeyRetired
    } else {
        EventKind::SigningKeyCreated
    };
    Event {
        kid: Some(key.kid.clone()),
        ..Event::new(kind)
    }
}
