//! The event feed: the [`EventStore`] trait and what it tells followers.
//!
//! Stores append an event in the same atomic step as the change it records
//! (a session's script, a token's write) and number events 1, 2, 3, …
//! without gaps, so a reader can tell "nothing new" from "missed some". On
//! a Redis Cluster the event follows the change as a step of its own, and
//! may be lost with the process between the two
//! ([`EventStore::every_change_has_its_event`] says so).

use async_trait::async_trait;
use sigil_domain::{Event, EventCursor, Result, StoredEvent};
use tokio::sync::watch;

/// Events kept when the operator does not say.
pub const DEFAULT_EVENT_RETENTION: usize = 100_000;

/// What a follower of the feed may rely on right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedState {
    /// The feed is followed live; `latest` is the newest event known (0
    /// when there is none yet). Every event up to it can be read with
    /// [`EventStore::events_after`].
    Live {
        /// The newest event's cursor.
        latest: EventCursor,
    },
    /// The store cannot be followed now (Redis unreachable, the stream
    /// reset): a follower may have missed events and must not trust what
    /// it derived from them.
    Down,
}

/// Storage and following of events. Every failure to reach the store is
/// `Error::Unavailable`.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends an event that is not part of a stored change (a summary such
    /// as `SubjectSessionsRevoked`).
    async fn publish(&self, event: &Event) -> Result<()>;

    /// Up to `limit` events after `after` (from the oldest retained when
    /// `None`), oldest first. `Error::EventCursorExpired` when an event
    /// after `after` is no longer retained, or `after` is newer than any
    /// event (the store lost its state since the cursor was given out).
    async fn events_after(
        &self,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;

    /// The newest event's cursor; 0 when there is none yet.
    async fn latest_event(&self) -> Result<EventCursor>;

    /// The feed's state, changing whenever an event is appended or the
    /// feed goes down or comes back.
    fn follow(&self) -> watch::Receiver<FeedState>;

    /// Whether every stored change has its event, appended in the same
    /// atomic step. A cache kept exact by the feed needs this; a Redis
    /// Cluster store, which appends the event after the change (another
    /// slot), does not give it.
    fn every_change_has_its_event(&self) -> bool {
        true
    }

    /// The store's own tracking of changed session keys, where it has one
    /// (a single Redis: RESP3 client tracking); `None` otherwise.
    fn session_tracking(&self) -> Option<std::sync::Arc<dyn crate::SessionTracking>> {
        None
    }
}

/// Checks a page read after `after` against the newest cursor the store
/// holds: the page must start right after `after`, or be empty because
/// nothing is newer. Anything else means events were lost to retention or
/// to a reset store.
pub(crate) fn check_continuity(
    after: Option<EventCursor>,
    page: &[StoredEvent],
    latest: EventCursor,
) -> Result<()> {
    let Some(after) = after else {
        return Ok(());
    };
    let continuous = match page.first() {
        Some(first) => first.cursor == after.next(),
        None => after == latest,
    };
    if continuous {
        Ok(())
    } else {
        Err(sigil_domain::Error::EventCursorExpired)
    }
}

#[cfg(test)]
mod tests {
    use sigil_domain::{EventKind, Timestamp};

    use super::*;

    fn at(cursor: u64) -> StoredEvent {
        StoredEvent {
            cursor: EventCursor(cursor),
            at: Timestamp::from_unix_ms(0),
            event: Event::new(EventKind::TemplatePut),
        }
    }

    #[test]
    fn continuity_holds_only_without_a_gap() {
        let latest = EventCursor(9);
        assert!(check_continuity(None, &[at(7)], latest).is_ok());
        assert!(check_continuity(Some(EventCursor(6)), &[at(7), at(8)], latest).is_ok());
        assert!(check_continuity(Some(EventCursor(9)), &[], latest).is_ok());
        // Trimmed: the first retained event is not the next one.
        assert!(check_continuity(Some(EventCursor(5)), &[at(7)], latest).is_err());
        // Deleted: nothing retained though newer events exist.
        assert!(check_continuity(Some(EventCursor(5)), &[], latest).is_err());
        // Reset: the cursor is from before the store lost its state.
        assert!(check_continuity(Some(EventCursor(12)), &[], latest).is_err());
    }
}
