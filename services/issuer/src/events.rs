//! `sigil.v1.EventService`: the feed of changes, streamed live from a
//! cursor (WatchEvents) or read page by page (ListEvents).

use std::{pin::Pin, sync::Arc, time::Duration};

use sigil_domain::{Error, EventCursor, EventKind, Result, StoredEvent, Subject, event_matches};
use sigil_proto::{event::event_kinds_from_pb, status::to_status, v1 as pb};
use sigil_runtime::Context;
use sigil_store::{EventStore, FeedState};
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use pb::event_service_server::EventService;

/// Events read from the store at a time.
const READ_PAGE: usize = 256;
/// Events queued for one watcher before reading more waits for it: a slow
/// watcher costs this much memory and slows nobody else.
const WATCH_BUFFER: usize = 64;
/// How long a watch waits for a feed that went down to come back before
/// ending with UNAVAILABLE.
const FEED_DOWN_GRACE: Duration = Duration::from_secs(2);
/// ListEvents page size when the request says 0.
const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest ListEvents page; larger requests are served this many.
const MAX_PAGE_SIZE: usize = 1000;

/// The `sigil.v1.EventService` handlers.
#[derive(Clone)]
pub struct Events {
    pub(crate) context: Context,
    /// True once the server drains: live watches end then.
    pub(crate) draining: watch::Receiver<bool>,
}

/// Which events a caller asked for.
struct Filter {
    kinds: Vec<EventKind>,
    subject: Option<Subject>,
}

impl Filter {
    fn parse(kinds: &[i32], subject: &str, kinds_field: &str) -> Result<Filter> {
        Ok(Filter {
            kinds: event_kinds_from_pb(kinds, kinds_field)?,
            subject: (!subject.is_empty())
                .then(|| Subject::parse(subject, "subject"))
                .transpose()?,
        })
    }

    fn admits(&self, stored: &StoredEvent) -> bool {
        event_matches(&stored.event, &self.kinds, self.subject.as_ref())
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for Events {
    type WatchEventsStream = WatchStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        self.watch(request)
            .await
            .map(|stream| Response::new(Box::pin(stream) as WatchStream))
            .map_err(to_status)
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        self.list(request)
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}

impl Events {
    async fn watch(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<ReceiverStream<Result<pb::WatchEventsResponse, Status>>> {
        self.context.admin.check(request.metadata())?;
        let pb::WatchEventsRequest {
            after_cursor,
            kinds,
            subject,
        } = request.into_inner();
        let filter = Filter::parse(&kinds, &subject, "kinds")?;
        let store = Arc::clone(&self.context.events);
        let feed = store.follow();
        let start = match EventCursor::parse_field(&after_cursor, "after_cursor")? {
            Some(cursor) => cursor,
            None => store.latest_event().await?,
        };
        // Read the first page now, so a cursor past retention is the call's
        // own OUT_OF_RANGE rather than a stream that fails at once.
        let first_page = store.events_after(Some(start), READ_PAGE).await?;
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        let watch = Watch {
            store,
            feed,
            draining: self.draining.clone(),
            filter,
            sender,
        };
        tokio::spawn(watch.run(start, first_page));
        Ok(ReceiverStream::new(receiver))
    }

    async fn list(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<pb::ListEventsResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::ListEventsRequest {
            after_cursor,
            page_size,
            kinds,
            subject,
        } = request.into_inner();
        let after = EventCursor::parse_field(&after_cursor, "after_cursor")?;
        let filter = Filter::parse(&kinds, &subject, "kinds")?;
        let page_size = match usize::try_from(page_size) {
            Err(_) => return Err(Error::invalid("page_size", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
        };
        let page = self.context.events.events_after(after, page_size).await?;
        let next_cursor = match (page.last(), after) {
            (Some(last), _) => last.cursor,
            (None, Some(after)) => after,
            (None, None) => self.context.events.latest_event().await?,
        };
        Ok(pb::ListEventsResponse {
            events: page
                .iter()
                .filter(|stored| filter.admits(stored))
                .map(pb::Event::from)
                .collect(),
            next_cursor: next_cursor.to_string(),
        })
    }
}

/// One live watch: reads the store after its cursor and hands matching
/// events to the client's stream, as fast as the client takes them.
struct Watch {
    store: Arc<dyn EventStore>,
    feed: watch::Receiver<FeedState>,
    draining: watch::Receiver<bool>,
    filter: Filter,
    sender: mpsc::Sender<Result<pb::WatchEventsResponse, Status>>,
}

impl Watch {
    async fn run(mut self, mut cursor: EventCursor, mut page: Vec<StoredEvent>) {
        metrics::gauge!("sigil_event_watchers").increment(1.0);
        let ended = loop {
            let full = page.len() == READ_PAGE;
            for stored in page {
                cursor = stored.cursor;
                if !self.filter.admits(&stored) {
                    continue;
                }
                let event = pb::WatchEventsResponse {
                    event: Some(pb::Event::from(&stored)),
                };
                // Waits while the client's buffer is full: backpressure.
                if self.sender.send(Ok(event)).await.is_err() {
                    break;
                }
            }
            if self.sender.is_closed() {
                break None;
            }
            if !full && let Err(ended) = self.wait_for_news(cursor).await {
                break ended;
            }
            page = match self.store.events_after(Some(cursor), READ_PAGE).await {
                Ok(page) => page,
                Err(error) => break Some(error),
            };
        };
        if let Some(error) = ended {
            let _ = self.sender.send(Err(to_status(error))).await;
        }
        metrics::gauge!("sigil_event_watchers").decrement(1.0);
    }

    /// Waits until the feed has an event after `cursor`. `Err` when the
    /// watch must end: with the error to send, or `None` when the client
    /// left.
    async fn wait_for_news(&mut self, cursor: EventCursor) -> Result<(), Option<Error>> {
        loop {
            let state = *self.feed.borrow_and_update();
            let grace = match state {
                FeedState::Live { latest } if latest > cursor => return Ok(()),
                FeedState::Live { .. } => None,
                FeedState::Down => Some(tokio::time::sleep(FEED_DOWN_GRACE)),
            };
            let down_too_long = async {
                match grace {
                    Some(grace) => grace.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.feed.changed() => {
                    if changed.is_err() {
                        return Err(Some(Error::ShuttingDown));
                    }
                }
                _ = self.draining.wait_for(|draining| *draining) => {
                    return Err(Some(Error::ShuttingDown));
                }
                () = self.sender.closed() => return Err(None),
                () = down_too_long => {
                    return Err(Some(Error::Unavailable("the event feed is down".into())));
                }
            }
        }
    }
}
