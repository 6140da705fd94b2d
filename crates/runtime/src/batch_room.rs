//! Room for batch entries: one bound, per process, on the entries of batch
//! calls (BatchWhoAmI, BatchVerifyTokens, ValidateTokens, `/edge/validate`)
//! being answered at once. A batch waits for room before its store read
//! or its signature checks, and holds it until it is answered.
//!
//! Without it, many large batches on one core each wait for the others'
//! decoding while their Redis deadline runs, and miss it; and each holds
//! its reply, records and answer at once (docs/benchmarks.md, "What each
//! fix bought"). A waiting batch holds only its request.

use std::sync::Arc;

use sigil_domain::{Error, Result};
use tokio::sync::{Semaphore, SemaphorePermit};

/// The default bound: about 30 ms of one core's work and 8 MB for API
/// tokens, eight batches of the largest default size at a time.
pub const DEFAULT_MAX_BATCH_ENTRIES_IN_FLIGHT: usize = 8192;

/// Room for [`Limits::max_batch_entries_in_flight`](crate::Limits) entries,
/// shared by every batch call of the process.
#[derive(Debug, Clone)]
pub struct BatchRoom {
    permits: Arc<Semaphore>,
    capacity: u32,
}

impl BatchRoom {
    /// Room for `capacity` entries at once (at least one).
    pub fn new(capacity: usize) -> BatchRoom {
        let capacity = u32::try_from(capacity.max(1))
            .unwrap_or(u32::MAX)
            .min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        BatchRoom {
            permits: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Waits until there is room for `entries` entries of a `method` batch,
    /// and holds it until the returned guard drops. Batches are admitted in
    /// the order they arrive. One larger than the whole room waits for all
    /// of it, so it still runs, alone.
    pub async fn enter(&self, method: &'static str, entries: usize) -> Result<SemaphorePermit<'_>> {
        let entries = u32::try_from(entries.max(1))
            .unwrap_or(u32::MAX)
            .min(self.capacity);
        if let Ok(room) = self.permits.try_acquire_many(entries) {
            return Ok(room);
        }
        let _waiting = Waiting::count(method, entries);
        self.permits
            .acquire_many(entries)
            .await
            .map_err(|_| Error::Unavailable("the batch admission closed".into()))
    }
}

/// Entries counted in `sigil_batch_entries_waiting` until dropped, so a
/// call given up while it waits (its deadline past) is uncounted too.
struct Waiting {
    gauge: metrics::Gauge,
    entries: f64,
}

impl Waiting {
    fn count(method: &'static str, entries: u32) -> Waiting {
        let gauge = metrics::gauge!("sigil_batch_entries_waiting", "method" => method);
        let entries = f64::from(entries);
        gauge.increment(entries);
        Waiting { gauge, entries }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.gauge.decrement(self.entries);
    }
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future,
        pin::{Pin, pin},
        task::{Context, Poll, Waker},
    };

    use super::*;

    /// Whether `future` is done after one poll.
    fn ready<F: Future>(future: Pin<&mut F>) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        matches!(future.poll(&mut context), Poll::Ready(_))
    }

    #[tokio::test]
    async fn a_batch_waits_until_the_room_it_needs_is_free() {
        let room = BatchRoom::new(10);
        let first = room.enter("BatchWhoAmI", 8).await.expect("room");
        let mut second = pin!(room.enter("BatchWhoAmI", 3));
        assert!(!ready(second.as_mut()));
        drop(first);
        assert!(ready(second.as_mut()));
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_room_takes_all_of_it() {
        let room = BatchRoom::new(10);
        let whole = room.enter("ValidateTokens", 1000).await.expect("room");
        assert_eq!(whole.num_permits(), 10);
        let mut next = pin!(room.enter("ValidateTokens", 1));
        assert!(!ready(next.as_mut()));
        drop(whole);
        assert!(ready(next.as_mut()));
    }

    #[tokio::test]
    async fn an_empty_batch_still_takes_one_entry() {
        let room = BatchRoom::new(1);
        let one = room.enter("BatchVerifyTokens", 0).await.expect("room");
        assert_eq!(one.num_permits(), 1);
    }
}
