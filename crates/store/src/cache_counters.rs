//! `sigil_cache_requests_total`, counted by every cache on its hot path.

use std::sync::OnceLock;

/// `sigil_cache_requests_total{cache=…, result="hit"|"miss"}` of one cache.
/// The two handles are made on the first count (the metrics recorder is
/// installed only when serving starts) and kept, rather than looked up in
/// the registry by their labels on every read.
pub struct CacheCounters {
    cache: &'static str,
    handles: OnceLock<[metrics::Counter; 2]>,
}

impl CacheCounters {
    /// The counters of the cache labelled `cache`.
    pub const fn new(cache: &'static str) -> Self {
        CacheCounters {
            cache,
            handles: OnceLock::new(),
        }
    }

    /// Counts one read: a hit or a miss.
    pub fn count(&self, hit: bool) {
        let [hits, misses] = self.handles.get_or_init(|| {
            ["hit", "miss"].map(|result| {
                metrics::counter!("sigil_cache_requests_total", "cache" => self.cache, "result" => result)
            })
        });
        if hit { hits } else { misses }.increment(1);
    }
}
