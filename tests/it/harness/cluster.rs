//! A real Redis Cluster of the test's own: `redis-server --cluster-enabled
//! yes` per node on free loopback ports (client and bus port both chosen
//! free), joined by `redis-cli --cluster create`, stopped on drop. Never
//! the machine's own Redis.
//!
//! A cluster takes a second or two to form, so the scenario suite leases
//! clusters from a pool ([`RedisCluster::lease`]) and flushes one before
//! each lease instead of forming one per test.

use std::{
    io::Write as _,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{DEADLINE, PORT_ATTEMPTS, free_port};

/// One `redis-server` of a cluster.
struct Node {
    port: u16,
    /// Where the server logs, to see whether it could listen.
    log: PathBuf,
    /// The `sh` that runs the server and kills it once its stdin closes:
    /// on drop, or when the test process exits however it exits (a pooled
    /// cluster is never dropped); with the signal written to it, if any.
    keeper: Child,
    stdin: Mutex<Option<ChildStdin>>,
}

impl Node {
    fn start(dir: &std::path::Path) -> Node {
        let port = free_port();
        let bus_port = free_port();
        let node_dir = dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("a node directory");
        let log = node_dir.join("redis.log");
        let node_dir = node_dir.display().to_string();
        let mut keeper = Command::new("sh")
            .arg("-c")
            .arg(r#"redis-server "$@" & server=$!; read signal; kill -"${signal:-TERM}" "$server""#)
            .arg("sh")
            .args(["--port", &port.to_string()])
            .args(["--cluster-port", &bus_port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("{node_dir}/nodes.conf")])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &node_dir])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh and redis-server on PATH");
        let stdin = Mutex::new(keeper.stdin.take());
        Node {
            port,
            log,
            keeper,
            stdin,
        }
    }

    /// Starts a node in `dir`, on other free ports while the ones chosen
    /// turn out taken before the server could bind them (by another test's
    /// server, or a connection's local port); waits until it listens.
    async fn start_listening(dir: &std::path::Path) -> Node {
        for _ in 0..PORT_ATTEMPTS {
            let mut node = Node::start(dir);
            if node.until_listening().await {
                return node;
            }
            node.stop();
        }
        panic!("a cluster node found no free ports in {PORT_ATTEMPTS} attempts");
    }

    /// Waits until the server's log says it listens (`true`) or that it
    /// could not (`false`).
    async fn until_listening(&self) -> bool {
        let started = Instant::now();
        loop {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if log.contains("Ready to accept connections") {
                return true;
            }
            if log.contains("Address already in use") || log.contains("aborting") {
                return false;
            }
            assert!(started.elapsed() < DEADLINE, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn stop(&mut self) {
        // Closing the pipe ends `read`, and the keeper kills the server.
        self.signal("TERM");
        let _ = self.keeper.wait();
    }

    /// Has the keeper send `signal` to the server (once: the keeper ends).
    fn signal(&self, signal: &str) {
        if let Some(mut stdin) = self.stdin.lock().expect("stdin lock").take() {
            let _ = writeln!(stdin, "{signal}");
        }
    }
}

/// A Redis Cluster on free loopback ports; every node stopped on drop.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
    /// Nodes killed by [`kill`](RedisCluster::kill), left out of `ports`.
    killed: Mutex<Vec<u16>>,
}

/// Clusters of the pool not leased right now.
static IDLE: Mutex<Vec<RedisCluster>> = Mutex::new(Vec::new());

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each, and waits
    /// until every node says `cluster_state:ok` and every replica is in
    /// sync.
    pub async fn start(masters: usize, replicas: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "sigil-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            nodes.push(Node::start_listening(&dir).await);
        }
        let cluster = RedisCluster {
            nodes,
            dir,
            killed: Mutex::new(Vec::new()),
        };
        for port in cluster.ports() {
            until_answers(port).await;
        }
        let addresses: Vec<String> = cluster
            .ports()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let replicas = replicas.to_string();
        let created = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&addresses)
                .args(["--cluster-replicas", &replicas, "--cluster-yes"])
                .stdin(Stdio::null())
                .output()
                .expect("redis-cli on PATH")
        })
        .await
        .expect("redis-cli ran");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        cluster.until_ok().await;
        cluster
    }

    /// A 3-master cluster without replicas from the pool, flushed: the
    /// store scenarios' cluster. Returned to the pool when the lease drops.
    pub async fn lease() -> ClusterLease {
        let idle = IDLE.lock().expect("pool lock").pop();
        let cluster = match idle {
            Some(cluster) => cluster,
            None => RedisCluster::start(3, 0).await,
        };
        for port in cluster.ports() {
            let mut connection = node_connection(port).await;
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut connection)
                .await
                .expect("FLUSHALL");
        }
        ClusterLease {
            cluster: Some(cluster),
            pooled: true,
        }
    }

    /// This cluster as a harness holds it: stopped, not pooled, when the
    /// harness drops.
    pub fn into_lease(self) -> ClusterLease {
        ClusterLease {
            cluster: Some(self),
            pooled: false,
        }
    }

    /// The port of the master that owns `key`'s slot now: the one node
    /// that answers for it instead of redirecting with MOVED.
    pub async fn owner_of(&self, key: &str) -> u16 {
        for port in self.ports() {
            let mut connection = node_connection(port).await;
            let answer: redis::RedisResult<i64> = redis::cmd("EXISTS")
                .arg(key)
                .query_async(&mut connection)
                .await;
            if answer.is_ok() && role(port).await == "master" {
                return port;
            }
        }
        panic!("no master owns {key}")
    }

    /// `redis+cluster://` with every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Every live node's port.
    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .map(|node| node.port)
            .filter(|port| !self.killed.lock().expect("killed lock").contains(port))
    }

    /// Kills the node on `port` with SIGKILL, as a crash would; it is left
    /// out of [`ports`](Self::ports) from now on.
    pub fn kill(&self, port: u16) {
        self.killed.lock().expect("killed lock").push(port);
        if let Some(node) = self.nodes.iter().find(|node| node.port == port) {
            node.signal("KILL");
        }
    }

    /// The port of the replica of the master on `master`.
    pub async fn replica_of(&self, master: u16) -> u16 {
        for port in self.ports() {
            let mut connection = node_connection(port).await;
            let role: Vec<redis::Value> = redis::cmd("ROLE")
                .query_async(&mut connection)
                .await
                .expect("ROLE");
            if let [_, _, redis::Value::Int(of), ..] = role.as_slice()
                && *of == i64::from(master)
            {
                return port;
            }
        }
        panic!("no replica of {master}")
    }

    /// Whether the node on `port` is a master now.
    pub async fn is_master(&self, port: u16) -> bool {
        role(port).await == "master"
    }

    /// Moves `slot`, with its keys, from the master on `from` to the one on
    /// `to` as `redis-cli --cluster reshard` does: `IMPORTING` and
    /// `MIGRATING` (clients get ASK for keys already moved), `MIGRATE` in
    /// batches, then `SETSLOT … NODE` on every master.
    pub async fn move_slot(&self, slot: u16, from: u16, to: u16) {
        let mut source = node_connection(from).await;
        let mut target = node_connection(to).await;
        let id = |mut connection: redis::aio::MultiplexedConnection| async move {
            redis::cmd("CLUSTER")
                .arg("MYID")
                .query_async::<String>(&mut connection)
                .await
                .expect("CLUSTER MYID")
        };
        let (source_id, target_id) = (id(source.clone()).await, id(target.clone()).await);
        let setslot = |state: &'static str, node: &str| {
            let mut command = redis::cmd("CLUSTER");
            command.arg("SETSLOT").arg(slot).arg(state).arg(node);
            command
        };
        let _: () = setslot("IMPORTING", &source_id)
            .query_async(&mut target)
            .await
            .expect("SETSLOT IMPORTING");
        let _: () = setslot("MIGRATING", &target_id)
            .query_async(&mut source)
            .await
            .expect("SETSLOT MIGRATING");
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(10)
                .query_async(&mut source)
                .await
                .expect("GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            let _: () = redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(to)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .query_async(&mut source)
                .await
                .expect("MIGRATE");
        }
        // The target first, then the source, as redis-cli does; then the
        // others, which would otherwise learn it through the bus.
        for port in [to, from].into_iter().chain(self.ports()) {
            if self.is_master(port).await {
                let _: () = setslot("NODE", &target_id)
                    .query_async(&mut node_connection(port).await)
                    .await
                    .expect("SETSLOT NODE");
            }
        }
    }

    /// A direct connection to the node on `port`, to look at or steer it.
    pub async fn node(&self, port: u16) -> redis::aio::MultiplexedConnection {
        node_connection(port).await
    }

    /// The ports of the replicas, as the nodes say now.
    pub async fn replica_ports(&self) -> Vec<u16> {
        let mut replicas = Vec::new();
        for port in self.ports() {
            if role(port).await == "slave" {
                replicas.push(port);
            }
        }
        replicas
    }

    /// Waits until every node sees the cluster as `ok`, each replica's link
    /// to its master is up and each master counts its replicas online (a
    /// replica still loading or unacknowledged is not counted by `WAIT`).
    pub async fn until_ok(&self) {
        let started = Instant::now();
        for port in self.ports() {
            let mut connection = node_connection(port).await;
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut connection)
                    .await
                    .expect("CLUSTER INFO");
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut connection)
                    .await
                    .expect("INFO");
                let synced = if replication.contains("role:master") {
                    replication
                        .lines()
                        .filter(|line| line.starts_with("slave") && line.contains("state="))
                        .all(|line| line.contains("state=online"))
                } else {
                    replication.contains("master_link_status:up")
                };
                if info.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(started.elapsed() < DEADLINE, "the cluster did not form");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cluster held by one harness: back to the pool, or stopped, when
/// dropped.
pub struct ClusterLease {
    cluster: Option<RedisCluster>,
    pooled: bool,
}

impl std::ops::Deref for ClusterLease {
    type Target = RedisCluster;

    fn deref(&self) -> &RedisCluster {
        self.cluster.as_ref().expect("leased")
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take()
            && self.pooled
        {
            IDLE.lock().expect("pool lock").push(cluster);
        }
    }
}

async fn node_connection(port: u16) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("the node answers")
}

/// `master` or `slave`, as `ROLE` says.
async fn role(port: u16) -> String {
    let mut connection = node_connection(port).await;
    let role: Vec<redis::Value> = redis::cmd("ROLE")
        .query_async(&mut connection)
        .await
        .expect("ROLE");
    match role.first() {
        Some(redis::Value::BulkString(role)) => String::from_utf8_lossy(role).into_owned(),
        Some(redis::Value::SimpleString(role)) => role.clone(),
        other => panic!("unexpected ROLE answer {other:?}"),
    }
}

/// Waits until the server on `port` answers PING.
async fn until_answers(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("valid url");
    let started = Instant::now();
    loop {
        if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
            let pong: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut connection).await;
            if pong.is_ok() {
                return;
            }
        }
        assert!(started.elapsed() < DEADLINE, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
