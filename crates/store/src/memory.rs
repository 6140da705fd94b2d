use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use sigil_domain::{
    ApiTokenId, ApiTokenRecord, Clock, Error, Event, EventCursor, EventKind, Result, SessionId,
    SessionRecord, StoredEvent, Subject, Timestamp,
};
use sigil_jwt::{StoredSigningKey, StoredTemplate};
use tokio::sync::watch;

use crate::{
    DEFAULT_EVENT_RETENTION, DEFAULT_MAX_PENDING_SESSIONS, EventStore, FeedState, JwtStore,
    SessionStore, SubjectPage, events::check_continuity, id_of_member, index_member,
    signing_key_event, template_event,
};

mod api_tokens;

/// Sweep evicted records after this many inserts, so an idle process does
/// not hold expired sessions forever.
const SWEEP_EVERY_INSERTS: u64 = 1024;

/// Sessions in this process's memory: for `sigil dev` and tests. Not shared
/// between processes and lost on exit.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    event_retention: usize,
    max_pending_sessions: usize,
    feed: watch::Sender<FeedState>,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, SessionRecord>,
    subjects: HashMap<Subject, BTreeSet<String>>,
    inserts: u64,
    templates: BTreeMap<String, StoredTemplate>,
    signing_keys: BTreeMap<String, StoredSigningKey>,
    used_jtis: HashMap<String, Timestamp>,
    api_tokens: HashMap<ApiTokenId, ApiTokenRecord>,
    api_token_index: BTreeSet<String>,
    events: VecDeque<StoredEvent>,
    latest_event: EventCursor,
    /// Sessions waiting for their nonce, and when they stop waiting.
    pending: HashMap<SessionId, Timestamp>,
}

impl MemoryStore {
    /// An empty store that evicts by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            clock,
            state: Mutex::default(),
            event_retention: DEFAULT_EVENT_RETENTION,
            max_pending_sessions: DEFAULT_MAX_PENDING_SESSIONS,
            feed: watch::Sender::new(FeedState::Live {
                latest: EventCursor::default(),
            }),
        }
    }

    /// The same store keeping only the newest `retention` events (at least
    /// one).
    pub fn with_event_retention(mut self, retention: usize) -> Self {
        self.event_retention = retention.max(1);
        self
    }

    /// The same store holding at most `max` pending sessions (0: no
    /// limit).
    pub fn with_max_pending_sessions(mut self, max: usize) -> Self {
        self.max_pending_sessions = max;
        self
    }

    /// Appends `event` while the caller holds the state lock, so the event
    /// and the change it records are one atomic step.
    fn emit(&self, state: &mut State, event: Event) {
        state.latest_event = state.latest_event.next();
        state.events.push_back(StoredEvent {
            cursor: state.latest_event,
            at: self.clock.now(),
            event,
        });
        while state.events.len() > self.event_retention {
            state.events.pop_front();
        }
        self.feed.send_replace(FeedState::Live {
            latest: state.latest_event,
        });
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written record:
        // every update is a single map insert. So a poisoned lock is safe.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl State {
    fn live(&mut self, id: SessionId, now: sigil_domain::Timestamp) -> Option<&SessionRecord> {
        if self.sessions.get(&id)?.evict_at() <= now {
            self.sessions.remove(&id);
            return None;
        }
        self.sessions.get(&id)
    }

    fn index(&mut self, record: &SessionRecord) {
        if let Some(subject) = &record.session.subject {
            self.subjects
                .entry(subject.clone())
                .or_default()
                .insert(index_member(record));
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, record: &SessionRecord) -> Result<()> {
        let now = self.clock.now();
        let mut state = self.lock();
        if self.max_pending_sessions > 0 {
            state.pending.retain(|_, until| *until > now);
            if state.pending.len() >= self.max_pending_sessions {
                return Err(Error::PendingSessionsFull {
                    limit: self.max_pending_sessions,
                });
            }
            state.pending.insert(record.session.id, record.evict_at());
        }
        state.inserts += 1;
        if state.inserts.is_multiple_of(SWEEP_EVERY_INSERTS) {
            state.sessions.retain(|_, record| record.evict_at() > now);
            state.used_jtis.retain(|_, until| *until > now);
        }
        state.index(record);
        state.sessions.insert(record.session.id, record.clone());
        self.emit(
            &mut state,
            Event::session(EventKind::SessionCreated, record),
        );
        Ok(())
    }

    async fn get(&self, id: SessionId) -> Result<Option<SessionRecord>> {
        let now = self.clock.now();
        Ok(self.lock().live(id, now).cloned())
    }

    async fn get_many(&self, ids: &[SessionId]) -> Result<Vec<Option<SessionRecord>>> {
        let now = self.clock.now();
        let mut state = self.lock();
        Ok(ids.iter().map(|id| state.live(*id, now).cloned()).collect())
    }

    async fn replace(&self, record: &SessionRecord, change: EventKind) -> Result<bool> {
        let now = self.clock.now();
        let mut state = self.lock();
        match state.live(record.session.id, now) {
            Some(stored) if stored.revision + 1 == record.revision => {}
            _ => return Ok(false),
        }
        state.index(record);
        state.sessions.insert(record.session.id, record.clone());
        // Authorized or revoked: no longer waiting for its nonce.
        state.pending.remove(&record.session.id);
        self.emit(&mut state, Event::session(change, record));
        Ok(true)
    }

    async fn subject_sessions(
        &self,
        subject: &Subject,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<SubjectPage> {
        let now = self.clock.now();
        let mut state = self.lock();
        let members: Vec<String> = match state.subjects.get(subject) {
            Some(members) => members
                .iter()
                .filter(|member| cursor.is_none_or(|cursor| member.as_str() > cursor))
                .take(limit)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let mut page = SubjectPage {
            next_cursor: (members.len() == limit)
                .then(|| members.last().cloned())
                .flatten(),
            records: Vec::with_capacity(members.len()),
        };
        for member in members {
            let record = id_of_member(&member).and_then(|id| state.live(id, now).cloned());
            match record {
                Some(record) if record.session.subject.as_ref() == Some(subject) => {
                    page.records.push(record)
                }
                // Gone, or authorized under another subject: drop the entry.
                _ => {
                    if let Some(members) = state.subjects.get_mut(subject) {
                        members.remove(&member);
                    }
                }
            }
        }
        Ok(page)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl JwtStore for MemoryStore {
    async fn create_template(&self, template: &StoredTemplate) -> Result<bool> {
        let mut state = self.lock();
        if state.templates.contains_key(&template.name) {
            return Ok(false);
        }
        state
            .templates
            .insert(template.name.clone(), template.clone());
        self.emit(
            &mut state,
            template_event(EventKind::TemplatePut, &template.name),
        );
        Ok(true)
    }

    async fn replace_template(&self, template: &StoredTemplate) -> Result<()> {
        let mut state = self.lock();
        state
            .templates
            .insert(template.name.clone(), template.clone());
        self.emit(
            &mut state,
            template_event(EventKind::TemplatePut, &template.name),
        );
        Ok(())
    }

    async fn template(&self, name: &str) -> Result<Option<StoredTemplate>> {
        Ok(self.lock().templates.get(name).cloned())
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        Ok(self.lock().templates.values().cloned().collect())
    }

    async fn delete_template(&self, name: &str) -> Result<bool> {
        let mut state = self.lock();
        let deleted = state.templates.remove(name).is_some();
        if deleted {
            self.emit(&mut state, template_event(EventKind::TemplateDeleted, name));
        }
        Ok(deleted)
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        Ok(self.lock().signing_keys.values().cloned().collect())
    }

    async fn put_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        let mut state = self.lock();
        state.signing_keys.insert(key.kid.clone(), key.clone());
        self.emit(&mut state, signing_key_event(key));
        Ok(())
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<()> {
        let mut state = self.lock();
        if state.signing_keys.remove(kid).is_some() {
            let mut event = Event::new(EventKind::SigningKeyRemoved);
            event.kid = Some(kid.to_owned());
            self.emit(&mut state, event);
        }
        Ok(())
    }

    async fn consume_jti(&self, jti: &str, expires_at: Timestamp) -> Result<bool> {
        let now = self.clock.now();
        let mut state = self.lock();
        match state.used_jtis.get(jti) {
            Some(until) if *until > now => Ok(false),
            _ => {
                state.used_jtis.insert(jti.to_owned(), expires_at);
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn publish(&self, event: &Event) -> Result<()> {
        let mut state = self.lock();
        self.emit(&mut state, event.clone());
        Ok(())
    }

    async fn events_after(
        &self,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let state = self.lock();
        // Cursors have no gaps, so the position is arithmetic.
        let start = match (after, state.events.front()) {
            (Some(after), Some(first)) => {
                usize::try_from(after.next().0.saturating_sub(first.cursor.0))
                    .unwrap_or(usize::MAX)
                    .min(state.events.len())
            }
            _ => 0,
        };
        let page: Vec<StoredEvent> = state.events.range(start..).take(limit).cloned().collect();
        check_continuity(after, &page, state.latest_event)?;
        Ok(page)
    }

    async fn latest_event(&self) -> Result<EventCursor> {
        Ok(self.lock().latest_event)
    }

    fn follow(&self) -> watch::Receiver<FeedState> {
        self.feed.subscribe()
    }
}
