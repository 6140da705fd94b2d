//! sigil-bench: drives Sigil over real gRPC connections with a fixed number
//! of connections and calls in flight, and reports each figure as a ratio
//! of a baseline server measured seconds before it on the same machine —
//! absolute numbers on a shared machine are noise, ratios are the result.
//!
//! The baseline does only the irreducible work of a call (an empty echo,
//! one Redis GET) with the same stack as Sigil. Both servers run as child
//! processes of sigil-bench (`sigil-bench serve`, through Sigil's own
//! `run_service`), so they can be pinned to a CPU and their RSS read, or in
//! sigil-bench's own process.

pub mod cli;

mod api_tokens;
mod baseline;
mod ceiling;
mod cpu_limit;
mod direct;
mod jwts;
mod load;
mod loopback;
mod machine;
mod pin;
mod redis_probe;
mod redis_server;
mod report;
mod rng;
mod run;
mod scenario;
mod server;
mod sessions;
mod targets;

pub use report::{Ceilings, Latency, Measurement, Ratio, Report, ServerMemory, Settings, Target};
pub use run::run;
pub use scenario::Scenario;
pub use server::serve;

/// Why a run could not be completed; the message says what to do.
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}
