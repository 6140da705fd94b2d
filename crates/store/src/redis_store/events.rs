//! The event feed in Redis.
//!
//! Layout: `sigil:{events}:stream` is a stream of entries `<cursor>-0`
//! with fields `at` (Unix ms, Redis' clock) and `event` (JSON), trimmed to
//! about the configured retention; `sigil:{events}:counter` is the newest
//! cursor. Both carry the same hash tag, so one `MULTI` reads them together.
//! On a single Redis the scripts that change a session, token, template or
//! key append the event in the same script (see `EMIT`); on a cluster the
//! event is appended right after the change (see `cluster.rs`).
//!
//! Following: one task per store holds its own connection and blocks in
//! `XREAD` for new entries, publishing the newest cursor to every follower
//! in the process; followers then read what they need with
//! [`EventStore::events_after`]. A blocking read would stall every other
//! call on a shared (multiplexed) connection, hence the dedicated one.

use std::{sync::Arc, time::Duration};

use super::connection::{Connection, Target, pause_before_reconnecting};
use async_trait::async_trait;
use sigil_domain::{Error, Event, EventCursor, Result, StoredEvent, Timestamp};
use tokio::sync::watch;

use super::{RedisStore, decode, encode};
use crate::{EventStore, FeedState, events::check_continuity};

pub(super) const EVENT_STREAM_KEY: &str = "sigil:{events}:stream";
pub(super) const EVENT_COUNTER_KEY: &str = "sigil:{events}:counter";

/// How long the follower blocks in one `XREAD`. Between two reads it checks
/// that the stream was not reset, so this bounds how late it notices.
const FOLLOW_BLOCK: Duration = Duration::from_millis(500);
/// Most entries one follower `XREAD` returns.
const FOLLOW_COUNT: usize = 1000;

/// A stream entry as redis-rs reads it: id and flat field/value list.
type Entry = (String, Vec<String>);
/// An `XREAD` answer: per stream, its name and new entries; nil if none.
type ReadReply = Option<Vec<(String, Vec<Entry>)>>;

fn parse_entry((id, fields): Entry) -> Result<StoredEvent> {
    let corrupt = |why: &str| Error::CorruptRecord(format!("event {id}: {why}").into());
    let cursor = id
        .strip_suffix("-0")
        .and_then(|number| number.parse().ok())
        .map(EventCursor)
        .ok_or_else(|| corrupt("id is not a cursor"))?;
    let mut at = None;
    let mut event = None;
    for pair in fields.chunks_exact(2) {
        match pair[0].as_str() {
            "at" => at = pair[1].parse().ok().map(Timestamp::from_unix_ms),
            "event" => event = Some(decode::<Event>(&pair[1])?),
            _ => {}
        }
    }
    Ok(StoredEvent {
        cursor,
        at: at.ok_or_else(|| corrupt("no time"))?,
        event: event.ok_or_else(|| corrupt("no event"))?,
    })
}

/// Reads up to `limit` events after `after` together with the newest
/// cursor, in one `MULTI`, and checks that nothing between is missing.
async fn read_after(
    connection: &mut impl redis::aio::ConnectionLike,
    after: Option<EventCursor>,
    limit: usize,
) -> redis::RedisResult<Result<Vec<StoredEvent>>> {
    let start = after.map_or_else(|| "-".to_owned(), |after| format!("{}-0", after.next()));
    let (entries, latest): (Vec<Entry>, Option<u64>) = redis::pipe()
        .atomic()
        .cmd("XRANGE")
        .arg(EVENT_STREAM_KEY)
        .arg(start)
        .arg("+")
        .arg("COUNT")
        .arg(limit)
        .cmd("GET")
        .arg(EVENT_COUNTER_KEY)
        .query_async(connection)
        .await?;
    Ok(entries
        .into_iter()
        .map(parse_entry)
        .collect::<Result<Vec<_>>>()
        .and_then(|page| {
            check_continuity(after, &page, EventCursor(latest.unwrap_or(0)))?;
            Ok(page)
        }))
}

#[async_trait]
impl EventStore for RedisStore {
    async fn publish(&self, event: &Event) -> Result<()> {
        let mut invocation = self.publish.key(EVENT_STREAM_KEY);
        invocation
            .key(EVENT_COUNTER_KEY)
            .arg(encode(event)?)
            .arg(self.event_retention);
        let mut connection = self.connection();
        self.call(invocation.invoke_async::<i64>(&mut connection))
            .await
            .map(drop)
    }

    async fn events_after(
        &self,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let mut connection = self.connection();
        self.call(read_after(&mut connection, after, limit)).await?
    }

    async fn latest_event(&self) -> Result<EventCursor> {
        let mut connection = self.connection();
        let latest: Option<u64> = self
            .call(
                redis::cmd("GET")
                    .arg(EVENT_COUNTER_KEY)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(EventCursor(latest.unwrap_or(0)))
    }

    fn every_change_has_its_event(&self) -> bool {
        self.cluster.is_none()
    }

    fn session_tracking(&self) -> Option<Arc<dyn crate::SessionTracking>> {
        super::tracking::KeyTracking::new(&self.target, self.timeout)
            .map(|tracking| Arc::new(tracking) as Arc<dyn crate::SessionTracking>)
    }

    fn follow(&self) -> watch::Receiver<FeedState> {
        self.feed
            .get_or_init(|| {
                let feed = Arc::new(watch::Sender::new(FeedState::Down));
                tokio::spawn(follow_forever(
                    self.target.clone(),
                    self.timeout,
                    Arc::clone(&feed),
                ));
                feed
            })
            .subscribe()
    }
}

/// Follows the stream for as long as the process runs, reconnecting after
/// every failure; the feed is `Down` from a failure until it is followed
/// again.
async fn follow_forever(target: Target, timeout: Duration, feed: Arc<watch::Sender<FeedState>>) {
    let mut failures = 0;
    loop {
        let error = follow(&target, timeout, &feed, &mut failures).await;
        feed.send_if_modified(|state| std::mem::replace(state, FeedState::Down) != FeedState::Down);
        tracing::warn!(%error, "event feed down; reconnecting");
        pause_before_reconnecting(&mut failures).await;
    }
}

/// Follows the stream over one connection until something fails; returns
/// what failed.
async fn follow(
    target: &Target,
    timeout: Duration,
    feed: &watch::Sender<FeedState>,
    failures: &mut usize,
) -> Error {
    let unavailable = |error: redis::RedisError| Error::Unavailable(Box::new(error));
    // On a cluster, a connection of its own to every node: XREAD goes to
    // the one owning `{events}`, and follows it through a failover.
    let mut connection: Connection = match target.dedicated(timeout, FOLLOW_BLOCK + timeout).await {
        Ok(connection) => connection,
        Err(error) => return unavailable(error),
    };
    let latest: redis::RedisResult<Option<u64>> = redis::cmd("GET")
        .arg(EVENT_COUNTER_KEY)
        .query_async(&mut connection)
        .await;
    let mut latest = match latest {
        Ok(latest) => EventCursor(latest.unwrap_or(0)),
        Err(error) => return unavailable(error),
    };
    feed.send_replace(FeedState::Live { latest });
    *failures = 0;
    loop {
        let read: redis::RedisResult<ReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(FOLLOW_COUNT)
            .arg("BLOCK")
            .arg(FOLLOW_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(EVENT_STREAM_KEY)
            .arg(format!("{latest}-0"))
            .query_async(&mut connection)
            .await;
        let page = match read {
            Ok(Some(streams)) => streams
                .into_iter()
                .flat_map(|(_, entries)| entries)
                .map(parse_entry)
                .collect::<Result<Vec<_>>>(),
            // A quiet moment: check that the stream was not deleted or the
            // store reset meanwhile, which XREAD alone would not notice.
            Ok(None) => match read_after(&mut connection, Some(latest), 1).await {
                Ok(page) => page,
                Err(error) => return unavailable(error),
            },
            Err(error) => return unavailable(error),
        };
        let page = match page {
            Ok(page) => page,
            Err(error) => return error,
        };
        if let Some(first) = page.first()
            && first.cursor != latest.next()
        {
            return Error::EventCursorExpired;
        }
        if let Some(last) = page.last() {
            latest = last.cursor;
            feed.send_replace(FeedState::Live { latest });
        }
    }
}
