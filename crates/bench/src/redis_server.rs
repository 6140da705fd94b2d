//! A `redis-server` of sigil-bench's own on a free loopback port, with no
//! persistence, killed when dropped. Never the machine's own Redis.

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::{BenchError, pin::command_on, server::free_port};

/// How long a starting redis-server has to answer PING.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// A running redis-server.
pub struct RedisServer {
    url: String,
    child: Child,
}

impl RedisServer {
    /// Starts one, pinned to `cpu` if given, and waits until it answers.
    pub async fn start(cpu: Option<usize>) -> Result<RedisServer, BenchError> {
        let port = free_port()?;
        let child = command_on(
            cpu.map(|cpu| cpu.to_string()).as_deref(),
            None,
            "redis-server",
        )
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| {
            BenchError(format!(
                "cannot start redis-server (is it installed? tests/run.sh installs it): {error}"
            ))
        })?;
        let mut server = RedisServer {
            url: format!("redis://127.0.0.1:{port}"),
            child,
        };
        server.wait_until_ready().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn wait_until_ready(&mut self) -> Result<(), BenchError> {
        let client = redis::Client::open(self.url.as_str())
            .map_err(|error| BenchError(format!("redis url: {error}")))?;
        let started = Instant::now();
        loop {
            if let Ok(Ok(mut connection)) = tokio::time::timeout(
                Duration::from_secs(1),
                client.get_multiplexed_async_connection(),
            )
            .await
            {
                let pong: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut connection).await;
                if pong.is_ok() {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError(format!(
                    "redis-server exited at start: {status}"
                )));
            }
            if started.elapsed() > START_DEADLINE {
                return Err(BenchError(
                    "redis-server did not answer PING within 10s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
