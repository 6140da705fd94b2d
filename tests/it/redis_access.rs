//! Reaching Redis over TLS (`rediss://`, certificates made here with rcgen)
//! and as an ACL user, and the startup error for credentials Redis refuses.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Parser;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use sigil_proto::v1 as pb;
use sigil_runtime::{CommonArgs, Context};
use sigil_store::{InvalidationSource, RedisStore};
use tonic::Code;

use crate::harness::{DEADLINE, Harness, PORT_ATTEMPTS, RedisServer, eventually, free_port};

/// A `redis-server` that speaks TLS only, with a certificate for
/// `127.0.0.1` signed by a CA made for the test; killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
    dir: PathBuf,
    ca_pem: String,
}

impl TlsRedis {
    /// Starts one on a free port, and on another while the server exits
    /// before it listens (the port taken between choosing and binding it).
    async fn start() -> TlsRedis {
        for _ in 0..PORT_ATTEMPTS {
            if let Some(server) = TlsRedis::start_on_a_free_port().await {
                return server;
            }
        }
        panic!("a TLS redis-server found no free port in {PORT_ATTEMPTS} attempts");
    }

    async fn start_on_a_free_port() -> Option<TlsRedis> {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sigil-tls-{}-{port}", std::process::id()));
        let ca_pem = write_certificates(&dir);
        let file = |name: &str| dir.join(name).display().to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &file("cert.pem")])
            .args(["--tls-key-file", &file("key.pem")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let mut server = TlsRedis {
            port,
            child,
            dir,
            ca_pem,
        };
        let store = RedisStore::new(&server.config(true)).expect("valid url");
        let started = Instant::now();
        while sigil_store::SessionStore::ping(&store).await.is_err() {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "redis-server did not start TLS"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(server)
    }

    /// How to reach it, trusting the test's CA or only the system's roots.
    fn config(&self, trust_the_ca: bool) -> sigil_store::RedisConfig {
        let mut config = plain_config(&format!("rediss://127.0.0.1:{}", self.port));
        config.tls_ca = trust_the_ca.then(|| self.ca_pem.clone().into_bytes());
        config
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `cert.pem` and `key.pem` (for `127.0.0.1`, as server and as
/// client, which a cluster's nodes are to each other) and `ca.pem`, the CA
/// made here that signed them, into `dir`; returns the CA's PEM.
pub(crate) fn write_certificates(dir: &std::path::Path) -> String {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sigil test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "redis");
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    ca.pem()
}

pub(crate) fn plain_config(url: &str) -> sigil_store::RedisConfig {
    sigil_store::RedisConfig {
        url: url.to_owned(),
        ..redis_config_template()
    }
}

/// Every setting as the harness has it, but the URL.
fn redis_config_template() -> sigil_store::RedisConfig {
    sigil_store::RedisConfig {
        url: String::new(),
        tls_ca: None,
        timeout: Duration::from_millis(500),
        event_retention: sigil_store::DEFAULT_EVENT_RETENTION,
        max_pending_sessions: sigil_store::DEFAULT_MAX_PENDING_SESSIONS,
        confirm_replicas: 0,
        confirm_aof: false,
        confirm_timeout: Duration::from_millis(100),
    }
}

/// Creates, authorizes, checks and revokes a session through `h`.
pub(crate) async fn whole_flow(h: &Harness) {
    let (created, _) = h.active_session("ann", &["a:read"], vec![]).await;
    let mut validator = h.validator().await;
    let who = |key: String| pb::WhoAmIRequest {
        session_token: key,
        ..Default::default()
    };
    validator
        .who_am_i(who(created.session_key.clone()))
        .await
        .expect("valid");
    h.issuer()
        .await
        .revoke_session(crate::harness::admin(pb::RevokeSessionRequest {
            session_id: created.session_id.clone(),
        }))
        .await
        .expect("revoked");
    let status = validator
        .who_am_i(who(created.session_key))
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_ca_serves_the_flow_and_without_it_is_unavailable() {
    let redis = TlsRedis::start().await;
    let h = Harness::over_store(Arc::new(
        RedisStore::new(&redis.config(true)).expect("valid url"),
    ))
    .await;
    whole_flow(&h).await;

    // Not trusting the server's certificate: nothing is ever valid.
    let (created, _) = h.active_session("bob", &["a:read"], vec![]).await;
    let untrusting = h.context_over(&redis.config(false));
    let server = crate::harness::Server::spawn(
        &untrusting,
        crate::harness::Role::All,
        crate::harness::listener().await,
    );
    let status = crate::harness::ValidatorServiceClient::new(
        crate::harness::channel_to(server.address).await,
    )
    .who_am_i(pb::WhoAmIRequest {
        session_token: created.session_key,
        ..Default::default()
    })
    .await
    .expect_err("no trusted connection");
    assert_eq!(status.code(), Code::Unavailable);
}

/// The flags a service starts with, from the environment's defaults and
/// `args`.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    common: CommonArgs,
}

async fn start_with_url(url: &str) -> Result<Context, String> {
    let flags = Flags::try_parse_from(["sigil-test", "--redis-url", url]).expect("flags parse");
    Context::connect(&flags.common).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_serves_the_flow_and_a_refused_password_stops_startup() {
    let redis = RedisServer::start().await;
    let mut connection = redis.connection().await;
    for command in [
        vec![
            "ACL",
            "SETUSER",
            "sigil",
            "on",
            ">s3cret-pass",
            "~sigil:*",
            "&*",
            "+@all",
        ],
        // Nobody else gets in: no password is no entry either.
        vec!["ACL", "SETUSER", "default", "off"],
    ] {
        let _: () = redis::cmd(command[0])
            .arg(&command[1..])
            .query_async(&mut connection)
            .await
            .expect("ACL SETUSER");
    }
    let port = redis.url().rsplit(':').next().unwrap().to_owned();
    let url = format!("redis://sigil:s3cret-pass@127.0.0.1:{port}");
    start_with_url(&url)
        .await
        .expect("the right password starts");
    let h = Harness::over_store(Arc::new(
        RedisStore::new(&plain_config(&url)).expect("valid url"),
    ))
    .await;
    whole_flow(&h).await;
    // The near-cache's key tracking runs as that user too: `CLIENT
    // TRACKING ON BCAST PREFIX sigil:{` is within `~sigil:* +@all` (the
    // client shows flag `t` only once Redis accepted it).
    let _caching = crate::near_cache::caching_validator(&h, InvalidationSource::KeyTracking);
    let as_sigil = redis::Client::open(url.as_str())
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("connected as sigil");
    eventually("the validator tracks keys as the ACL user", || {
        let mut connection = as_sigil.clone();
        async move {
            let clients: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut connection)
                .await
                .expect("CLIENT LIST");
            clients.lines().any(|client| {
                client.contains(" user=sigil ")
                    && client
                        .split(' ')
                        .any(|field| field.starts_with("flags=") && field.contains('t'))
            })
        }
    })
    .await;

    for refused in [
        format!("redis://sigil:wrong-pass@127.0.0.1:{port}"),
        format!("redis://127.0.0.1:{port}"),
    ] {
        let error = start_with_url(&refused)
            .await
            .err()
            .expect("refused credentials stop startup");
        assert!(error.starts_with("SIGIL_REDIS_URL: "), "{error}");
        assert!(error.contains("refused"), "{error}");
        assert!(!error.contains("wrong-pass"), "the password leaks: {error}");
    }
    // A Redis that is down is not a configuration error: it is waited for.
    drop(h);
    drop(redis);
    start_with_url(&url)
        .await
        .expect("a Redis that is down is waited for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_on_a_cluster_stops_startup() {
    let cluster = crate::harness::RedisCluster::start(3, 0).await;
    for port in cluster.ports() {
        let mut node = cluster.node(port).await;
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("s3cret-pass")
            .query_async(&mut node)
            .await
            .expect("CONFIG SET");
    }
    let seeds = cluster.url().replace("redis+cluster://", "");
    start_with_url(&format!("redis+cluster://:s3cret-pass@{seeds}"))
        .await
        .expect("the right password starts");
    let error = start_with_url(&format!("redis+cluster://:wrong-pass@{seeds}"))
        .await
        .err()
        .expect("a refused password stops startup");
    assert!(error.starts_with("SIGIL_REDIS_URL: "), "{error}");
    assert!(error.contains("refused"), "{error}");
    assert!(!error.contains("wrong-pass"), "the password leaks: {error}");
}
