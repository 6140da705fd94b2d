//! The load: a fixed number of connections and of calls in flight, each in
//! flight slot a task that calls, waits, records and calls again, for a
//! warm-up and then a measured duration.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::{
    BenchError,
    machine::cpu_time,
    rng::FastRng,
    scenario::{CallFailure, Clients, Scenario, Workload},
};

/// Longest latency the histograms hold, in microseconds; longer calls
/// count at this value (they are also over any sane request timeout).
const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// Slack past the measured window for calls still in flight to finish
/// before the run is declared stuck.
const DRAIN_SLACK: Duration = Duration::from_secs(5);

/// The shape of the load.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// HTTP/2 connections.
    pub connections: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// A call slower than this is a CLIENT_TIMEOUT.
    pub request_timeout: Duration,
    /// Most calls in all.
    pub max_requests: u64,
}

impl Shape {
    /// This shape as `scenario` runs it: a scenario that fixes its calls
    /// in flight gets those, over as many connections.
    pub fn for_scenario(self, scenario: Scenario) -> Shape {
        match scenario.fixed_in_flight() {
            Some(in_flight) => Shape {
                connections: in_flight.min(self.connections),
                concurrency: in_flight,
                ..self
            },
            None => self,
        }
    }
}

/// What the measured window saw.
pub struct Tally {
    /// Latency of successful calls, in microseconds.
    pub latency_micros: Histogram<u64>,
    /// Failed calls by [`CallFailure::name`].
    pub errors: BTreeMap<&'static str, u64>,
    /// The measured window.
    pub measured: Duration,
    /// CPU time the server process used from the window's start until the
    /// last call ended, when its process is known.
    pub server_cpu: Option<Duration>,
}

impl Tally {
    fn new() -> Result<Tally, BenchError> {
        Ok(Tally {
            latency_micros: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .map_err(|error| BenchError(format!("histogram: {error}")))?,
            errors: BTreeMap::new(),
            measured: Duration::ZERO,
            server_cpu: None,
        })
    }

    fn merge(&mut self, other: Tally) -> Result<(), BenchError> {
        self.latency_micros
            .add(&other.latency_micros)
            .map_err(|error| BenchError(format!("histogram: {error}")))?;
        for (name, count) in other.errors {
            *self.errors.entry(name).or_default() += count;
        }
        Ok(())
    }
}

/// `count` connections to `endpoint`, each its own HTTP/2 connection.
pub async fn connect(endpoint: &str, count: usize) -> Result<Vec<Channel>, BenchError> {
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|error| BenchError(format!("bad endpoint {endpoint}: {error}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = endpoint.connect().await.map_err(|error| {
            BenchError(format!("cannot connect to {}: {error}", endpoint.uri()))
        })?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Runs `workload` against `endpoint` as `shape` says, reporting progress
/// on stderr under `label`, and the CPU time of process `server_pid` over
/// the window.
pub async fn drive(
    endpoint: &str,
    workload: Arc<Workload>,
    shape: Shape,
    label: &str,
    server_pid: Option<u32>,
) -> Result<Tally, BenchError> {
    let channels = connect(endpoint, shape.connections).await?;
    let started = Instant::now();
    let window = Window {
        from: started + shape.warmup,
        until: started + shape.warmup + shape.duration,
    };
    let completed = Arc::new(AtomicU64::new(0));
    let per_worker_cap = shape.max_requests.div_ceil(shape.concurrency as u64);
    let mut workers = JoinSet::new();
    for worker in 0..shape.concurrency {
        let clients = Clients::new(channels[worker % channels.len()].clone());
        let workload = workload.clone();
        let completed = completed.clone();
        let mut tally = Tally::new()?;
        workers.spawn(async move {
            let mut rng = FastRng::new(0x5167_11b3_0000_0000 ^ worker as u64);
            let mut clients = clients;
            for _ in 0..per_worker_cap {
                let call_started = Instant::now();
                if call_started >= window.until {
                    break;
                }
                let result = match tokio::time::timeout(
                    shape.request_timeout,
                    workload.call(&mut clients, &mut rng),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(CallFailure::ClientTimeout),
                };
                // Calls started in the warm-up do not count; calls started
                // in the window count even if they end just after it.
                if call_started < window.from {
                    continue;
                }
                match result {
                    Ok(()) => {
                        let micros = call_started.elapsed().as_micros();
                        tally
                            .latency_micros
                            .saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                        completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => *tally.errors.entry(failure.name()).or_default() += 1,
                }
            }
            tally
        });
    }

    let window_start = tokio::time::Instant::from_std(window.from);
    let cpu_at_window_start = tokio::spawn(async move {
        tokio::time::sleep_until(window_start).await;
        server_pid.and_then(cpu_time)
    });

    let mut total = Tally::new()?;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let stuck_at =
        tokio::time::Instant::from_std(window.until + shape.request_timeout + DRAIN_SLACK);
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                Some(Ok(tally)) => total.merge(tally)?,
                Some(Err(error)) => return Err(BenchError(format!("a load task failed: {error}"))),
                None => break,
            },
            _ = ticker.tick() => progress(label, started, &window, &completed),
            () = tokio::time::sleep_until(stuck_at) => {
                workers.abort_all();
                return Err(BenchError(format!("{label}: calls did not finish after the window")));
            }
        }
    }
    total.measured = window.until - window.from;
    let cpu_at_end = server_pid.and_then(cpu_time);
    if let (Ok(Some(start)), Some(end)) = (cpu_at_window_start.await, cpu_at_end) {
        total.server_cpu = Some(end.saturating_sub(start));
    }
    Ok(total)
}

#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

fn progress(label: &str, started: Instant, window: &Window, completed: &AtomicU64) {
    let now = Instant::now();
    if now < window.from {
        eprintln!(
            "{label}: warming up, {:.0} s",
            started.elapsed().as_secs_f64()
        );
        return;
    }
    let measured = now.min(window.until) - window.from;
    let done = completed.load(Ordering::Relaxed);
    eprintln!(
        "{label}: {:.0} s measured, {done} calls, {:.0}/s",
        measured.as_secs_f64(),
        done as f64 / measured.as_secs_f64().max(1e-3)
    );
}
