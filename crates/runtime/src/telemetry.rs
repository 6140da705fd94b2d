//! Logging. Spans carry ids, never secrets.

use tracing_subscriber::{EnvFilter, fmt};

use crate::{LogArgs, LogFormat};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init_logging(args: &LogArgs) -> Result<(), String> {
    let filter = EnvFilter::try_new(&args.log_filter)
        .map_err(|error| format!("bad --log-filter {:?}: {error}", args.log_filter))?;
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match args.log_format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|error| format!("cannot install logging: {error}"))
}
