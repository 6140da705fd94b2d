//! The event feed: every change published exactly once, in order; watches
//! that resume from a cursor without gap or duplicate; OUT_OF_RANGE past
//! retention; many watchers; a slow watcher that slows nobody.

use sigil_proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};

use crate::{
    edge,
    harness::{Harness, StoreBounds, admin, assert_error, assert_invalid},
    jwt,
};

all_stores!(
    every_change_publishes_one_event_in_order,
    a_watch_resumes_from_its_cursor_without_gap_or_duplicate,
    a_watch_from_now_sees_only_new_events,
    watches_filter_by_kind_and_subject,
    many_watchers_see_the_same_events,
    a_slow_watcher_slows_nobody_and_misses_nothing,
    events_are_admin_only_and_bad_filters_name_their_field,
    a_draining_server_ends_watches_with_unavailable,
);

type Kind = pb::EventKind;

/// Every event from the oldest retained, read with ListEvents.
async fn all_events(h: &Harness) -> Vec<pb::Event> {
    let mut events = h.events().await;
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = events
            .list_events(admin(pb::ListEventsRequest {
                after_cursor: cursor.clone(),
                page_size: 3,
                ..Default::default()
            }))
            .await
            .expect("listed")
            .into_inner();
        if page.events.is_empty() {
            return all;
        }
        cursor = page.next_cursor;
        all.extend(page.events);
    }
}

fn kinds(events: &[pb::Event]) -> Vec<Kind> {
    events.iter().map(|event| event.kind()).collect()
}

/// Opens a watch after `cursor` (from now if empty).
async fn watch(h: &Harness, request: pb::WatchEventsRequest) -> Streaming<pb::WatchEventsResponse> {
    h.events()
        .await
        .watch_events(admin(request))
        .await
        .expect("watching")
        .into_inner()
}

/// The next `count` events of `stream`.
async fn next_events(
    stream: &mut Streaming<pb::WatchEventsResponse>,
    count: usize,
) -> Vec<pb::Event> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let next = tokio::time::timeout(crate::harness::DEADLINE, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("an event, not an error");
        events.push(next.event.expect("event"));
    }
    events
}

/// Creates (pending) sessions for `subject`; returns their ids.
async fn create_sessions(h: &Harness, subject: &str, count: usize) -> Vec<String> {
    let mut issuer = h.issuer().await;
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let created = issuer
            .create_session(pb::CreateSessionRequest {
                subject: subject.into(),
                ..Default::default()
            })
            .await
            .expect("created")
            .into_inner();
        ids.push(created.session_id);
    }
    ids
}

async fn every_change_publishes_one_event_in_order(h: Harness) {
    let mut issuer = h.issuer().await;
    let (created, session) = h.active_session("alice", &["read"], vec![]).await;
    let (_, other) = h.active_session("alice", &["read"], vec![]).await;
    issuer
        .extend_session(admin(pb::ExtendSessionRequest {
            session_id: session.id.clone(),
            ..Default::default()
        }))
        .await
        .expect("extended");
    issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: session.id.clone(),
        }))
        .await
        .expect("revoked");
    // Already revoked: no change, no event.
    issuer
        .revoke_session(admin(pb::RevokeSessionRequest {
            session_id: session.id.clone(),
        }))
        .await
        .expect("revoked again");
    let revoked = issuer
        .revoke_subject_sessions(admin(pb::RevokeSubjectSessionsRequest {
            subject: "alice".into(),
            ..Default::default()
        }))
        .await
        .expect("subject revoked")
        .into_inner();
    assert_eq!(revoked.revoked_count, 1);

    let mut edge_tokens = h.edge_tokens().await;
    let (token, _) = edge::create(
        &mut edge_tokens,
        pb::ApiTokenType::Backend,
        &["default"],
        "production",
    )
    .await;
    edge_tokens
        .revoke_api_token(admin(pb::RevokeApiTokenRequest {
            id: token.id.clone(),
        }))
        .await
        .expect("token revoked");

    jwt::put(&h, jwt::template("shop", pb::SigningAlgorithm::Eddsa)).await;
    let rotated = issuer
        .rotate_signing_key(admin(pb::RotateSigningKeyRequest {
            algorithm: pb::SigningAlgorithm::Eddsa.into(),
        }))
        .await
        .expect("rotated")
        .into_inner();
    issuer
        .delete_token_template(admin(pb::DeleteTokenTemplateRequest {
            name: "shop".into(),
        }))
        .await
        .expect("deleted");

    // Rotating again retires the first key; once its tokens have all
    // expired, it leaves the JWKS.
    let second = issuer
        .rotate_signing_key(admin(pb::RotateSigningKeyRequest {
            algorithm: pb::SigningAlgorithm::Eddsa.into(),
        }))
        .await
        .expect("rotated again")
        .into_inner();
    h.clock
        .advance(std::time::Duration::from_secs(3600 + 300 + 1));
    issuer
        .get_jwks(pb::GetJwksRequest::default())
        .await
        .expect("jwks");

    let events = all_events(&h).await;
    assert_eq!(
        kinds(&events),
        [
            Kind::SessionCreated,
            Kind::SessionAuthorized,
            Kind::SessionCreated,
            Kind::SessionAuthorized,
            Kind::SessionExtended,
            Kind::SessionRevoked,
            Kind::SessionRevoked,
            Kind::SubjectSessionsRevoked,
            Kind::ApiTokenCreated,
            Kind::ApiTokenRevoked,
            Kind::TemplatePut,
            Kind::SigningKeyCreated,
            Kind::TemplateDeleted,
            Kind::SigningKeyCreated,
            Kind::SigningKeyRetired,
            Kind::SigningKeyRemoved,
        ]
    );
    // Cursors count up without gaps.
    let cursors: Vec<u64> = events.iter().map(|e| e.cursor.parse().unwrap()).collect();
    assert!(
        cursors.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{cursors:?}"
    );
    for (event, id) in [
        (&events[0], &created.session_id),
        (&events[1], &session.id),
        (&events[2], &other.id),
        (&events[5], &session.id),
        (&events[6], &other.id),
    ] {
        assert_eq!(&event.session_id, id);
    }
    // Pending sessions already carry the subject CreateSession gave.
    assert!(events[..8].iter().all(|event| event.subject == "alice"));
    assert_eq!(events[7].count, 1);
    assert_eq!(events[7].session_id, "");
    assert_eq!(events[8].api_token_id, token.id);
    assert_eq!(events[9].api_token_id, token.id);
    assert_eq!(events[10].template, "shop");
    assert_eq!(events[11].kid, rotated.key.expect("key").kid);
    assert_eq!(events[12].template, "shop");
    let first_kid = &events[11].kid;
    assert_eq!(events[13].kid, second.key.expect("key").kid);
    assert_eq!(&events[14].kid, first_kid);
    assert_eq!(&events[15].kid, first_kid);
    assert!(events.iter().all(|event| event.time.is_some()));
    // No secret of any kind reaches the feed.
    let dump = format!("{events:?}");
    assert!(!dump.contains(&created.session_key) && !dump.contains(&created.nonce));
}

async fn a_watch_resumes_from_its_cursor_without_gap_or_duplicate(h: Harness) {
    create_sessions(&h, "bob", 2).await;
    let mut stream = watch(
        &h,
        pb::WatchEventsRequest {
            after_cursor: "0".into(),
            ..Default::default()
        },
    )
    .await;
    // Replayed, then live.
    let replayed = next_events(&mut stream, 2).await;
    let live_ids = create_sessions(&h, "bob", 2).await;
    let live = next_events(&mut stream, 2).await;
    assert_eq!(
        live.iter().map(|e| &e.session_id).collect::<Vec<_>>(),
        live_ids.iter().collect::<Vec<_>>()
    );
    // The client disconnects; changes go on; it resumes from its cursor.
    drop(stream);
    let missed = create_sessions(&h, "bob", 3).await;
    let last_seen = live.last().expect("live").cursor.clone();
    let mut resumed = watch(
        &h,
        pb::WatchEventsRequest {
            after_cursor: last_seen.clone(),
            ..Default::default()
        },
    )
    .await;
    let caught_up = next_events(&mut resumed, 3).await;
    assert_eq!(
        caught_up.iter().map(|e| &e.session_id).collect::<Vec<_>>(),
        missed.iter().collect::<Vec<_>>()
    );
    let all: Vec<u64> = [replayed, live, caught_up]
        .concat()
        .iter()
        .map(|e| e.cursor.parse().unwrap())
        .collect();
    assert_eq!(all, (1..=7).collect::<Vec<u64>>());
}

async fn a_watch_from_now_sees_only_new_events(h: Harness) {
    create_sessions(&h, "carol", 2).await;
    let mut stream = watch(&h, pb::WatchEventsRequest::default()).await;
    let new = create_sessions(&h, "carol", 1).await;
    let seen = next_events(&mut stream, 1).await;
    assert_eq!(seen[0].session_id, new[0]);
    assert_eq!(seen[0].cursor, "3");
}

async fn watches_filter_by_kind_and_subject(h: Harness) {
    let mut revocations = watch(
        &h,
        pb::WatchEventsRequest {
            kinds: vec![Kind::SessionRevoked.into()],
            subject: "dave".into(),
            ..Default::default()
        },
    )
    .await;
    let (_, erin) = h.active_session("erin", &["read"], vec![]).await;
    let (_, dave) = h.active_session("dave", &["read"], vec![]).await;
    let mut issuer = h.issuer().await;
    for id in [&erin.id, &dave.id] {
        issuer
            .revoke_session(admin(pb::RevokeSessionRequest {
                session_id: id.clone(),
            }))
            .await
            .expect("revoked");
    }
    let seen = next_events(&mut revocations, 1).await;
    assert_eq!(seen[0].kind(), Kind::SessionRevoked);
    assert_eq!(seen[0].session_id, dave.id);
    // ListEvents filters the same way, and its cursor still moves past
    // what it filtered out.
    let page = h
        .events()
        .await
        .list_events(admin(pb::ListEventsRequest {
            kinds: vec![Kind::SessionRevoked.into()],
            subject: "dave".into(),
            ..Default::default()
        }))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].session_id, dave.id);
    assert_eq!(page.next_cursor, "6");
}

async fn many_watchers_see_the_same_events(h: Harness) {
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(watch(&h, pb::WatchEventsRequest::default()).await);
    }
    let ids = create_sessions(&h, "frank", 5).await;
    for stream in &mut streams {
        let seen = next_events(stream, 5).await;
        assert_eq!(
            seen.iter().map(|e| &e.session_id).collect::<Vec<_>>(),
            ids.iter().collect::<Vec<_>>()
        );
    }
}

async fn a_slow_watcher_slows_nobody_and_misses_nothing(h: Harness) {
    // Subscribed, but reading nothing while hundreds of changes happen:
    // more than the server queues per watcher and HTTP/2 buffers.
    let mut slow = watch(
        &h,
        pb::WatchEventsRequest {
            after_cursor: "0".into(),
            ..Default::default()
        },
    )
    .await;
    let ids = create_sessions(&h, "grace", 600).await;
    assert_eq!(ids.len(), 600);
    // The slow watcher then gets every one of them, in order.
    let seen = next_events(&mut slow, 600).await;
    assert_eq!(
        seen.iter().map(|e| &e.session_id).collect::<Vec<_>>(),
        ids.iter().collect::<Vec<_>>()
    );
}

async fn events_are_admin_only_and_bad_filters_name_their_field(h: Harness) {
    let mut events = h.events().await;
    assert_error(
        events.watch_events(pb::WatchEventsRequest::default()).await,
        Code::Unauthenticated,
        "ADMIN_KEY_MISSING",
    );
    assert_error(
        events.list_events(pb::ListEventsRequest::default()).await,
        Code::Unauthenticated,
        "ADMIN_KEY_MISSING",
    );
    assert_invalid(
        events
            .watch_events(admin(pb::WatchEventsRequest {
                after_cursor: "1-0".into(),
                ..Default::default()
            }))
            .await,
        "after_cursor",
    );
    assert_invalid(
        events
            .list_events(admin(pb::ListEventsRequest {
                kinds: vec![Kind::SessionCreated.into(), 0],
                ..Default::default()
            }))
            .await,
        "kinds[1]",
    );
    assert_invalid(
        events
            .list_events(admin(pb::ListEventsRequest {
                page_size: -1,
                ..Default::default()
            }))
            .await,
        "page_size",
    );
    // A cursor from the future: the store lost its state since it was given.
    assert_error(
        events
            .watch_events(admin(pb::WatchEventsRequest {
                after_cursor: "99".into(),
                ..Default::default()
            }))
            .await,
        Code::OutOfRange,
        "EVENT_CURSOR_EXPIRED",
    );
}

async fn a_draining_server_ends_watches_with_unavailable(h: Harness) {
    let mut stream = watch(&h, pb::WatchEventsRequest::default()).await;
    h.stop().await;
    let ended = tokio::time::timeout(crate::harness::DEADLINE, stream.next())
        .await
        .expect("the stream ends in time")
        .expect("with a status");
    let status = ended.expect_err("an error status");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_cursor_past_retention_is_out_of_range() {
    a_cursor_past_retention_is_out_of_range(
        Harness::memory_bounded(StoreBounds {
            event_retention: 4,
            ..StoreBounds::default()
        })
        .await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_cursor_past_retention_is_out_of_range() {
    a_cursor_past_retention_is_out_of_range(
        Harness::redis_bounded(StoreBounds {
            event_retention: 4,
            ..StoreBounds::default()
        })
        .await,
    )
    .await;
}

async fn a_cursor_past_retention_is_out_of_range(h: Harness) {
    create_sessions(&h, "heidi", 20).await;
    let mut events = h.events().await;
    for call in [
        events
            .list_events(admin(pb::ListEventsRequest {
                after_cursor: "1".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
        events
            .watch_events(admin(pb::WatchEventsRequest {
                after_cursor: "1".into(),
                ..Default::default()
            }))
            .await
            .map(drop),
    ] {
        assert_error(
            call.map(tonic::Response::new),
            Code::OutOfRange,
            "EVENT_CURSOR_EXPIRED",
        );
    }
    // What is retained still reads from its start, and from the newest.
    let retained = all_events(&h).await;
    assert!(
        retained.len() >= 4 && retained.len() < 20,
        "{}",
        retained.len()
    );
    assert_eq!(retained.last().expect("events").cursor, "20");
    let first: u64 = retained[0].cursor.parse().unwrap();
    let page = events
        .list_events(admin(pb::ListEventsRequest {
            after_cursor: (first - 1).to_string(),
            ..Default::default()
        }))
        .await
        .expect("the oldest retained reads")
        .into_inner();
    assert_eq!(page.events.len(), retained.len());
}
