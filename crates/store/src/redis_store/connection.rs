//! How the store reaches Redis: one server or a Redis Cluster, in plain
//! TCP or TLS, with or without an ACL user.
//!
//! URL forms (`SIGIL_REDIS_URL`):
//! - `redis://[[user]:password@]host[:port][/db]`: one server;
//! - `rediss://…`: the same over TLS;
//! - `redis+cluster://[[user]:password@]host1[:port],host2[:port],…`: a
//!   Redis Cluster, reached first through any of these seed nodes (the
//!   others are learnt from the cluster); always database 0;
//! - `rediss+cluster://…`: the same over TLS.
//!
//! The store's code runs unchanged over either: [`Connection`] is one
//! `redis::aio::ConnectionLike` over a `ConnectionManager` or a cluster
//! connection, which routes each command to the node owning its key's slot.

use std::time::Duration;

use redis::{
    Client, Cmd, IntoConnectionInfo, Pipeline, RedisFuture, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};

/// Why a Redis store could not be built. The message never quotes the URL,
/// which may hold a password.
#[derive(Debug)]
pub struct RedisConfigError(String);

impl std::fmt::Display for RedisConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedisConfigError {}

impl RedisConfigError {
    pub(super) fn new(why: impl Into<String>) -> Self {
        RedisConfigError(why.into())
    }

    /// Redis refused the URL's credentials: its error code only, never the
    /// credentials.
    pub(super) fn refused(error: &redis::RedisError) -> Self {
        let cause = match error.code() {
            Some(code) => code,
            None if error.to_string().contains("NOPERM") => "NOPERM",
            None => "authentication failed",
        };
        RedisConfigError(format!(
            "Redis refused the URL's username or password ({cause})"
        ))
    }

    /// A redis-rs error, by its category and kind only: its detail may
    /// quote the URL.
    fn from_redis(what: &str, error: &redis::RedisError) -> Self {
        RedisConfigError(format!("{what}: {} ({:?})", error.category(), error.kind()))
    }
}

/// Where Redis is and how to talk to it, parsed from the URL.
#[derive(Clone)]
pub(super) enum Target {
    /// One server (which may have replicas of its own).
    Single(Box<Client>),
    /// A Redis Cluster. (Both boxed: clients of a few hundred bytes, of
    /// very different sizes.)
    Cluster(Box<ClusterClient>),
}

/// A connection to a single Redis or to a cluster; cheap to clone (both
/// kinds multiplex callers over shared sockets).
#[derive(Clone)]
pub(super) enum Connection {
    /// A single server, reconnecting by itself.
    Single(ConnectionManager),
    /// A cluster: one multiplexed connection per node, slots followed
    /// through MOVED and failovers.
    Cluster(ClusterConnection),
    /// One connection to a single server that does not reconnect: its
    /// owner notices a failure and starts over.
    Dedicated(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
            Connection::Dedicated(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Dedicated(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
            Connection::Dedicated(connection) => connection.get_db(),
        }
    }
}

const SINGLE: &str = "redis://";
const SINGLE_TLS: &str = "rediss://";
const CLUSTER: &str = "redis+cluster://";
const CLUSTER_TLS: &str = "rediss+cluster://";

impl Target {
    /// Parses `url`; `tls_roots` (PEM) replaces the system's trusted roots
    /// for a TLS URL.
    pub(super) fn parse(url: &str, tls_roots: Option<&[u8]>) -> Result<Target, RedisConfigError> {
        let (cluster, tls) = if url.starts_with(CLUSTER) {
            (true, false)
        } else if url.starts_with(CLUSTER_TLS) {
            (true, true)
        } else if url.starts_with(SINGLE) {
            (false, false)
        } else if url.starts_with(SINGLE_TLS) {
            (false, true)
        } else {
            return Err(RedisConfigError::new(
                "the URL must start with redis://, rediss://, redis+cluster:// or \
                 rediss+cluster://",
            ));
        };
        if tls_roots.is_some() && !tls {
            return Err(RedisConfigError::new(
                "a CA file is given but the URL is not TLS (rediss:// or rediss+cluster://)",
            ));
        }
        if tls {
            // rustls needs one process-wide crypto provider: aws-lc, the one
            // jsonwebtoken already uses. Installed already is fine.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: tls_roots.map(<[u8]>::to_vec),
        };
        if !cluster {
            let client = match tls_roots {
                Some(_) => Client::build_with_tls(url, certificates()),
                None => Client::open(url),
            }
            .map_err(|error| RedisConfigError::from_redis("not a valid Redis URL", &error))?;
            return Ok(Target::Single(Box::new(client)));
        }
        let nodes = cluster_seeds(url, tls)?;
        let mut builder = ClusterClientBuilder::new(nodes);
        if tls_roots.is_some() {
            builder = builder.certs(certificates());
        }
        let client = builder
            .build()
            .map_err(|error| RedisConfigError::from_redis("not a valid cluster URL", &error))?;
        Ok(Target::Cluster(Box::new(client)))
    }

    /// Whether this is a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// A connection that connects on first use and reconnects by itself,
    /// so the store starts even while Redis is down. Each attempt gives up
    /// after `timeout`, each answer after `response_timeout`.
    pub(super) fn lazy(
        &self,
        timeout: Duration,
        response_timeout: Duration,
    ) -> Result<Connection, RedisConfigError> {
        match self {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(timeout);
                ConnectionManager::new_lazy_with_config(Client::clone(client), config)
                    .map(Connection::Single)
                    .map_err(|error| RedisConfigError::from_redis("cannot set up Redis", &error))
            }
            Target::Cluster(client) => Ok(Connection::Cluster(
                client.get_pending_async_connection_with_config(cluster_config(
                    timeout,
                    response_timeout,
                )),
            )),
        }
    }

    /// A connection of its own, connected now: for a blocking read that
    /// must not stall the shared connection.
    pub(super) async fn dedicated(
        &self,
        timeout: Duration,
        response_timeout: Duration,
    ) -> redis::RedisResult<Connection> {
        match self {
            Target::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(response_timeout));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Connection::Dedicated)
            }
            Target::Cluster(client) => client
                .get_async_connection_with_config(cluster_config(timeout, response_timeout))
                .await
                .map(Connection::Cluster),
        }
    }
}

/// Waits between attempts to reconnect a connection of its own (the event
/// feed's follower, key tracking), longer after each failure in a row.
const RECONNECT_DELAYS: [Duration; 4] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
];

/// Sleeps before the next attempt to reconnect after `failures` failures in
/// a row, and counts this one; the owner resets `failures` once connected.
pub(super) async fn pause_before_reconnecting(failures: &mut usize) {
    let delay = RECONNECT_DELAYS[(*failures).min(RECONNECT_DELAYS.len() - 1)];
    *failures += 1;
    tokio::time::sleep(delay).await;
}

/// How a cluster connection waits: each attempt bounded, and the whole
/// request (redirects and retries after a failover included) bounded by
/// the same response timeout, so a store call's deadline holds.
fn cluster_config(timeout: Duration, response_timeout: Duration) -> redis::cluster::ClusterConfig {
    redis::cluster::ClusterConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(response_timeout)
}

/// The seed nodes of a `redis+cluster://` or `rediss+cluster://` URL, each
/// as a `redis://` or `rediss://` URL with the same credentials.
fn cluster_seeds(url: &str, tls: bool) -> Result<Vec<redis::ConnectionInfo>, RedisConfigError> {
    let scheme = if tls { "rediss" } else { "redis" };
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    // The authority ends at the first `/`, `?` or `#`: none may appear
    // unescaped in credentials or hosts.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !matches!(tail, "" | "/" | "/0") {
        return Err(RedisConfigError::new(
            "a cluster URL takes no database, path or parameters after the hosts (a cluster \
             has database 0 only)",
        ));
    }
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    let seeds: Vec<&str> = hosts.split(',').filter(|host| !host.is_empty()).collect();
    if seeds.is_empty() {
        return Err(RedisConfigError::new(
            "a cluster URL needs at least one host[:port]",
        ));
    }
    seeds
        .into_iter()
        .map(|host| {
            format!("{scheme}://{credentials}{host}")
                .into_connection_info()
                .map_err(|error| {
                    RedisConfigError::from_redis(
                        "a cluster seed is not a valid host[:port]",
                        &error,
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Result<bool, &str>) {
        let parsed = Target::parse(url, None).map(|target| target.is_cluster());
        match (parsed, expected) {
            (Ok(cluster), Ok(expected)) => assert_eq!(cluster, expected, "{url}"),
            (Err(error), Err(expected)) => {
                let message = error.to_string();
                assert!(message.contains(expected), "{url}: {message}");
                assert!(
                    !message.contains("s3cret"),
                    "{url} leaks the password: {message}"
                );
            }
            (parsed, expected) => panic!("{url}: {:?} instead of {expected:?}", parsed.err()),
        }
    }

    #[test]
    fn every_url_form_parses_or_says_why_not() {
        check("redis://127.0.0.1:6379", Ok(false));
        check("redis://sigil:s3cret@127.0.0.1:6379/2", Ok(false));
        check("rediss://:s3cret@redis.example:6380", Ok(false));
        check("redis+cluster://127.0.0.1:7001,127.0.0.1:7002", Ok(true));
        check("redis+cluster://sigil:s3cret@a:7001,b:7002/", Ok(true));
        check("rediss+cluster://sigil:s3cret@a:7001", Ok(true));
        check("http://sigil:s3cret@a:7001", Err("must start with"));
        check("redis+cluster://sigil:s3cret@", Err("at least one host"));
        check(
            "redis+cluster://sigil:s3cret@a:7001/3",
            Err("database 0 only"),
        );
        check(
            "redis+cluster://a:7001?protocol=resp3",
            Err("no database, path"),
        );
        check(
            "redis+cluster://sigil:s3cret@a:notaport",
            Err("not a valid host"),
        );
    }

    #[test]
    fn a_ca_file_needs_a_tls_url() {
        let error = Target::parse("redis://a:6379", Some(b"pem"))
            .err()
            .expect("refused");
        assert!(error.to_string().contains("not TLS"));
    }

    #[test]
    fn cluster_seeds_keep_the_credentials_of_the_url() {
        let seeds = cluster_seeds("rediss+cluster://sigil:s3cret@a:7001,b", true).expect("valid");
        assert_eq!(seeds.len(), 2);
        for seed in &seeds {
            assert_eq!(seed.redis_settings().username(), Some("sigil"));
            assert_eq!(seed.redis_settings().password(), Some("s3cret"));
        }
    }
}
