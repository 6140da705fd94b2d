//! The near-cache's command-line flags.

use std::time::Duration;

use clap::Args;
use sigil_store::SessionCacheSettings;

/// Flags that turn on the session near-cache.
#[derive(Debug, Clone, Args)]
pub struct SessionCacheArgs {
    /// Answer WhoAmI, CheckAccess and VerifyToken's session check from an
    /// in-process cache that the event feed keeps exact (a revoked session
    /// is forgotten as soon as its event arrives; the cache is dropped
    /// whenever the feed is down).
    #[arg(long, env = "SIGIL_SESSION_CACHE")]
    pub session_cache: bool,
    /// Most sessions the near-cache holds.
    #[arg(long, env = "SIGIL_SESSION_CACHE_SIZE", default_value_t = 100_000)]
    pub session_cache_size: u64,
    /// Longest the near-cache keeps a session, however valid it stays.
    #[arg(long, env = "SIGIL_SESSION_CACHE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub session_cache_ttl: Duration,
}

impl SessionCacheArgs {
    /// The cache's settings, if it is on.
    pub fn settings(&self) -> Option<SessionCacheSettings> {
        self.session_cache.then_some(SessionCacheSettings {
            max_entries: self.session_cache_size,
            time_to_live: self.session_cache_ttl,
        })
    }
}
