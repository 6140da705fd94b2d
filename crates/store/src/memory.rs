use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use async_trait::async_trait;
use sigil_domain::{
    ApiTokenId, ApiTokenRecord, Clock, Result, SessionId, SessionRecord, Subject, Timestamp,
};
use sigil_jwt::{StoredSigningKey, StoredTemplate};

use crate::{JwtStore, SessionStore, SubjectPage, id_of_member, index_member};

mod api_tokens;

/// Sweep evicted records after this many inserts, so an idle process does
/// not hold expired sessions forever.
const SWEEP_EVERY_INSERTS: u64 = 1024;

/// Sessions in this process's memory: for `sigil dev` and tests. Not shared
/// between processes and lost on exit.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
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
}

impl MemoryStore {
    /// An empty store that evicts by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            clock,
            state: Mutex::default(),
        }
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
        state.inserts += 1;
        if state.inserts.is_multiple_of(SWEEP_EVERY_INSERTS) {
            state.sessions.retain(|_, record| record.evict_at() > now);
            state.used_jtis.retain(|_, until| *until > now);
        }
        state.index(record);
        state.sessions.insert(record.session.id, record.clone());
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

    async fn replace(&self, record: &SessionRecord) -> Result<bool> {
        let now = self.clock.now();
        let mut state = self.lock();
        match state.live(record.session.id, now) {
            Some(stored) if stored.revision + 1 == record.revision => {}
            _ => return Ok(false),
        }
        state.index(record);
        state.sessions.insert(record.session.id, record.clone());
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
        Ok(true)
    }

    async fn replace_template(&self, template: &StoredTemplate) -> Result<()> {
        self.lock()
            .templates
            .insert(template.name.clone(), template.clone());
        Ok(())
    }

    async fn template(&self, name: &str) -> Result<Option<StoredTemplate>> {
        Ok(self.lock().templates.get(name).cloned())
    }

    async fn templates(&self) -> Result<Vec<StoredTemplate>> {
        Ok(self.lock().templates.values().cloned().collect())
    }

    async fn delete_template(&self, name: &str) -> Result<bool> {
        Ok(self.lock().templates.remove(name).is_some())
    }

    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>> {
        Ok(self.lock().signing_keys.values().cloned().collect())
    }

    async fn put_signing_key(&self, key: &StoredSigningKey) -> Result<()> {
        self.lock()
            .signing_keys
            .insert(key.kid.clone(), key.clone());
        Ok(())
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<()> {
        self.lock().signing_keys.remove(kid);
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
