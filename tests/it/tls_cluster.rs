//! A Redis Cluster over TLS only (`rediss+cluster://`): every node with
//! `--port 0 --tls-port … --tls-cluster yes`, so clients and the cluster bus
//! alike speak TLS, with certificates made here by rcgen.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use sigil_proto::v1 as pb;
use sigil_store::RedisStore;
use tonic::Code;

use crate::{
    harness::{
        DEADLINE, Harness, PORT_ATTEMPTS, Role, Server, ValidatorServiceClient, channel_to,
        free_port, listener,
    },
    redis_access::{plain_config, whole_flow, write_certificates},
};

/// Three TLS-only cluster masters on free loopback ports; killed on drop.
struct TlsCluster {
    ports: Vec<u16>,
    nodes: Vec<Child>,
    dir: PathBuf,
    ca_pem: String,
}

impl TlsCluster {
    async fn start() -> TlsCluster {
        let dir = std::env::temp_dir().join(format!(
            "sigil-tls-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        let ca_pem = write_certificates(&dir);
        let file = |name: &str| dir.join(name).display().to_string();
        let mut cluster = TlsCluster {
            ports: Vec::new(),
            nodes: Vec::new(),
            dir: dir.clone(),
            ca_pem,
        };
        for _ in 0..3 {
            let (port, node) = cluster.start_node().await;
            cluster.ports.push(port);
            cluster.nodes.push(node);
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let ca = file("ca.pem");
        let created = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .args(["--tls", "--cacert", &ca, "--cluster", "create"])
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdin(Stdio::null())
                .output()
                .expect("redis-cli on PATH")
        })
        .await
        .expect("redis-cli ran");
        assert!(
            created.status.success(),
            "redis-cli --cluster create over TLS failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        for &port in &cluster.ports {
            cluster
                .until(port, &["CLUSTER", "INFO"], "cluster_state:ok")
                .await;
        }
        cluster
    }

    /// Starts a node on free client and bus ports, and on others while the
    /// server exits before it listens (a port taken between choosing and
    /// binding it); its port and process once it answers PING.
    async fn start_node(&self) -> (u16, Child) {
        let file = |name: &str| self.dir.join(name).display().to_string();
        for _ in 0..PORT_ATTEMPTS {
            let (port, bus_port) = (free_port(), free_port());
            let node_dir = self.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("a node directory");
            let node_dir = node_dir.display().to_string();
            let mut node = Command::new("redis-server")
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--cluster-port", &bus_port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
                .args(["--tls-cert-file", &file("cert.pem")])
                .args(["--tls-key-file", &file("key.pem")])
                .args(["--tls-ca-cert-file", &file("ca.pem")])
                .args(["--tls-auth-clients", "no"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("{node_dir}/nodes.conf")])
                .args(["--save", "", "--appendonly", "no", "--dir", &node_dir])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH");
            let started = Instant::now();
            loop {
                if self.answers(port, &["PING"], "PONG") {
                    return (port, node);
                }
                if let Ok(Some(_)) = node.try_wait() {
                    break;
                }
                assert!(started.elapsed() < DEADLINE, "no PONG from {port}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("a TLS cluster node found no free ports in {PORT_ATTEMPTS} attempts");
    }

    /// Whether `command` on the node on `port`, over TLS, answers with
    /// `expected` in it.
    fn answers(&self, port: u16, command: &[&str], expected: &str) -> bool {
        let answer = Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .args(["-p", &port.to_string()])
            .args(command)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli on PATH");
        String::from_utf8_lossy(&answer.stdout).contains(expected)
    }

    /// Polls `command` on the node on `port`, over TLS, until its answer
    /// holds `expected`.
    async fn until(&self, port: u16, command: &[&str], expected: &str) {
        let started = Instant::now();
        loop {
            if self.answers(port, command, expected) {
                return;
            }
            assert!(started.elapsed() < DEADLINE, "no {expected} from {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `rediss+cluster://` through every node, trusting the test's CA or
    /// only the system's roots.
    fn config(&self, trust_the_ca: bool) -> sigil_store::RedisConfig {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let mut config = plain_config(&format!("rediss+cluster://{}", seeds.join(",")));
        config.tls_ca = trust_the_ca.then(|| self.ca_pem.clone().into_bytes());
        config
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_cluster_with_the_ca_serves_the_flow_and_without_it_is_unavailable() {
    let cluster = TlsCluster::start().await;
    let h = Harness::over_store(Arc::new(
        RedisStore::new(&cluster.config(true)).expect("valid url"),
    ))
    .await;
    whole_flow(&h).await;

    // Sessions spread over every node, each read over TLS.
    let mut sessions = Vec::new();
    for n in 0..6 {
        let (created, _) = h
            .active_session(&format!("user{n}"), &["a:read"], vec![])
            .await;
        sessions.push(created);
    }
    let mut validator = h.validator().await;
    for created in &sessions {
        let answer = validator
            .who_am_i(pb::WhoAmIRequest {
                session_token: created.session_key.clone(),
                ..Default::default()
            })
            .await
            .expect("valid over TLS");
        assert_eq!(
            answer.into_inner().session.expect("a session").id,
            created.session_id
        );
    }

    // Not trusting the nodes' certificate: nothing is ever valid.
    let untrusting = h.context_over(&cluster.config(false));
    let server = Server::spawn(&untrusting, Role::All, listener().await);
    let status = ValidatorServiceClient::new(channel_to(server.address).await)
        .who_am_i(pb::WhoAmIRequest {
            session_token: sessions[0].session_key.clone(),
            ..Default::default()
        })
        .await
        .expect_err("no trusted connection");
    assert_eq!(status.code(), Code::Unavailable);
}
