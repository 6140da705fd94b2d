//! API tokens in this process's memory.

use async_trait::async_trait;
use sigil_domain::{ApiTokenId, ApiTokenRecord, Error, EventKind, Result};

use super::MemoryStore;
use crate::{
    api_token_event,
    api_tokens::{ApiTokenPage, ApiTokenStore, token_id_of_member, token_member},
};

fn live(record: &ApiTokenRecord, now: sigil_domain::Timestamp) -> bool {
    record
        .token
        .expires_at
        .is_none_or(|expires_at| now < expires_at)
}

#[async_trait]
impl ApiTokenStore for MemoryStore {
    async fn insert_token(&self, record: &ApiTokenRecord) -> Result<()> {
        let now = self.clock.now();
        let mut state = self.lock();
        state.api_tokens.retain(|_, record| live(record, now));
        if state.api_tokens.contains_key(&record.token.id) {
            return Err(Error::Conflict);
        }
        state.api_token_index.insert(token_member(record));
        state.api_tokens.insert(record.token.id, record.clone());
        self.emit(
            &mut state,
            api_token_event(EventKind::ApiTokenCreated, record.token.id),
        );
        Ok(())
    }

    async fn tokens(&self, ids: &[ApiTokenId]) -> Result<Vec<Option<ApiTokenRecord>>> {
        let now = self.clock.now();
        let state = self.lock();
        Ok(ids
            .iter()
            .map(|id| {
                state
                    .api_tokens
                    .get(id)
                    .filter(|record| live(record, now))
                    .cloned()
            })
            .collect())
    }

    async fn remove_token(&self, id: ApiTokenId) -> Result<Option<ApiTokenRecord>> {
        let now = self.clock.now();
        let mut state = self.lock();
        let removed = state
            .api_tokens
            .remove(&id)
            .filter(|record| live(record, now));
        if let Some(record) = &removed {
            state.api_token_index.remove(&token_member(record));
            self.emit(&mut state, api_token_event(EventKind::ApiTokenRevoked, id));
        }
        Ok(removed)
    }

    async fn list_tokens(&self, cursor: Option<&str>, limit: usize) -> Result<ApiTokenPage> {
        let now = self.clock.now();
        let mut state = self.lock();
        let members: Vec<String> = state
            .api_token_index
            .iter()
            .filter(|member| cursor.is_none_or(|cursor| member.as_str() > cursor))
            .take(limit)
            .cloned()
            .collect();
        let mut page = ApiTokenPage {
            next_cursor: (members.len() == limit)
                .then(|| members.last().cloned())
                .flatten(),
            records: Vec::with_capacity(members.len()),
        };
        for member in members {
            let record = token_id_of_member(&member)
                .and_then(|id| state.api_tokens.get(&id))
                .filter(|record| live(record, now))
                .cloned();
            match record {
                Some(record) => page.records.push((member, record)),
                None => {
                    state.api_token_index.remove(&member);
                }
            }
        }
        Ok(page)
    }
}
