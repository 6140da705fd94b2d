//! API tokens in Redis.
//!
//! Layout: `sigil:{tok_…}:api_token` is a string, the record as JSON (the
//! token and the SHA-256 of its secret), which Redis expires at the token's
//! expiry (`PXAT`); `sigil:{api_tokens}:index` is a sorted set of
//! `<created_at ms, 20 digits>:<id>` for listing. Each token key has its
//! own hash tag, so on Redis Cluster tokens spread over the slots and
//! nodes; redis-rs's cluster client splits a multi-slot `MGET` into one
//! `MGET` per slot, sent concurrently: one round trip of waiting, one
//! command per slot touched. On a single Redis a batch is one command.

use async_trait::async_trait;
use redis::AsyncCommands;
use sigil_domain::{ApiTokenId, ApiTokenRecord, Error, EventKind, Result};

use super::{Emit, RedisStore};
use crate::{
    api_token_event,
    api_tokens::{ApiTokenPage, ApiTokenStore, token_id_of_member, token_member},
};

const INDEX_KEY: &str = "sigil:{api_tokens}:index";

fn token_key(id: ApiTokenId) -> String {
    format!("sigil:{{{id}}}:api_token")
}

fn encode(record: &ApiTokenRecord) -> Result<String> {
    serde_json::to_string(record).map_err(|error| Error::CorruptRecord(Box::new(error)))
}

fn decode(data: &str) -> Result<ApiTokenRecord> {
    serde_json::from_str(data).map_err(|error| Error::CorruptRecord(Box::new(error)))
}

impl RedisStore {
    /// One `MGET` of the records of `ids`.
    async fn fetch_tokens(&self, ids: &[ApiTokenId]) -> Result<Vec<Option<ApiTokenRecord>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().copied().map(token_key).collect();
        let mut connection = self.connection();
        let data: Vec<Option<String>> = self
            .call(redis::cmd("MGET").arg(&keys).query_async(&mut connection))
            .await?;
        data.iter()
            .map(|data| data.as_deref().map(decode).transpose())
            .collect()
    }
}

#[async_trait]
impl ApiTokenStore for RedisStore {
    async fn insert_token(&self, record: &ApiTokenRecord) -> Result<()> {
        let data = encode(record)?;
        let mut connection = self.connection();
        // The index entry first: an entry without a record is skipped when
        // listing, while a record missing from the index could not be found
        // by an admin.
        self.call(connection.zadd::<_, _, _, ()>(INDEX_KEY, token_member(record), 0))
            .await?;
        let mut args = vec![data, "NX".to_owned()];
        if let Some(expires_at) = record.token.expires_at {
            args.extend(["PXAT".to_owned(), expires_at.unix_ms().to_string()]);
        }
        let event = api_token_event(EventKind::ApiTokenCreated, record.token.id);
        let written: Option<String> = self
            .write_and_emit(
                &token_key(record.token.id),
                &event,
                Emit::IfChanged,
                "SET",
                &args,
            )
            .await?;
        match written {
            Some(_) => Ok(()),
            // 128 random bits never collide in practice; refuse rather than
            // overwrite if they ever do.
            None => Err(Error::Conflict),
        }
    }

    async fn tokens(&self, ids: &[ApiTokenId]) -> Result<Vec<Option<ApiTokenRecord>>> {
        self.fetch_tokens(ids).await
    }

    async fn remove_token(&self, id: ApiTokenId) -> Result<Option<ApiTokenRecord>> {
        // GETDEL: read and delete in one step, so two revocations cannot
        // both report the token.
        let event = api_token_event(EventKind::ApiTokenRevoked, id);
        let no_args: &[&str] = &[];
        let key = token_key(id);
        let (data, confirmed): (Option<String>, Result<()>) = match &self.confirmation {
            Some(confirmation) => {
                self.write_and_emit_confirmed(
                    confirmation,
                    &key,
                    &event,
                    Emit::IfChanged,
                    "GETDEL",
                    no_args,
                )
                .await?
            }
            None => (
                self.write_and_emit(&key, &event, Emit::IfChanged, "GETDEL", no_args)
                    .await?,
                Ok(()),
            ),
        };
        let Some(record) = data.as_deref().map(decode).transpose()? else {
            // Gone already, perhaps revoked by a call that timed out
            // waiting for replicas: NOT_FOUND only once they hold that.
            if let Some(confirmation) = &self.confirmation {
                self.confirm_by_writing(confirmation, &id.to_string())
                    .await?;
            }
            return Ok(None);
        };
        // Best effort: a stale entry is skipped and pruned when listing.
        let mut connection = self.connection();
        let cleanup: redis::RedisResult<()> =
            connection.zrem(INDEX_KEY, token_member(&record)).await;
        if let Err(error) = cleanup {
            tracing::debug!(%error, "could not prune the API token index");
        }
        confirmed.map(|()| Some(record))
    }

    async fn list_tokens(&self, cursor: Option<&str>, limit: usize) -> Result<ApiTokenPage> {
        let start = cursor.map_or_else(|| "-".to_owned(), |cursor| format!("({cursor}"));
        let mut connection = self.connection();
        let members: Vec<String> = self
            .call(
                redis::cmd("ZRANGE")
                    .arg(INDEX_KEY)
                    .arg(start)
                    .arg("+")
                    .arg("BYLEX")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut connection),
            )
            .await?;
        let next_cursor = (members.len() == limit)
            .then(|| members.last().cloned())
            .flatten();
        let parsed: Vec<(String, ApiTokenId)> = members
            .into_iter()
            .filter_map(|member| Some((member.clone(), token_id_of_member(&member)?)))
            .collect();
        let ids: Vec<ApiTokenId> = parsed.iter().map(|(_, id)| *id).collect();
        let records = self.fetch_tokens(&ids).await?;
        let mut page = ApiTokenPage {
            records: Vec::with_capacity(records.len()),
            next_cursor,
        };
        let mut stale = Vec::new();
        for ((member, _), record) in parsed.into_iter().zip(records) {
            match record {
                Some(record) => page.records.push((member, record)),
                None => stale.push(member),
            }
        }
        if !stale.is_empty() {
            let cleanup: redis::RedisResult<()> = connection.zrem(INDEX_KEY, stale).await;
            if let Err(error) = cleanup {
                tracing::debug!(%error, "could not prune the API token index");
            }
        }
        Ok(page)
    }
}
