//! What a run found, as a table for people and as JSON for files.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::{
    ceiling::{MgetCeiling, ParseCeiling, VerifyCeiling},
    cli::{ServerKind, StoreKind},
    load::Tally,
    machine::{Machine, Memory},
    server::MemoryOf,
    sessions::Creation,
};

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// How it ran.
    pub settings: Settings,
    /// Creating the sessions the read scenarios draw on, if any were.
    pub sessions: Option<Creation>,
    /// Creating the `--api-tokens` the validation scenarios draw on, if
    /// asked (`sessions` counts the tokens).
    pub api_tokens: Option<Creation>,
    /// Sigil's memory right after it reported SERVING, before any load.
    pub sigil_idle_memory: Option<ServerMemory>,
    /// Each measurement, in the order taken.
    pub measurements: Vec<Measurement>,
    /// The in-process and raw-Redis ceilings measured in the run.
    pub ceilings: Ceilings,
    /// Each scenario on `--scaling-cpus` against the same on one CPU.
    pub scaling: Vec<Scaling>,
    /// Issue 8's targets that this run's figures decide.
    pub targets: Vec<Target>,
}

/// One scenario on more CPUs against the same on the first Sigil's.
#[derive(Debug, Clone, Serialize)]
pub struct Scaling {
    /// The scenario.
    pub scenario: String,
    /// The CPUs of the second Sigil, as given.
    pub cpus: String,
    /// Requests/s on the first Sigil's CPU.
    pub narrow_requests_per_second: f64,
    /// Requests/s on `cpus`.
    pub wide_requests_per_second: f64,
    /// `wide` over `narrow`.
    pub ratio: f64,
    /// Server CPU per call on each, in microseconds.
    pub narrow_cpu_micros_per_call: Option<f64>,
    /// See `narrow_cpu_micros_per_call`.
    pub wide_cpu_micros_per_call: Option<f64>,
}

impl Scaling {
    /// `scenario` measured as `wide` (on `cpus`) against `narrow`.
    pub fn between(
        scenario: &str,
        narrow: &Measurement,
        wide: &Measurement,
        cpus: &str,
    ) -> Scaling {
        Scaling {
            scenario: scenario.to_owned(),
            cpus: cpus.to_owned(),
            narrow_requests_per_second: narrow.requests_per_second,
            wide_requests_per_second: wide.requests_per_second,
            ratio: wide.requests_per_second / narrow.requests_per_second.max(f64::EPSILON),
            narrow_cpu_micros_per_call: narrow.server_cpu_micros_per_call,
            wide_cpu_micros_per_call: wide.server_cpu_micros_per_call,
        }
    }
}

/// Ceilings that are not servers (see `ceiling.rs`), each measured right
/// before the first scenario it bounds.
#[derive(Debug, Default, Serialize)]
pub struct Ceilings {
    /// Raw jsonwebtoken verification per algorithm.
    pub jwt_verify: Vec<VerifyCeiling>,
    /// Raw `MGET` per batch size.
    pub mget: Vec<MgetCeiling>,
    /// Sigil's in-process work per API-token batch size.
    pub parsing: Vec<ParseCeiling>,
}

/// One of issue 8's targets, as this run's figures decide it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is compared, in words.
    pub target: String,
    /// The figure, usually a ratio.
    pub value: f64,
    /// What the target asks of `value`, e.g. `>= 0.8`.
    pub goal: String,
    /// Whether `value` meets `goal`.
    pub met: bool,
    /// The figures behind `value`.
    pub detail: String,
}

/// How a run was made.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// HTTP/2 connections per measurement.
    pub connections: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Measured seconds per scenario.
    pub duration_seconds: f64,
    /// Unmeasured seconds before each.
    pub warmup_seconds: f64,
    /// Sigil's store.
    pub store: StoreKind,
    /// Where the servers ran: `child processes`, `in process`, or the
    /// `--target` endpoint (baseline as a child process).
    pub servers: String,
    /// The CPU the servers were pinned to, if any.
    pub server_cpu: Option<usize>,
    /// The CPU the load was pinned to.
    pub client_cpu: Option<usize>,
    /// The share of each CPU the scaling comparison's Sigils were given
    /// as a cgroup CPU quota, if any (`--core-share`).
    pub core_share: Option<f64>,
    /// The CPU sigil-bench's redis-server was pinned to.
    pub redis_cpu: Option<usize>,
    /// Whether Sigil's validator ran with the session near-cache, and
    /// its source of invalidations if so (`event-feed`, `key-tracking`).
    pub session_cache: Option<&'static str>,
}

/// One scenario, measured.
#[derive(Debug, Serialize)]
pub struct Measurement {
    /// `baseline-echo`, `baseline-get`, or a scenario's name.
    pub name: String,
    /// Which server answered.
    pub server: ServerKind,
    /// Calls in flight during the measurement.
    pub in_flight: usize,
    /// Successful operations in the measured window.
    pub requests: u64,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Successful operations per second.
    pub requests_per_second: f64,
    /// Latency of successful operations, in microseconds.
    pub latency_micros: Latency,
    /// Failed operations by gRPC status code (or `UNEXPECTED_ANSWER`,
    /// `CLIENT_TIMEOUT`).
    pub errors: BTreeMap<String, u64>,
    /// Server CPU time (user + system, every thread) per call in the
    /// window, in microseconds: what a call costs the server, whether or
    /// not the load generator kept it busy. Only for a server process
    /// sigil-bench knows.
    pub server_cpu_micros_per_call: Option<f64>,
    /// The server's memory right after the measurement.
    pub server_memory: Option<ServerMemory>,
    /// This figure over the baseline measured just before it.
    pub against_baseline: Option<Ratio>,
    /// Redis commands by name (from `INFO commandstats`) that one call made,
    /// counted after the measurement with nothing else in flight; the
    /// store's health PINGs are left out. Only over a Redis sigil-bench
    /// knows.
    pub redis_commands_per_call: Option<BTreeMap<String, u64>>,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
}

/// A server's memory and whose process it is.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServerMemory {
    /// The figures.
    #[serde(flatten)]
    pub memory: Memory,
    /// Whose process.
    pub of: MemoryOf,
}

/// A Sigil figure over a baseline figure.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Which baseline measurement.
    pub baseline: String,
    /// Sigil's requests/s over the baseline's.
    pub requests_per_second: f64,
    /// Sigil's p99 over the baseline's.
    pub p99: f64,
    /// Sigil's server CPU per call over the baseline's, when both are
    /// known.
    pub server_cpu_per_call: Option<f64>,
    /// The baseline's own requests/s.
    pub baseline_requests_per_second: f64,
    /// The baseline's own server CPU per call, in microseconds.
    pub baseline_cpu_micros_per_call: Option<f64>,
}

impl Measurement {
    /// The measurement `tally` makes.
    pub fn new(
        name: &str,
        server: ServerKind,
        in_flight: usize,
        tally: &Tally,
        server_memory: Option<(Memory, MemoryOf)>,
    ) -> Measurement {
        let histogram = &tally.latency_micros;
        let seconds = tally.measured.as_secs_f64();
        let calls = histogram.len() + tally.errors.values().sum::<u64>();
        let server_cpu_micros_per_call = tally
            .server_cpu
            .filter(|_| calls > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / calls as f64);
        Measurement {
            name: name.to_owned(),
            server,
            in_flight,
            requests: histogram.len(),
            seconds,
            requests_per_second: histogram.len() as f64 / seconds.max(f64::EPSILON),
            latency_micros: Latency {
                p50: histogram.value_at_quantile(0.50),
                p99: histogram.value_at_quantile(0.99),
                p999: histogram.value_at_quantile(0.999),
                max: histogram.max(),
            },
            errors: tally
                .errors
                .iter()
                .map(|(name, count)| ((*name).to_owned(), *count))
                .collect(),
            server_cpu_micros_per_call,
            server_memory: server_memory.map(|(memory, of)| ServerMemory { memory, of }),
            against_baseline: None,
            redis_commands_per_call: None,
        }
    }

    /// Failed operations in all.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Sets this measurement's ratio to `baseline`; none when the baseline
    /// completed no call, as a ratio to nothing means nothing.
    pub fn compare_with(&mut self, baseline: &Measurement) {
        if baseline.requests == 0 {
            self.against_baseline = None;
            return;
        }
        self.against_baseline = Some(Ratio {
            baseline: baseline.name.clone(),
            requests_per_second: self.requests_per_second
                / baseline.requests_per_second.max(f64::EPSILON),
            p99: self.latency_micros.p99 as f64 / (baseline.latency_micros.p99.max(1)) as f64,
            server_cpu_per_call: self
                .server_cpu_micros_per_call
                .zip(baseline.server_cpu_micros_per_call)
                .filter(|(_, baseline)| *baseline > 0.0)
                .map(|(sigil, baseline)| sigil / baseline),
            baseline_requests_per_second: baseline.requests_per_second,
            baseline_cpu_micros_per_call: baseline.server_cpu_micros_per_call,
        });
    }
}

impl Report {
    /// The report as a plain-text table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let settings = &self.settings;
        let pin = |cpu: Option<usize>| {
            cpu.map_or_else(|| "unpinned".to_owned(), |cpu| format!("CPU {cpu}"))
        };
        let _ = writeln!(
            out,
            "sigil-bench on {} ({} CPUs, Linux {})\n\
             {} connections, {} in flight, {} s measured after {} s warm-up per scenario; \
             store {:?}{}; servers: {}, {}; load: {}; redis-server: {}",
            self.machine.cpu_model,
            self.machine.cpus,
            self.machine.kernel,
            settings.connections,
            settings.concurrency,
            settings.duration_seconds,
            settings.warmup_seconds,
            settings.store,
            match settings.session_cache {
                Some(invalidation) => format!(" (validator near-cache on, {invalidation})"),
                None => String::new(),
            },
            settings.servers,
            pin(settings.server_cpu),
            pin(settings.client_cpu),
            pin(settings.redis_cpu),
        );
        if let Some(creation) = &self.sessions {
            let _ = writeln!(
                out,
                "{} sessions created and authorized in {:.1} s ({:.0}/s, {} retried after \
                 UNAVAILABLE or a timeout)",
                creation.sessions, creation.seconds, creation.per_second, creation.retries
            );
        }
        let _ = writeln!(
            out,
            "\n{:<32} {:>9} {:>8} {:>8} {:>9} {:>8} {:>7} {:>8} {:>6} {:>6} {:>5}  {:<13} errors",
            "scenario",
            "req/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "RSS MiB",
            "CPU µs",
            "× req/s",
            "× p99",
            "× CPU",
            "Redis",
            "of baseline"
        );
        for measurement in &self.measurements {
            let rss = measurement.server_memory.map_or_else(
                || "-".to_owned(),
                |memory| {
                    let mark = match memory.of {
                        MemoryOf::ServerProcess => "",
                        MemoryOf::BenchProcess => "*",
                    };
                    format!("{:.1}{mark}", memory.memory.rss_kib as f64 / 1024.0)
                },
            );
            let (rate, p99, cpu_ratio, baseline) =
                measurement.against_baseline.as_ref().map_or_else(
                    || ("-".to_owned(), "-".to_owned(), "-".to_owned(), ""),
                    |ratio| {
                        (
                            format!("{:.2}", ratio.requests_per_second),
                            format!("{:.2}", ratio.p99),
                            ratio
                                .server_cpu_per_call
                                .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.2}")),
                            ratio.baseline.as_str(),
                        )
                    },
                );
            let cpu = measurement
                .server_cpu_micros_per_call
                .map_or_else(|| "-".to_owned(), |micros| format!("{micros:.1}"));
            let errors = if measurement.errors.is_empty() {
                "0".to_owned()
            } else {
                measurement
                    .errors
                    .iter()
                    .map(|(name, count)| format!("{name}={count}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let latency = measurement.latency_micros;
            let redis = measurement.redis_commands_per_call.as_ref().map_or_else(
                || "-".to_owned(),
                |commands| commands.values().sum::<u64>().to_string(),
            );
            let _ = writeln!(
                out,
                "{:<32} {:>9.0} {:>8} {:>8} {:>9} {:>8} {:>7} {:>8} {:>6} {:>6} {:>5}  {:<13} {errors}",
                measurement.name,
                measurement.requests_per_second,
                latency.p50,
                latency.p99,
                latency.p999,
                rss,
                cpu,
                rate,
                p99,
                cpu_ratio,
                redis,
                baseline,
            );
        }
        if self.measurements.iter().any(|measurement| {
            measurement
                .server_memory
                .is_some_and(|memory| memory.of == MemoryOf::BenchProcess)
        }) {
            let _ = writeln!(
                out,
                "* RSS of sigil-bench itself: the servers ran in its process, beside the load"
            );
        }
        self.ceilings_table(&mut out);
        if let (Some(share), false) = (settings.core_share, self.scaling.is_empty()) {
            let _ = writeln!(
                out,
                "scaling under a core share of {share}: each Sigil may use {share} of each of \
                 its CPUs (cgroup CPU quota)"
            );
        }
        for scaling in &self.scaling {
            let cpu = |micros: Option<f64>| {
                micros.map_or_else(|| "?".to_owned(), |micros| format!("{micros:.1}"))
            };
            let _ = writeln!(
                out,
                "scaling {}: {:.0}/s on CPUs {} against {:.0}/s on one: {:.2} × (server CPU per call {} against {} µs)",
                scaling.scenario,
                scaling.wide_requests_per_second,
                scaling.cpus,
                scaling.narrow_requests_per_second,
                scaling.ratio,
                cpu(scaling.wide_cpu_micros_per_call),
                cpu(scaling.narrow_cpu_micros_per_call),
            );
        }
        if !self.targets.is_empty() {
            let _ = writeln!(out, "\nissue 8's targets in this run:");
            for target in &self.targets {
                let _ = writeln!(
                    out,
                    "  {:<4} {:<58} {:>8.2} (goal {}): {}",
                    if target.met { "met" } else { "MISS" },
                    target.target,
                    target.value,
                    target.goal,
                    target.detail
                );
            }
        }
        out
    }

    fn ceilings_table(&self, out: &mut String) {
        let ceilings = &self.ceilings;
        if ceilings.jwt_verify.is_empty() && ceilings.mget.is_empty() && ceilings.parsing.is_empty()
        {
            return;
        }
        let _ = writeln!(out, "\nceilings measured in process (sigil-bench's CPU):");
        for verify in &ceilings.jwt_verify {
            let _ = writeln!(
                out,
                "  raw jsonwebtoken verify {:?}: {:.0} per CPU-second ({:.1} µs each)",
                verify.algorithm,
                verify.per_cpu_second,
                1e6 / verify.per_cpu_second.max(f64::EPSILON)
            );
        }
        for mget in &ceilings.mget {
            let _ = writeln!(
                out,
                "  raw MGET of {} keys ({} B each): p50 {} µs, p99 {} µs, mean {:.0} µs over {} calls",
                mget.keys,
                mget.value_bytes,
                mget.p50_micros,
                mget.p99_micros,
                mget.mean_micros,
                mget.calls
            );
        }
        for parsing in &ceilings.parsing {
            let _ = writeln!(
                out,
                "  parsing + record decoding + secret check of {} API tokens: {:.0} µs of CPU per batch",
                parsing.tokens, parsing.micros_per_batch
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(name: &str, requests_per_second: f64, p99: u64) -> Measurement {
        Measurement {
            name: name.to_owned(),
            server: ServerKind::Sigil,
            in_flight: 1,
            requests: requests_per_second as u64,
            seconds: 1.0,
            requests_per_second,
            latency_micros: Latency {
                p50: 1,
                p99,
                p999: p99,
                max: p99,
            },
            errors: BTreeMap::new(),
            server_cpu_micros_per_call: Some(requests_per_second / 100.0),
            server_memory: None,
            against_baseline: None,
            redis_commands_per_call: None,
        }
    }

    #[test]
    fn a_figure_is_divided_by_its_baseline() {
        let baseline = measurement("baseline-get", 1000.0, 200);
        let mut whoami = measurement("whoami", 800.0, 300);
        whoami.compare_with(&baseline);
        let ratio = whoami.against_baseline.expect("a ratio");
        assert_eq!(ratio.baseline, "baseline-get");
        assert!((ratio.requests_per_second - 0.8).abs() < 1e-9);
        assert!((ratio.p99 - 1.5).abs() < 1e-9);
        let cpu = ratio.server_cpu_per_call.expect("both CPU figures known");
        assert!((cpu - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_baseline_without_calls_gives_no_ratio() {
        let baseline = measurement("baseline-get", 0.0, 0);
        let mut whoami = measurement("whoami", 800.0, 300);
        whoami.compare_with(&baseline);
        assert!(whoami.against_baseline.is_none());
    }
}
