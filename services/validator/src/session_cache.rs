//! The near-cache's command-line flags.

use std::time::Duration;

use clap::{Args, ValueEnum};
use sigil_store::{InvalidationSource, SessionCacheSettings};

/// Flags that turn on the session near-cache.
#[derive(Debug, Clone, Args)]
pub struct SessionCacheArgs {
    /// Answer WhoAmI, CheckAccess and VerifyToken's session check from an
    /// in-process cache that the event feed (or Redis key tracking, see
    /// `--session-cache-invalidation`) keeps exact: a revoked session is
    /// forgotten as soon as the invalidation arrives, and the whole cache
    /// is dropped whenever the invalidations are down.
    #[arg(long, env = "SIGIL_SESSION_CACHE")]
    pub session_cache: bool,
    /// Most sessions the near-cache holds.
    #[arg(long, env = "SIGIL_SESSION_CACHE_SIZE", default_value_t = 100_000)]
    pub session_cache_size: u64,
    /// Longest the near-cache keeps a session, however valid it stays.
    #[arg(long, env = "SIGIL_SESSION_CACHE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub session_cache_ttl: Duration,
    /// Where the near-cache learns that a session changed: the event feed
    /// (default), or Redis' client-side-caching invalidations (RESP3
    /// `CLIENT TRACKING` in broadcast mode; a single Redis only). Both
    /// were measured: docs/benchmarks.md, "Event feed or key tracking".
    #[arg(
        long,
        env = "SIGIL_SESSION_CACHE_INVALIDATION",
        value_enum,
        default_value_t = Invalidation::EventFeed
    )]
    pub session_cache_invalidation: Invalidation,
}

/// `--session-cache-invalidation`'s values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Invalidation {
    /// The store's event feed.
    EventFeed,
    /// Redis key tracking.
    KeyTracking,
}

impl Invalidation {
    /// The value as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Invalidation::EventFeed => "event-feed",
            Invalidation::KeyTracking => "key-tracking",
        }
    }
}

impl From<Invalidation> for InvalidationSource {
    fn from(invalidation: Invalidation) -> Self {
        match invalidation {
            Invalidation::EventFeed => InvalidationSource::EventFeed,
            Invalidation::KeyTracking => InvalidationSource::KeyTracking,
        }
    }
}

impl SessionCacheArgs {
    /// The cache's settings, if it is on.
    pub fn settings(&self) -> Option<SessionCacheSettings> {
        self.session_cache.then_some(SessionCacheSettings {
            max_entries: self.session_cache_size,
            time_to_live: self.session_cache_ttl,
            invalidation: self.session_cache_invalidation.into(),
        })
    }
}
