//! A near-cache of session records for validators: [`CachedSessions`]
//! answers reads from process memory, and forgets a session the moment it
//! learns that the session changed: from the event feed (the default), or
//! from Redis' own client-side-caching invalidations ([`Invalidations`]).
//!
//! Safety rules, in order of importance:
//! - The cache is used only while the invalidations are live. When their
//!   source goes down (or skips events), every entry is dropped at once and
//!   every read goes to the store until the source is back.
//! - A read that raced a change never fills the cache: an entry is kept
//!   only if no invalidation happened between starting the store read and
//!   storing the entry (a generation counter, checked after the insert).
//! - Expiry is not the cache's business: callers check `expires_at` on
//!   every answer, cached or not, so an entry is never served past it; the
//!   cache's own time-to-live only bounds memory.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use quick_cache::sync::Cache;
use sigil_domain::{EventCursor, EventKind, Result, SessionId, SessionRecord, Subject};
use tokio::sync::watch;

use crate::{CacheCounters, EventStore, FeedState, SessionStore, SubjectPage};

/// Events read from the feed at a time.
const INVALIDATION_PAGE: usize = 1000;

/// How much the near-cache may hold, and how it learns of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCacheSettings {
    /// Most sessions kept.
    pub max_entries: u64,
    /// Longest an entry is kept, however valid it stays.
    pub time_to_live: Duration,
    /// Where invalidations come from.
    pub invalidation: InvalidationSource,
}

impl Default for SessionCacheSettings {
    /// What `--session-cache` uses unless told otherwise.
    fn default() -> Self {
        SessionCacheSettings {
            max_entries: 100_000,
            time_to_live: Duration::from_secs(60),
            invalidation: InvalidationSource::EventFeed,
        }
    }
}

/// Which source of invalidations a near-cache follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InvalidationSource {
    /// The store's event feed: every change's event, in order, with a
    /// cursor that shows a gap (docs/benchmarks.md compares the two).
    #[default]
    EventFeed,
    /// Redis' server-assisted client-side caching: `CLIENT TRACKING ON
    /// BCAST` over RESP3 on a connection of its own, which pushes the name
    /// of every session key written. A single Redis only.
    KeyTracking,
}

/// The followed source of invalidations, as [`CachedSessions::new`] takes
/// it.
#[derive(Clone)]
pub enum Invalidations {
    /// The store's event feed.
    EventFeed(Arc<dyn EventStore>),
    /// A source that pushes the sessions whose records changed.
    KeyTracking(Arc<dyn SessionTracking>),
}

/// A source that tells a cache, as they happen, which sessions' records
/// changed, such as Redis' key tracking.
pub trait SessionTracking: Send + Sync + 'static {
    /// Starts following changes for as long as the process runs (a task of
    /// its own), telling `cache` what changed and when it cannot tell.
    fn start(&self, cache: TrackedCache);
}

/// What a [`SessionTracking`] source may do to the cache it keeps exact.
#[derive(Clone)]
pub struct TrackedCache(Arc<Shared>);

impl TrackedCache {
    /// From now on every change will be told: the cache may be used.
    /// Reads that started before this hold records that may have changed
    /// untold, so none of them fills the cache.
    pub fn go_live(&self) {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.live.store(true, Ordering::SeqCst);
        tracing::info!("session cache live");
    }

    /// Session `id`'s record changed.
    pub fn forget(&self, id: SessionId) {
        self.0.forget(id);
    }

    /// Any record may have changed (the store was flushed), and the source
    /// still follows: empties the cache and stays live.
    pub fn forget_everything(&self) {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.entries.clear();
    }

    /// Changes may go untold from now on: drops every entry and stops
    /// using the cache until [`go_live`](Self::go_live).
    pub fn drop_all(&self, reason: &str) {
        if self.0.live.load(Ordering::SeqCst) {
            tracing::warn!(
                reason,
                "session cache dropped; reading the store until invalidations are back"
            );
            metrics::counter!("sigil_session_cache_drops_total").increment(1);
        }
        self.0.drop_all();
    }
}

/// Sessions read through an in-process cache that its invalidations (the
/// event feed or key tracking) keep exact. Writes, listings and pings go
/// straight to the store.
pub struct CachedSessions {
    store: Arc<dyn SessionStore>,
    shared: Arc<Shared>,
}

/// What the reads and the invalidation task share.
struct Shared {
    /// Each record with when it was read from the store. quick_cache
    /// rather than moka: moka's per-read bookkeeping (its read log and
    /// housekeeping) was ~8 % of a cached WhoAmI's server CPU under
    /// sigil-bench; a quick_cache read is a sharded lock and a lookup.
    entries: Cache<SessionId, (Arc<SessionRecord>, Instant)>,
    /// Longest an entry is used after it was read.
    time_to_live: Duration,
    /// Whether the feed is live and the entries may be trusted.
    live: AtomicBool,
    /// Bumped by every invalidation and every drop: a read that saw it
    /// change must not leave its record in the cache.
    generation: AtomicU64,
    /// `sigil_cache_requests_total{cache="session"}`.
    counters: CacheCounters,
}

impl Shared {
    fn drop_all(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }

    fn forget(&self, id: SessionId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(&id);
    }

    /// Keeps `record`, read by a read that started at `generation`, unless
    /// something was invalidated meanwhile.
    fn keep(&self, record: &Arc<SessionRecord>, generation: u64) {
        if !self.live.load(Ordering::SeqCst) {
            return;
        }
        let id = record.session.id;
        self.entries
            .insert(id, (Arc::clone(record), Instant::now()));
        // Checked after the insert: an invalidation that bumped the
        // generation before this check is seen here; one after it removes
        // the entry itself.
        if self.generation.load(Ordering::SeqCst) != generation {
            self.entries.remove(&id);
        }
    }

    fn cached(&self, id: SessionId) -> Option<Arc<SessionRecord>> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        let hit = match self.entries.get(&id) {
            Some((record, read_at)) if read_at.elapsed() < self.time_to_live => Some(record),
            Some(_) => {
                self.entries.remove(&id);
                None
            }
            None => None,
        };
        self.counters.count(hit.is_some());
        hit
    }
}

impl CachedSessions {
    /// A cache over `store`, kept exact by `invalidations` (the same
    /// store's feed or key tracking). Starts a task that follows them for
    /// as long as the process runs; until they are live, every read goes
    /// to the store.
    pub fn new(
        store: Arc<dyn SessionStore>,
        invalidations: Invalidations,
        settings: SessionCacheSettings,
    ) -> Self {
        let shared = Arc::new(Shared {
            entries: Cache::new(usize::try_from(settings.max_entries).unwrap_or(usize::MAX)),
            time_to_live: settings.time_to_live,
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            counters: CacheCounters::new("session"),
        });
        match invalidations {
            Invalidations::EventFeed(events) => {
                tokio::spawn(invalidate_forever(events, Arc::clone(&shared)));
            }
            Invalidations::KeyTracking(source) => {
                source.start(TrackedCache(Arc::clone(&shared)));
            }
        }
        CachedSessions { store, shared }
    }

    /// Whether reads are being answered from the cache now.
    pub fn is_live(&self) -> bool {
        self.shared.live.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SessionStore for CachedSessions {
    async fn insert(&self, record: &SessionRecord) -> Result<()> {
        self.store.insert(record).await
    }

    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>> {
        Ok(self.get_shared(id).await?.map(Arc::unwrap_or_clone))
    }

    async fn get_shared(&self, id: SessionId) -> Result<Option<Arc<SessionRecord>>> {
        if let Some(record) = self.shared.cached(id) {
            return Ok(Some(record));
        }
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let record = self.store.get(id).await?.map(Arc::new);
        if let Some(record) = &record {
            self.shared.keep(record, generation);
        }
        Ok(record)
    }

    async fn get_many(&self, ids: &[SessionId]) -> Result<Vec<Option<SessionRecord>>> {
        let mut answers: Vec<Option<SessionRecord>> = ids
            .iter()
            .map(|id| self.shared.cached(*id).map(Arc::unwrap_or_clone))
            .collect();
        let missing: Vec<SessionId> = ids
            .iter()
            .zip(&answers)
            .filter(|(_, answer)| answer.is_none())
            .map(|(id, _)| *id)
            .collect();
        if missing.is_empty() {
            return Ok(answers);
        }
        let generation = self.shared.generation.load(Ordering::SeqCst);
        let fetched = self.store.get_many(&missing).await?;
        let mut fetched = missing.into_iter().zip(fetched);
        for answer in answers.iter_mut().filter(|answer| answer.is_none()) {
            if let Some((_, Some(record))) = fetched.next() {
                let record = Arc::new(record);
                self.shared.keep(&record, generation);
                *answer = Some(Arc::unwrap_or_clone(record));
            }
        }
        Ok(answers)
    }

    async fn replace(&self, record: &SessionRecord, change: EventKind) -> Result<bool> {
        self.store.replace(record, change).await
    }

    async fn confirm(&self, record: &SessionRecord) -> Result<()> {
        self.store.confirm(record).await
    }

    async fn subject_sessions(
        &self,
        subject: &Subject,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<SubjectPage> {
        self.store.subject_sessions(subject, cursor, limit).await
    }

    async fn ping(&self) -> Result<()> {
        self.store.ping().await
    }
}

/// Follows the feed, forgetting every session an event names; drops
/// everything whenever the feed cannot be trusted, and starts over.
async fn invalidate_forever(events: Arc<dyn EventStore>, shared: Arc<Shared>) {
    let mut feed = events.follow();
    let cache = TrackedCache(Arc::clone(&shared));
    loop {
        let Some(mut cursor) = wait_until_live(&mut feed).await else {
            return;
        };
        // Reads that started before this point may hold records older than
        // `cursor`: going live keeps them out of the cache.
        cache.go_live();
        let ended = follow(&*events, &mut feed, &shared, &mut cursor).await;
        cache.drop_all(ended);
        if feed.has_changed().is_err() {
            return;
        }
    }
}

/// Waits for the feed to be live; its newest cursor then. `None` if the
/// feed is gone for good.
async fn wait_until_live(feed: &mut watch::Receiver<FeedState>) -> Option<EventCursor> {
    loop {
        if let FeedState::Live { latest } = *feed.borrow_and_update() {
            return Some(latest);
        }
        feed.changed().await.ok()?;
    }
}

/// Applies events after `cursor` as the feed announces them, until the
/// feed goes down or skips; says why it stopped.
async fn follow(
    events: &dyn EventStore,
    feed: &mut watch::Receiver<FeedState>,
    shared: &Shared,
    cursor: &mut EventCursor,
) -> &'static str {
    loop {
        let state = *feed.borrow_and_update();
        match state {
            FeedState::Down => return "the event feed is down",
            FeedState::Live { latest } if latest > *cursor => {
                let page = match events.events_after(Some(*cursor), INVALIDATION_PAGE).await {
                    Ok(page) => page,
                    Err(_) => return "events could not be read without a gap",
                };
                for stored in &page {
                    if stored.event.kind.invalidates_session()
                        && let Some(id) = stored.event.session_id
                    {
                        shared.forget(id);
                    }
                    *cursor = stored.cursor;
                }
                // More may be waiting; look again before sleeping.
                if !page.is_empty() {
                    continue;
                }
            }
            FeedState::Live { .. } => {}
        }
        if feed.changed().await.is_err() {
            return "the event feed ended";
        }
    }
}
