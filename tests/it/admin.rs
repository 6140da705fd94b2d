//! Every admin RPC refuses a missing or wrong admin key, and CreateSession
//! needs none.

use sigil_proto::v1 as pb;
use tonic::{Code, Request};

use crate::harness::{Harness, assert_error, with_bearer};

all_stores!(
    admin_calls_refuse_missing_and_wrong_keys,
    create_session_needs_no_admin_key
);

/// Calls every admin RPC with `key` attached (or none) and asserts each
/// fails with `reason`.
async fn assert_every_admin_call_refused(h: &Harness, key: Option<&str>, reason: &str) {
    fn request<T>(message: T, key: Option<&str>) -> Request<T> {
        match key {
            Some(key) => with_bearer(message, key),
            None => Request::new(message),
        }
    }
    let (created, _) = h.active_session("dave", &["token:read"], vec![]).await;
    let pending = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await
        .unwrap()
        .into_inner();
    let id = created.session_id.clone();
    let mut issuer = h.issuer().await;

    let result = issuer
        .authorize_session(request(
            pb::AuthorizeSessionRequest {
                nonce: pending.nonce.clone(),
                permissions: vec!["token:read".into()],
                ..Default::default()
            },
            key,
        ))
        .await;
    assert_error(result, Code::Unauthenticated, reason);
    let result = issuer
        .get_session(request(
            pb::GetSessionRequest {
                session_id: id.clone(),
            },
            key,
        ))
        .await;
    assert_error(result, Code::Unauthenticated, reason);
    let result = issuer
        .list_sessions(request(
            pb::ListSessionsRequest {
                subject: "dave".into(),
                ..Default::default()
            },
            key,
        ))
        .await;
    assert_error(result, Code::Unauthenticated, reason);
    let result = issuer
        .extend_session(request(
            pb::ExtendSessionRequest {
                session_id: id.clone(),
                lifespan: None,
            },
            key,
        ))
        .await;
    assert_error(result, Code::Unauthenticated, reason);
    let result = issuer
        .revoke_session(request(
            pb::RevokeSessionRequest {
                session_id: id.clone(),
            },
            key,
        ))
        .await;
    assert_error(result, Code::Unauthenticated, reason);
    let result = issuer
        .revoke_subject_sessions(request(
            pb::RevokeSubjectSessionsRequest {
                subject: "dave".into(),
                except_session_id: String::new(),
            },
            key,
        ))
        .await;
    assert_error(result, Code::Unauthenticated, reason);

    // Nothing changed: the session is still active, the nonce still unused.
    let who = h
        .validator()
        .await
        .who_am_i(pb::WhoAmIRequest {
            tokenize_as: String::new(),
            session_token: created.session_key,
            ..Default::default()
        })
        .await;
    assert!(who.is_ok());
    let authorized = issuer
        .authorize_session(crate::harness::admin(pb::AuthorizeSessionRequest {
            nonce: pending.nonce,
            permissions: vec!["token:read".into()],
            ..Default::default()
        }))
        .await;
    assert!(authorized.is_ok());
}

async fn admin_calls_refuse_missing_and_wrong_keys(h: Harness) {
    assert_every_admin_call_refused(&h, None, "ADMIN_KEY_MISSING").await;
    assert_every_admin_call_refused(
        &h,
        Some("not-the-admin-key-0123456789"),
        "ADMIN_KEY_INVALID",
    )
    .await;
    // A session key is not an admin key.
    let (created, _) = h.active_session("", &["token:read"], vec![]).await;
    assert_every_admin_call_refused(&h, Some(&created.session_key), "ADMIN_KEY_INVALID").await;
}

async fn create_session_needs_no_admin_key(h: Harness) {
    let created = h
        .issuer()
        .await
        .create_session(pb::CreateSessionRequest::default())
        .await;
    assert!(created.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_key_file_is_reread_when_it_changes() {
    use std::time::Duration;

    use crate::harness::{IssuerServiceClient, Role, Server, channel_to, eventually, listener};

    let h = Harness::memory().await;
    let path = std::env::temp_dir().join(format!("sigil-admin-keys-{}", std::process::id()));
    // Replaced atomically, as a mounted Kubernetes Secret is.
    let write = |contents: String| {
        let staged = path.with_extension("new");
        std::fs::write(&staged, contents).unwrap();
        std::fs::rename(&staged, &path).unwrap();
    };
    let old_key = "old-admin-key-0123456789abcdef";
    let new_key = "new-admin-key-0123456789abcdef-rotated";
    write(format!("# rotated by the test\n{old_key}\n"));
    let args = sigil_runtime::AdminArgs {
        admin_keys: vec![],
        admin_keys_file: Some(path.clone()),
        admin_rate_per_key: 0,
    };
    let mut context = h.context.clone();
    context.admin = args.keys().unwrap();
    let watcher = tokio::spawn(sigil_runtime::watch_admin_keys(
        args,
        context.admin.clone(),
        Duration::from_millis(20),
    ));
    let server = Server::spawn(&context, Role::Issuer, listener().await);
    let issuer = IssuerServiceClient::new(channel_to(server.address).await);
    let list = |key: &'static str| {
        let mut issuer = issuer.clone();
        async move {
            issuer
                .list_sessions(with_bearer(
                    pb::ListSessionsRequest {
                        subject: "zoe".into(),
                        ..Default::default()
                    },
                    key,
                ))
                .await
        }
    };
    assert!(list(old_key).await.is_ok());

    // Both keys during the rotation, then only the new one.
    write(format!("{old_key}\n{new_key}\n"));
    eventually("the new key accepted", || async {
        list(new_key).await.is_ok()
    })
    .await;
    assert!(list(old_key).await.is_ok());
    write(format!("{new_key}\n"));
    eventually("the old key refused", || async {
        list(old_key).await.is_err()
    })
    .await;
    assert_error(
        list(old_key).await,
        Code::Unauthenticated,
        "ADMIN_KEY_INVALID",
    );
    watcher.abort();
    let _ = std::fs::remove_file(path);
}
