//! Session handlers: create, authorize, get, list, extend, revoke.

use std::sync::atomic::{AtomicBool, Ordering};

use getrandom::{SysRng, rand_core::UnwrapErr};
use sigil_domain::{
    Authorization, Error, Event, EventKind, Extension, NewSession, Result, SessionId,
    SessionRecord, SessionState, Subject,
};
use sigil_proto::{
    convert::{session_states_from_pb, timestamp_to_pb},
    v1 as pb,
};
use tonic::Request;

use crate::Issuer;

/// How often a read-modify-write is retried when another writer got there
/// first, before answering ABORTED.
const MAX_UPDATE_ATTEMPTS: usize = 5;
/// ListSessions page size when the request says 0.
const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest ListSessions page; larger requests are served this many.
const MAX_PAGE_SIZE: usize = 500;

impl Issuer {
    pub(crate) async fn create(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<pb::CreateSessionResponse> {
        let peer = request.remote_addr().map(|address| address.ip());
        self.context.rate_limits.check_create_session(peer)?;
        let command = NewSession::try_from(request.into_inner())?;
        let now = self.context.clock.now();
        let (record, key, nonce) =
            command.issue(&self.context.policy, now, &mut UnwrapErr(SysRng))?;
        self.context.store.insert(&record).await?;
        tracing::info!(session_id = %record.session.id, "session created");
        metrics::counter!("sigil_sessions_created_total").increment(1);
        Ok(pb::CreateSessionResponse {
            session_id: record.session.id.to_string(),
            session_key: key.expose(),
            nonce: nonce.expose(),
            expires_at: Some(timestamp_to_pb(record.session.expires_at)),
        })
    }

    pub(crate) async fn authorize(
        &self,
        request: Request<pb::AuthorizeSessionRequest>,
    ) -> Result<pb::AuthorizeSessionResponse> {
        self.context.admin.check(request.metadata())?;
        let authorization = Authorization::try_from(request.into_inner())?;
        let id = authorization.nonce.session_id();
        let record = self
            .context
            .store
            .get(id)
            .await?
            .ok_or(Error::NonceNotFound)?;
        let now = self.context.clock.now();
        let authorized = record.authorize(&authorization, &self.context.policy, now)?;
        // Losing the compare-and-swap means another call used the nonce (or
        // revoked the session) first: for this call the nonce is gone.
        if !self
            .context
            .store
            .replace(&authorized, EventKind::SessionAuthorized)
            .await?
        {
            return Err(Error::NonceNotFound);
        }
        tracing::info!(session_id = %id, "session authorized");
        metrics::counter!("sigil_sessions_authorized_total").increment(1);
        Ok(pb::AuthorizeSessionResponse {
            session: Some((&authorized.session).into()),
        })
    }

    pub(crate) async fn get(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<pb::GetSessionResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::GetSessionRequest { session_id } = request.into_inner();
        let id = SessionId::parse_field(&session_id, "session_id")?;
        let record = self.load(id).await?;
        Ok(pb::GetSessionResponse {
            session: Some((&record.session).into()),
        })
    }

    pub(crate) async fn list(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<pb::ListSessionsResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::ListSessionsRequest {
            subject,
            page_size,
            page_token,
            states,
        } = request.into_inner();
        let subject = Subject::parse(&subject, "subject")?;
        let states = session_states_from_pb(&states, "states")?;
        // The token is bound to the filter too, so a page token cannot carry
        // a cursor from one filtered listing into another.
        let filter = format!("{states:?}");
        let page_size = match usize::try_from(page_size) {
            Err(_) => return Err(Error::invalid("page_size", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
        };
        let cursor = (!page_token.is_empty())
            .then(|| self.page_key.open(&page_token, &subject, &filter))
            .transpose()?;
        let page = self
            .context
            .store
            .subject_sessions(&subject, cursor.as_deref(), page_size)
            .await?;
        let now = self.context.clock.now();
        Ok(pb::ListSessionsResponse {
            sessions: page
                .records
                .iter()
                // A store may hold a record a moment past its eviction
                // (Redis expires lazily); it is gone all the same.
                .filter(|record| record.evict_at() > now)
                .filter(|record| states.is_empty() || states.contains(&record.session.state))
                .map(|record| (&record.session).into())
                .collect(),
            next_page_token: page
                .next_cursor
                .map(|cursor| self.page_key.seal(&subject, &filter, &cursor))
                .unwrap_or_default(),
        })
    }

    pub(crate) async fn extend(
        &self,
        request: Request<pb::ExtendSessionRequest>,
    ) -> Result<pb::ExtendSessionResponse> {
        self.context.admin.check(request.metadata())?;
        let request = request.into_inner();
        let id = SessionId::parse_field(&request.session_id, "session_id")?;
        let extension = Extension::try_from(request)?;
        let policy = self.context.policy;
        // Set by the last attempt of `update`, the one whose answer counts.
        let extended = AtomicBool::new(false);
        let record = self
            .update(id, EventKind::SessionExtended, |record, now| {
                let next = record.extend(extension, &policy, now)?;
                extended.store(next.is_some(), Ordering::Relaxed);
                Ok(next)
            })
            .await?;
        let extended = extended.load(Ordering::Relaxed);
        tracing::info!(session_id = %id, extended, "session extension asked");
        Ok(pb::ExtendSessionResponse {
            session: Some((&record.session).into()),
            extended,
        })
    }

    pub(crate) async fn revoke(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<pb::RevokeSessionResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::RevokeSessionRequest { session_id } = request.into_inner();
        let id = SessionId::parse_field(&session_id, "session_id")?;
        let policy = self.context.policy;
        // Set by the last attempt of `update`: false when the session was
        // already revoked, which revokes nothing and is not counted.
        let revoked = AtomicBool::new(false);
        let record = self
            .update(id, EventKind::SessionRevoked, |record, now| {
                let next = record.revoke(&policy, now);
                revoked.store(next.is_some(), Ordering::Relaxed);
                Ok(next)
            })
            .await?;
        if revoked.load(Ordering::Relaxed) {
            tracing::info!(session_id = %id, "session revoked");
            metrics::counter!("sigil_sessions_revoked_total").increment(1);
        } else {
            // Already revoked, perhaps by a call that timed out waiting for
            // replicas: this retry answers only once they hold it.
            self.context.store.confirm(&record).await?;
        }
        Ok(pb::RevokeSessionResponse {
            session: Some((&record.session).into()),
        })
    }

    pub(crate) async fn revoke_subject(
        &self,
        request: Request<pb::RevokeSubjectSessionsRequest>,
    ) -> Result<pb::RevokeSubjectSessionsResponse> {
        self.context.admin.check(request.metadata())?;
        let pb::RevokeSubjectSessionsRequest {
            subject,
            except_session_id,
        } = request.into_inner();
        let subject = Subject::parse(&subject, "subject")?;
        let policy = self.context.policy;
        let except = (!except_session_id.is_empty())
            .then(|| SessionId::parse_field(&except_session_id, "except_session_id"))
            .transpose()?;
        let mut revoked_count: i32 = 0;
        let mut cursor = None;
        loop {
            let page = self
                .context
                .store
                .subject_sessions(&subject, cursor.as_deref(), MAX_PAGE_SIZE)
                .await?;
            for record in page.records {
                if record.session.state == SessionState::Revoked
                    || Some(record.session.id) == except
                {
                    continue;
                }
                let revoked = self
                    .update(
                        record.session.id,
                        EventKind::SessionRevoked,
                        |record, now| Ok(record.revoke(&policy, now)),
                    )
                    .await;
                match revoked {
                    Ok(_) => revoked_count = revoked_count.saturating_add(1),
                    // Expired meanwhile: nothing left to revoke.
                    Err(Error::SessionNotFound) => {}
                    Err(error) => return Err(error),
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        // A summary for watchers, after the per-session events: not atomic
        // with them (they span many records), so a failure here leaves the
        // revocations done and published one by one.
        if revoked_count > 0 {
            self.context
                .events
                .publish(&Event {
                    subject: Some(subject),
                    count: Some(u64::try_from(revoked_count).unwrap_or(0)),
                    ..Event::new(EventKind::SubjectSessionsRevoked)
                })
                .await?;
        }
        tracing::info!(revoked_count, "subject's sessions revoked");
        metrics::counter!("sigil_sessions_revoked_total")
            .increment(u64::try_from(revoked_count).unwrap_or(0));
        Ok(pb::RevokeSubjectSessionsResponse { revoked_count })
    }

    pub(crate) async fn load(&self, id: SessionId) -> Result<SessionRecord> {
        let now = self.context.clock.now();
        self.context
            .store
            .get(id)
            .await?
            // Past its eviction is gone, even if the store still holds it.
            .filter(|record| record.evict_at() > now)
            .ok_or(Error::SessionNotFound)
    }

    /// Read, change, compare-and-swap, retrying when another writer got
    /// there first; the swap publishes an event of kind `kind`. `change`
    /// answers `None` when there is nothing to change; the stored record is
    /// returned as it is then (and nothing is published).
    pub(crate) async fn update(
        &self,
        id: SessionId,
        kind: EventKind,
        change: impl Fn(&SessionRecord, sigil_domain::Timestamp) -> Result<Option<SessionRecord>>,
    ) -> Result<SessionRecord> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let record = self.load(id).await?;
            let Some(next) = change(&record, self.context.clock.now())? else {
                return Ok(record);
            };
            if self.context.store.replace(&next, kind).await? {
                return Ok(next);
            }
        }
        Err(Error::Conflict)
    }
}
